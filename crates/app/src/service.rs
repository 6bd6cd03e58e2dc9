//! The [`Service`]: a store's catalogs and trained artifacts, loaded once and served. It
//! answers recommendations ([`crate::request::RecommendRequest`]), similar items, product
//! embeddings, catalog vector exports and catalog changes. It never refits a model: models
//! come from published artifacts, and products added while serving are ranked by the content
//! space (collaborative models rank the products they were trained on).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};

use warmstart_core::{ItemId, ItemVectors, SiteId};
use warmstart_embed::LoadedModel;
use warmstart_index::{Hnsw, HnswParams, Metric};
use warmstart_models::Recommender;
use warmstart_store::Store;

use crate::artifact::{self, ArtifactRef};

mod sync;
use crate::catalog::{normalize_product, Catalog};
use crate::experiment::{ExperimentReport, Experiments};
use crate::feedback::{EventsRequest, EventsResponse, Feedback, FeedbackOptions, SessionErased};
use crate::request::{CatalogChange, EmbedRequest, EmbedResponse, ModelInfo, ProductInput, SiteInfo, UpsertRequest};
use crate::vectors::{load_vectors, VectorSpec, CONTENT_ENCODER};
use crate::{Error, Result};
use sync::load_served;

/// Limits and choices of a service.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// Largest `k` of a request.
    pub max_k: usize,
    /// Longest history of a request.
    pub max_history: usize,
    /// Largest batch of products in one catalog or embedding request.
    pub max_products: usize,
    /// Sites with fewer live items are always scored exactly.
    pub ann_min_items: usize,
    /// Candidates retrieved per query vector (at least `3 k`) and re-ranked exactly.
    pub ann_candidates: usize,
    /// HNSW search breadth.
    pub ef: usize,
    /// Serve only these dataset groups (all with artifacts when empty).
    pub datasets: Vec<String>,
    /// Default model per dataset group (else the artifact with the best hold-out NDCG@10).
    pub default_models: Vec<(String, String)>,
    /// Where encoders live (`$WARMSTART_HOME`).
    pub home: PathBuf,
    /// Where content-space ANN retrieval runs.
    pub retrieval: Retrieval,
    /// Public links of products in `GET /v1/sites/{site}/catalog`.
    pub links: ProductLinks,
}

/// Where shops show their products and photos, as URL templates per site (`*` for any) with
/// `{site}` and `{id}` placeholders: what the browser extension's panel links to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductLinks {
    /// Product page templates.
    pub page: Vec<(String, String)>,
    /// Photo templates (otherwise a product's image when it is an http(s) URL).
    pub image: Vec<(String, String)>,
}

impl ProductLinks {
    fn fill(templates: &[(String, String)], site: &str, id: &str) -> Option<String> {
        let t = templates.iter().find(|(s, _)| s == site).or_else(|| templates.iter().find(|(s, _)| s == "*"))?;
        Some(t.1.replace("{site}", site).replace("{id}", &warmstart_core::url::path_segment(id)))
    }
    /// The product page of `id` on `site`.
    pub fn page(&self, site: &str, id: &str) -> Option<String> {
        Self::fill(&self.page, site, id)
    }
    /// The photo of `id` on `site`, from a template or the product's own http(s) image.
    pub fn image(&self, site: &str, id: &str, own: Option<&str>) -> Option<String> {
        Self::fill(&self.image, site, id)
            .or_else(|| own.filter(|u| u.starts_with("https://") || u.starts_with("http://")).map(str::to_string))
    }
}

/// One product of a shop's public catalog (`GET /v1/sites/{site}/catalog`).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct PublicProduct {
    /// The shop's product id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Brand.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    /// Category path.
    pub category: Vec<String>,
    /// Approximate price in USD.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price_usd: Option<f64>,
    /// Product page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Photo.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

/// A public download with its ETag; no body when the client already holds that version
/// (`If-None-Match`), which is then answered without building it.
#[derive(Debug, Clone, PartialEq)]
pub struct Download {
    /// The version's ETag.
    pub etag: String,
    /// The bytes, unless the client holds them.
    pub body: Option<Vec<u8>>,
}

impl Download {
    fn build(etag: String, known: Option<&str>, body: impl FnOnce() -> Result<Vec<u8>>) -> Result<Download> {
        if known == Some(etag.as_str()) {
            return Ok(Download { etag, body: None });
        }
        Ok(Download { body: Some(body()?), etag })
    }
}

/// A shop's public catalog: what a device needs to show recommendations it ranked itself.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct PublicCatalog {
    /// Site key.
    pub site: String,
    /// Live products, in the order of the vectors route's rows.
    pub products: Vec<PublicProduct>,
}

/// Where the content space's nearest neighbours are searched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Retrieval {
    /// HNSW indexes in this process, memory-mapped from the models directory.
    #[default]
    InProcess,
    /// pgvector's HNSW index in the PostgreSQL store, over this many connections; nothing
    /// is indexed in the process.
    Pgvector {
        /// Connections (concurrent searches).
        connections: usize,
    },
}

impl Default for ServiceOptions {
    fn default() -> Self {
        ServiceOptions {
            max_k: 100,
            max_history: 500,
            max_products: 1000,
            ann_min_items: 2000,
            ann_candidates: 50,
            ef: 64,
            datasets: Vec::new(),
            default_models: Vec::new(),
            home: warmstart_store::home_dir(),
            retrieval: Retrieval::InProcess,
            links: ProductLinks::default(),
        }
    }
}

/// Catalog item ids ↔ a model's item ids (the artifact may predate products added since).
pub(crate) struct IdMap {
    identity: bool,
    to_model: Vec<u32>,
    to_catalog: Vec<ItemId>,
}

const NONE: u32 = u32::MAX;

impl IdMap {
    pub(crate) fn model_id(&self, c: ItemId) -> Option<u32> {
        if self.identity {
            ((c as usize) < self.to_catalog.len()).then_some(c)
        } else {
            self.to_model.get(c as usize).copied().filter(|&m| m != NONE)
        }
    }
    pub(crate) fn catalog_id(&self, m: u32) -> Option<ItemId> {
        self.to_catalog.get(m as usize).copied().filter(|&c| c != NONE)
    }
}

/// A loaded artifact.
pub(crate) struct Served {
    pub(crate) artifact: ArtifactRef,
    pub(crate) model: Box<dyn Recommender>,
    pub(crate) ids: IdMap,
    /// Its vector space is the catalog's content space (content models on the same vectors).
    pub(crate) content_space: bool,
    /// ANN indexes over its own item vectors, by site (keys: model item ids).
    pub(crate) indexes: HashMap<SiteId, Hnsw>,
}

impl Served {
    pub(crate) fn name(&self) -> &str {
        &self.artifact.manifest.model
    }
}

/// One dataset group as served.
pub(crate) struct Group {
    pub(crate) catalog: RwLock<Catalog>,
    /// The catalog's content space.
    pub(crate) space: Option<VectorSpec>,
    /// ANN indexes over the content space, by site (keys: catalog item ids).
    pub(crate) content_index: RwLock<HashMap<SiteId, Hnsw>>,
    /// pgvector retrieval over the content space, in place of `content_index`.
    pub(crate) pgvector: Option<warmstart_store::PgVectorSearch>,
    /// Served artifacts; a newer version of one replaces it in place (see `sync_artifacts`).
    pub(crate) models: RwLock<Vec<Arc<Served>>>,
    pub(crate) default: usize,
}

/// What loading found.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// (dataset, model, version) of every loaded artifact.
    pub models: Vec<(String, String, u32)>,
    /// Artifacts that could not be read.
    pub skipped: Vec<String>,
    /// Content indexes memory-mapped from disk / built now.
    pub indexes_opened: usize,
    /// Content indexes built (and saved) at start.
    pub indexes_built: usize,
}

/// A store's catalogs and trained artifacts, ready to answer requests.
pub struct Service {
    store: Mutex<Store>,
    store_path: PathBuf,
    pub(crate) groups: Vec<Group>,
    pub(crate) sites: HashMap<String, (usize, SiteId)>,
    pub(crate) opts: ServiceOptions,
    encoders: Mutex<HashMap<String, Arc<LoadedModel>>>,
    pub(crate) counter: AtomicU64,
    pub(crate) feedback: Option<Feedback>,
    /// Catalog version of the store that the in-memory catalogs include.
    pub(crate) synced: Mutex<i64>,
    /// Where trained artifacts are published (in the store's models directory).
    pub(crate) artifacts_root: PathBuf,
}

fn hnsw_params(opts: &ServiceOptions) -> Result<HnswParams> {
    Ok(HnswParams::builder().m(16).ef_construction(200).ef_search(opts.ef).seed(42).build()?)
}

/// FNV-1a of the vectors an index is built from, to tell a stale index file.
fn vectors_hash(keys: &[u32], data: &[f32]) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in keys.iter().flat_map(|k| k.to_le_bytes()).chain(data.iter().flat_map(|x| x.to_le_bytes())) {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

/// Keys and vectors of a site's live items that have a vector.
fn site_vectors(c: &Catalog, site: SiteId) -> (Vec<u32>, Vec<f32>) {
    let mut keys = Vec::new();
    let mut data = Vec::with_capacity(c.live_items(site).len() * c.dim());
    for &i in c.live_items(site) {
        if let Some(v) = c.vector(i) {
            keys.push(i);
            data.extend_from_slice(v);
        }
    }
    (keys, data)
}

/// Builds an index over the given rows, or opens the one saved for exactly these rows.
pub fn open_or_build_index(
    path: &Path,
    params: &HnswParams,
    metric: Metric,
    dim: usize,
    keys: &[u32],
    data: &[f32],
) -> Result<(Hnsw, bool)> {
    let stamp_path = path.with_extension("hash");
    let hash = vectors_hash(keys, data);
    if path.exists() && std::fs::read_to_string(&stamp_path).is_ok_and(|h| h.trim() == hash) {
        if let Ok(index) = Hnsw::open(path) {
            return Ok((index, false));
        }
    }
    let index = Hnsw::build(params, metric, dim, keys, data)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    index.save(path)?;
    std::fs::write(&stamp_path, &hash).map_err(|e| Error::io(&stamp_path, e))?;
    // serve from the mapped file, as a restart will
    Ok((Hnsw::open(path)?, true))
}

impl Service {
    /// Loads the newest artifact of every model of every dataset group (or of
    /// `opts.datasets`), the groups' catalogs and content vectors, and the ANN indexes
    /// (memory-mapped; built and saved once when missing or stale).
    pub fn open(store_path: &Path, opts: ServiceOptions) -> Result<(Service, LoadReport)> {
        let store = Store::open(store_path)?;
        // read before loading: changes committed while loading are applied again (idempotent)
        let synced = store.catalog_version()?;
        let root = artifact::root(&store);
        let (latest, bad) = artifact::latest(&root)?;
        let mut report = LoadReport { skipped: bad.iter().map(|e| e.to_string()).collect(), ..Default::default() };
        let mut by_dataset: Vec<(String, Vec<ArtifactRef>)> = Vec::new();
        for a in latest {
            if !opts.datasets.is_empty() && !opts.datasets.contains(&a.manifest.dataset) {
                continue;
            }
            match by_dataset.iter_mut().find(|(d, _)| *d == a.manifest.dataset) {
                Some((_, v)) => v.push(a),
                None => by_dataset.push((a.manifest.dataset.clone(), vec![a])),
            }
        }
        if by_dataset.is_empty() {
            return Err(Error::NotFound {
                what: "trained artifact",
                key: format!("under {} (run `warmstart train MODEL --dataset D` first)", root.display()),
            });
        }
        let params = hnsw_params(&opts)?;
        let mut groups = Vec::new();
        let mut sites = HashMap::new();
        for (dataset, artifacts) in by_dataset {
            let group = Self::load_group(
                &store,
                &store_path.to_string_lossy(),
                &dataset,
                artifacts,
                &opts,
                &params,
                &mut report,
            )?;
            let c = group.catalog.read().map_err(|_| poisoned())?;
            for (s, (key, _)) in c.sites.iter().enumerate() {
                sites.insert(key.clone(), (groups.len(), s as SiteId));
            }
            drop(c);
            groups.push(group);
        }
        let service = Service {
            store: Mutex::new(store),
            store_path: store_path.to_path_buf(),
            groups,
            sites,
            opts,
            encoders: Mutex::new(HashMap::new()),
            counter: AtomicU64::new(0),
            feedback: None,
            synced: Mutex::new(synced),
            artifacts_root: root,
        };
        Ok((service, report))
    }

    #[allow(clippy::too_many_arguments)]
    fn load_group(
        store: &Store,
        store_url: &str,
        dataset: &str,
        artifacts: Vec<ArtifactRef>,
        opts: &ServiceOptions,
        params: &HnswParams,
        report: &mut LoadReport,
    ) -> Result<Group> {
        let d = store.load_dataset(Some(dataset))?;
        let removed = store.removed_products(Some(dataset))?;
        // the content space: the vectors of the first content-reading artifact, else MiniLM
        let space: Option<VectorSpec> =
            artifacts.iter().filter_map(|a| a.manifest.vectors.as_deref()).next().map(str::parse).transpose()?.or_else(
                || {
                    store
                        .load_item_vectors(CONTENT_ENCODER, Some(dataset))
                        .ok()
                        .filter(|v| v.count_present() > 0)
                        .map(|_| VectorSpec::Single(CONTENT_ENCODER.into()))
                },
            );
        // each vector set is read from the store once, however many artifacts use it
        let mut loaded: HashMap<String, Arc<ItemVectors>> = HashMap::new();
        let mut vectors_of = |spec: &str| -> Result<Arc<ItemVectors>> {
            if let Some(v) = loaded.get(spec) {
                return Ok(v.clone());
            }
            let v = Arc::new(load_vectors(store, dataset, &d, &spec.parse()?, &mut |_| {})?);
            loaded.insert(spec.to_string(), v.clone());
            Ok(v)
        };
        let space_vectors = space.as_ref().map(|s| vectors_of(&s.to_string())).transpose()?.map(|v| (*v).clone());
        let catalog = Catalog::new(&d, space_vectors, &removed)?;
        let mut models = Vec::new();
        for a in artifacts {
            let inputs = a.manifest.vectors.as_deref().map(&mut vectors_of).transpose()?;
            let served = load_served(a, &d, &catalog, space.as_ref(), inputs)?;
            report.models.push((
                dataset.to_string(),
                served.artifact.manifest.model.clone(),
                served.artifact.manifest.version,
            ));
            models.push(Arc::new(served));
        }
        let default = opts
            .default_models
            .iter()
            .find(|(ds, _)| ds == dataset)
            .map(|(_, m)| {
                models.iter().position(|s| s.name() == m).ok_or_else(|| Error::NotFound {
                    what: "default model",
                    key: format!("{m} for {dataset} (no artifact)"),
                })
            })
            .transpose()?
            .unwrap_or_else(|| {
                let ndcg = |s: &Served| {
                    s.artifact.manifest.evaluation.as_ref().and_then(|e| e.mean("ndcg@10")).unwrap_or(f64::NEG_INFINITY)
                };
                (0..models.len())
                    .max_by(|&a, &b| ndcg(&models[a]).total_cmp(&ndcg(&models[b])).then(b.cmp(&a)))
                    .unwrap_or(0)
            });
        // content-space indexes, one per site, memory-mapped from beside the store; or pgvector's
        let mut content_index = HashMap::new();
        let mut pgvector = None;
        if let (Retrieval::Pgvector { connections }, Some(spec)) = (opts.retrieval, &space) {
            let VectorSpec::Single(model) = spec else {
                return Err(Error::bad(
                    "retrieval",
                    format!("pgvector indexes stored vectors; {dataset}'s content space `{spec}` is a fusion"),
                ));
            };
            if store.kind() != warmstart_store::BackendKind::Postgres {
                return Err(Error::bad("retrieval", "pgvector retrieval needs a PostgreSQL store"));
            }
            pgvector = Some(warmstart_store::PgVectorSearch::open(store_url, connections, model, catalog.dim())?);
        } else if let Some(spec) = &space {
            let dir =
                store.models_dir().join("index").join(artifact::slug(dataset)).join(artifact::slug(&spec.to_string()));
            for s in 0..catalog.sites.len() as SiteId {
                let (keys, data) = site_vectors(&catalog, s);
                if keys.len() < opts.ann_min_items.max(1) {
                    continue;
                }
                let path = dir.join(format!("{}.hnsw", artifact::slug(catalog.site_key(s))));
                let (index, built) = open_or_build_index(&path, params, Metric::Cosine, catalog.dim(), &keys, &data)?;
                if built {
                    report.indexes_built += 1;
                } else {
                    report.indexes_opened += 1;
                }
                content_index.insert(s, index);
            }
        }
        Ok(Group {
            catalog: RwLock::new(catalog),
            space,
            content_index: RwLock::new(content_index),
            pgvector,
            models: RwLock::new(models),
            default,
        })
    }

    /// The store file.
    pub fn store_path(&self) -> &Path {
        &self.store_path
    }

    /// The options.
    pub fn options(&self) -> &ServiceOptions {
        &self.opts
    }

    /// Turns on the online loop: recommendations are recorded, events accepted, experiments
    /// run (the writer thread opens its own connection to the store). Returns warnings:
    /// experiments naming sites or models this service does not serve (one file may declare
    /// the experiments of several deployments; such an experiment answers 400/404 when asked).
    pub fn enable_feedback(&mut self, opts: FeedbackOptions, experiments: Experiments) -> Result<Vec<String>> {
        let mut warnings = Vec::new();
        for x in experiments.all() {
            for s in &x.sites {
                if !self.sites.contains_key(s) {
                    warnings.push(format!("experiment `{}`: site `{s}` is not served here", x.key));
                }
            }
            for v in &x.variants {
                if let (Some(m), false) = (&v.model, v.model.as_deref().is_some_and(crate::recommend::is_live_model)) {
                    if !self.groups.iter().any(|g| g.models.read().is_ok_and(|ms| ms.iter().any(|s| s.name() == m))) {
                        warnings.push(format!(
                            "experiment `{}`, variant `{}`: model `{m}` is not served here",
                            x.key, v.name
                        ));
                    }
                }
            }
        }
        self.feedback = Some(Feedback::start(&self.store_path, opts, experiments)?);
        Ok(warnings)
    }

    /// The online loop, when enabled.
    pub fn feedback(&self) -> Option<&Feedback> {
        self.feedback.as_ref()
    }

    fn feedback_on(&self) -> Result<&Feedback> {
        self.feedback
            .as_ref()
            .ok_or_else(|| Error::NotFound { what: "feature", key: "feedback (the service runs with it off)".into() })
    }

    /// `POST /v1/events`.
    pub fn post_events(&self, req: &EventsRequest) -> Result<EventsResponse> {
        let f = self.feedback_on()?;
        f.post(req, |site, id| {
            let (g, s) = self.sites.get(site).copied()?;
            Some(self.groups[g].catalog.read().ok()?.item(s, id).is_some())
        })
    }

    /// `DELETE /v1/sessions/{id}`.
    pub fn erase_session(&self, session: &str) -> Result<SessionErased> {
        self.feedback_on()?.erase_session(session)
    }

    /// `GET /v1/experiments/{key}/report`.
    pub fn experiment_report(&self, key: &str) -> Result<ExperimentReport> {
        self.feedback_on()?.report(key)
    }

    pub(crate) fn site(&self, key: &str, field: &str) -> Result<(usize, SiteId)> {
        if key.is_empty() || key.len() > 256 {
            return Err(Error::bad(field, "a site key of 1–256 characters is required"));
        }
        self.sites.get(key).copied().ok_or_else(|| Error::NotFound { what: "site", key: key.to_string() })
    }

    pub(crate) fn model(&self, group: &Group, name: Option<&str>) -> Result<Arc<Served>> {
        let models = group.models.read().map_err(|_| poisoned())?;
        match name {
            None => models
                .get(group.default)
                .cloned()
                .ok_or_else(|| Error::NotFound { what: "model", key: "default".into() }),
            Some(n) => models.iter().find(|s| s.name() == n).cloned().ok_or_else(|| Error::NotFound {
                what: "model",
                key: format!(
                    "{n} (served: {})",
                    models.iter().map(|s| s.name().to_string()).collect::<Vec<_>>().join(", ")
                ),
            }),
        }
    }

    /// The served sites with their models.
    pub fn sites(&self) -> Result<Vec<SiteInfo>> {
        let mut out = Vec::new();
        for g in &self.groups {
            let c = g.catalog.read().map_err(|_| poisoned())?;
            for (s, (key, _)) in c.sites.iter().enumerate() {
                let s = s as SiteId;
                let ann_content = g.content_index.read().map_err(|_| poisoned())?.contains_key(&s)
                    || (g.pgvector.is_some() && c.live_items(s).len() >= self.opts.ann_min_items);
                out.push(SiteInfo {
                    site: key.clone(),
                    dataset: c.dataset.clone(),
                    products: c.live_items(s).len(),
                    models: g
                        .models
                        .read()
                        .map_err(|_| poisoned())?
                        .iter()
                        .enumerate()
                        .map(|(i, m)| ModelInfo {
                            model: m.name().to_string(),
                            version: m.artifact.manifest.version,
                            default: i == g.default,
                            ndcg_at_10: m.artifact.manifest.evaluation.as_ref().and_then(|e| e.mean("ndcg@10")),
                            ann: m.indexes.contains_key(&s) || (m.content_space && ann_content),
                        })
                        .collect(),
                });
            }
        }
        out.sort_by(|a, b| a.site.cmp(&b.site));
        Ok(out)
    }

    /// Live products and index sizes per site (for metrics).
    pub fn index_sizes(&self) -> Vec<(String, usize, usize)> {
        let mut out = Vec::new();
        for g in &self.groups {
            let (Ok(c), Ok(ix)) = (g.catalog.read(), g.content_index.read()) else { continue };
            for (s, (key, _)) in c.sites.iter().enumerate() {
                let indexed = ix.get(&(s as SiteId)).map(|h| h.len()).unwrap_or(0);
                out.push((key.clone(), c.live_items(s as SiteId).len(), indexed));
            }
        }
        out
    }

    fn encoder(&self, model: &str) -> Result<Arc<LoadedModel>> {
        let mut cache = self.encoders.lock().map_err(|_| poisoned())?;
        if let Some(e) = cache.get(model) {
            return Ok(e.clone());
        }
        let loaded = Arc::new(LoadedModel::load(&self.opts.home, model)?);
        cache.insert(model.to_string(), loaded.clone());
        Ok(loaded)
    }

    /// Unit vectors of products in a group's content space, from their text (title, brand,
    /// category, description) with the catalog's encoder; a fused space keeps the text part.
    pub(crate) fn embed_inputs(&self, group: &Group, products: &[&ProductInput]) -> Result<Vec<Vec<f32>>> {
        let spec = group.space.as_ref().ok_or_else(|| Error::NotFound {
            what: "content space",
            key: "for this dataset (no content vectors were embedded)".into(),
        })?;
        if products.is_empty() {
            return Ok(Vec::new());
        }
        let text_id = spec.text_model();
        let base = text_id.split('/').next().unwrap_or(text_id);
        let model = self.encoder(base)?;
        let tower = model.text().ok_or_else(|| Error::bad("vectors", format!("{base} has no text tower")))?;
        if tower.id() != text_id {
            return Err(Error::bad("vectors", format!("{text_id} vectors do not come from {base}'s text tower")));
        }
        let texts: Vec<String> = products
            .iter()
            .map(|p| {
                let category = p.category.join(" > ");
                warmstart_embed::product_text(
                    &warmstart_ingest::normalize::clean_text(&p.title),
                    p.brand.as_deref(),
                    (!category.is_empty()).then_some(category.as_str()),
                    p.description.as_deref(),
                    &[],
                )
            })
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let (flat, _) = tower.encode_texts(&refs)?;
        let tdim = tower.dim();
        let catalog_dim = group.catalog.read().map_err(|_| poisoned())?.dim();
        let mut out: Vec<Vec<f32>> = flat.chunks(tdim).map(<[f32]>::to_vec).collect();
        if let VectorSpec::Fused { text_weight, .. } = spec {
            let image_dim = catalog_dim.saturating_sub(tdim);
            let text = ItemVectors { dim: tdim, data: flat.clone(), present: vec![true; out.len()] };
            let image =
                ItemVectors { dim: image_dim, data: vec![0.0; out.len() * image_dim], present: vec![false; out.len()] };
            let fused = warmstart_embed::fuse(&text, &image, *text_weight)?.vectors;
            out = fused.data.chunks(fused.dim).map(<[f32]>::to_vec).collect();
        }
        if out.first().is_some_and(|v| v.len() != catalog_dim) {
            return Err(Error::bad(
                "vectors",
                format!("the encoder gives {} dimensions, the catalog has {catalog_dim}", out[0].len()),
            ));
        }
        Ok(out)
    }

    /// `POST /v1/embed`: product metadata → unit vectors of the content space.
    pub fn embed(&self, req: &EmbedRequest) -> Result<EmbedResponse> {
        if req.products.is_empty() || req.products.len() > self.opts.max_products {
            return Err(Error::bad("products", format!("1–{} products", self.opts.max_products)));
        }
        for (n, p) in req.products.iter().enumerate() {
            if p.title.trim().is_empty() {
                return Err(Error::bad(format!("products[{n}].title"), "a title is required"));
            }
        }
        let g = match req.site.as_deref() {
            Some(s) => &self.groups[self.site(s, "site")?.0],
            None if self.groups.len() == 1 => &self.groups[0],
            None => return Err(Error::bad("site", "several dataset groups are served: name a site")),
        };
        let inputs: Vec<&ProductInput> = req.products.iter().collect();
        let vectors = self.embed_inputs(g, &inputs)?;
        let space = g.space.as_ref().map(|s| s.to_string()).unwrap_or_default();
        Ok(EmbedResponse { space, dim: vectors.first().map(Vec::len).unwrap_or(0), vectors })
    }

    /// `GET /v1/sites/{site}/vectors`: the site's live product ids and content vectors in the
    /// compact binary form below, and its ETag (changes with the catalog).
    ///
    /// ```text
    /// "WSVEC001"  u32 dim  u32 n  u32 dtype (0 f32, 1 f16)  u32 ids_len
    /// ids: ids_len bytes of UTF-8, one id per line; zero padding to 4 bytes
    /// n × dim vectors (little endian), then n f32 popularity priors in [0, 1]
    /// ```
    pub fn site_vectors(&self, site: &str, f16: bool, known: Option<&str>) -> Result<Download> {
        let (g, s) = self.site(site, "site")?;
        let c = self.groups[g].catalog.read().map_err(|_| poisoned())?;
        if c.dim() == 0 {
            return Err(Error::NotFound { what: "content vectors", key: site.to_string() });
        }
        let etag = format!("\"{}-{}-{}\"", artifact::slug(&c.dataset), c.version(), if f16 { "f16" } else { "f32" });
        Download::build(etag, known, || {
            let (keys, data) = site_vectors(&c, s);
            let counts: Vec<f32> = keys.iter().map(|&i| c.popularity(i)).collect();
            let payload = warmstart_scoring::SiteVectors {
                dim: c.dim(),
                ids: keys.iter().map(|&i| c.product(i).external_id.clone()).collect(),
                data,
                prior: warmstart_scoring::log_popularity(&counts),
            };
            Ok(payload.encode(f16))
        })
    }

    /// `GET /v1/sites/{site}/catalog`: the site's live products with a vector (the rows of
    /// [`site_vectors`](Self::site_vectors), in order), their public metadata and links, as
    /// JSON ([`PublicCatalog`]), with an ETag of the same catalog version.
    pub fn site_catalog(&self, site: &str, known: Option<&str>) -> Result<Download> {
        let (g, s) = self.site(site, "site")?;
        let c = self.groups[g].catalog.read().map_err(|_| poisoned())?;
        if c.dim() == 0 {
            return Err(Error::NotFound { what: "content vectors", key: site.to_string() });
        }
        let etag = format!("\"{}-{}-catalog\"", artifact::slug(&c.dataset), c.version());
        Download::build(etag, known, || {
            let (keys, _) = site_vectors(&c, s);
            let links = &self.opts.links;
            let products = keys
                .iter()
                .map(|&i| {
                    let p = c.product(i);
                    PublicProduct {
                        id: p.external_id.clone(),
                        title: p.title.clone(),
                        brand: p.brand.clone(),
                        category: p.category.clone(),
                        price_usd: p.price_usd,
                        url: links.page(site, &p.external_id),
                        image: links.image(site, &p.external_id, p.image.as_deref()),
                    }
                })
                .collect();
            serde_json::to_vec(&PublicCatalog { site: site.to_string(), products })
                .map_err(|e| Error::Artifact { path: "catalog".into(), reason: e.to_string() })
        })
    }

    /// `GET /v1/sites/{site}/neighbours?model=…`: a neighbour-list model's (item-kNN,
    /// RP3beta) lists for ranking `site` on a device: every product of the group's other
    /// shops that the model knows, with its neighbours among `site`'s live products. The
    /// lists of every other shop come down together, so the request says nothing about
    /// which shops the user knows. ETag: model version and catalog version.
    pub fn site_neighbours(&self, site: &str, model: &str, known: Option<&str>) -> Result<Download> {
        let (g, s) = self.site(site, "site")?;
        let group = &self.groups[g];
        let served = {
            let models = group.models.read().map_err(|_| poisoned())?;
            models.iter().find(|m| m.name() == model).cloned()
        }
        .ok_or_else(|| Error::NotFound { what: "model", key: model.to_string() })?;
        let lists = served.model.neighbour_lists().ok_or_else(|| {
            Error::bad("model", format!("`{model}` has no neighbour lists (item-kNN and RP3beta have)"))
        })?;
        let c = group.catalog.read().map_err(|_| poisoned())?;
        let etag = format!(
            "\"{}-{}-{}-{}-nbr\"",
            artifact::slug(&c.dataset),
            model,
            served.artifact.manifest.version,
            c.version()
        );
        Download::build(etag, known, || {
            // targets: the site's live products the model knows, in catalog order (as it ranks them)
            let targets: Vec<ItemId> =
                c.live_items(s).iter().copied().filter(|&i| served.ids.model_id(i).is_some()).collect();
            let row_of: HashMap<u32, u32> = targets
                .iter()
                .enumerate()
                .filter_map(|(r, &i)| served.ids.model_id(i).map(|m| (m, r as u32)))
                .collect();
            let mut out = warmstart_scoring::NeighbourLists {
                targets: targets.iter().map(|&i| c.product(i).external_id.clone()).collect(),
                sources: Vec::new(),
                lists: Vec::new(),
            };
            for (m, list) in lists.iter().enumerate() {
                let Some(i) = served.ids.catalog_id(m as u32) else { continue };
                let source_site = c.product(i).site;
                if source_site == s || c.item(source_site, &c.product(i).external_id).is_none() {
                    continue;
                }
                let l: Vec<(u32, f32)> =
                    list.iter().filter_map(|&(j, sim)| row_of.get(&j).map(|&r| (r, sim))).collect();
                if !l.is_empty() {
                    out.sources.push((c.site_key(source_site).to_string(), c.product(i).external_id.clone()));
                    out.lists.push(l);
                }
            }
            Ok(out.encode())
        })
    }

    /// `PUT /v1/sites/{site}/products`: products written to the store in one transaction,
    /// embedded with the catalog's encoder, and served (and searchable) at once.
    pub fn upsert(&self, site: &str, req: &UpsertRequest) -> Result<CatalogChange> {
        let (gi, s) = self.site(site, "site")?;
        let g = &self.groups[gi];
        if req.products.is_empty() || req.products.len() > self.opts.max_products {
            return Err(Error::bad("products", format!("1–{} products", self.opts.max_products)));
        }
        let products = req
            .products
            .iter()
            .enumerate()
            .map(|(n, p)| normalize_product(site, p, &format!("products[{n}]")))
            .collect::<Result<Vec<_>>>()?;
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = products.iter().find(|p| !seen.insert(p.external_id.as_str())) {
            return Err(Error::bad("products", format!("product `{}` is given twice", dup.external_id)));
        }
        // embed first: a failure changes nothing
        let vectors = if g.space.is_some() {
            let inputs: Vec<&ProductInput> = req.products.iter().collect();
            Some(self.embed_inputs(g, &inputs)?)
        } else {
            None
        };
        let ids: Vec<String> = products.iter().map(|p| p.external_id.clone()).collect();
        // held until the catalog has the change, so the catalog sync cannot apply it first
        // (which would count this request's inserts as updates)
        let _sync = self.synced.lock().map_err(|_| poisoned())?;
        {
            let mut store = self.store.lock().map_err(|_| poisoned())?;
            let site_info = {
                let c = g.catalog.read().map_err(|_| poisoned())?;
                warmstart_core::Site {
                    key: site.to_string(),
                    name: c.sites[s as usize].1.clone(),
                    dataset: c.dataset.clone(),
                }
            };
            store.write(
                "api",
                &[site_info],
                &products,
                &[],
                "{\"source\":\"PUT /v1/sites/{site}/products\"}",
                &|_| {},
            )?;
            store.restore_products(site, &ids)?;
            if let (Some(VectorSpec::Single(model)), Some(vs)) = (&g.space, &vectors) {
                let rows = store.product_rows(site, &ids)?;
                let put: Vec<(i64, String, Vec<f32>)> =
                    rows.into_iter().zip(vs).filter_map(|(r, v)| r.map(|(id, hash)| (id, hash, v.clone()))).collect();
                store.put_embeddings(model, &put, warmstart_store::VectorDtype::F32)?;
            }
        }
        let mut change = CatalogChange { embedded: vectors.as_ref().map(Vec::len).unwrap_or(0), ..Default::default() };
        let mut c = g.catalog.write().map_err(|_| poisoned())?;
        let mut index = g.content_index.write().map_err(|_| poisoned())?;
        for (n, p) in products.iter().enumerate() {
            let v = vectors.as_ref().map(|vs| vs[n].clone());
            let (id, created) = c.upsert(s, warmstart_core::ProductMeta::of(s, p), v.clone())?;
            if created {
                change.inserted += 1;
            } else {
                change.updated += 1;
            }
            if let (Some(v), Some(ix)) = (v, index.get_mut(&s)) {
                ix.upsert(id, &v)?;
            }
        }
        Ok(change)
    }

    /// `DELETE /v1/sites/{site}/products`: products taken off the served catalog (kept in the
    /// store with their interactions).
    pub fn remove(&self, site: &str, ids: &[String]) -> Result<CatalogChange> {
        let (gi, s) = self.site(site, "site")?;
        let g = &self.groups[gi];
        if ids.is_empty() || ids.len() > self.opts.max_products {
            return Err(Error::bad("ids", format!("1–{} ids", self.opts.max_products)));
        }
        let _sync = self.synced.lock().map_err(|_| poisoned())?;
        self.store.lock().map_err(|_| poisoned())?.remove_products(site, ids)?;
        let mut c = g.catalog.write().map_err(|_| poisoned())?;
        let mut index = g.content_index.write().map_err(|_| poisoned())?;
        let mut change = CatalogChange::default();
        for id in ids {
            match c.remove(s, id) {
                Some(i) => {
                    change.removed += 1;
                    if let Some(ix) = index.get_mut(&s) {
                        ix.remove(i);
                    }
                }
                None => change.not_found += 1,
            }
        }
        Ok(change)
    }
}

pub(crate) fn poisoned() -> Error {
    Error::Artifact { path: "service state".into(), reason: "a lock was poisoned by a panic".into() }
}
