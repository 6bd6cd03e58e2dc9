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

mod downloads;
mod load;
mod sync;
mod writes;
use crate::catalog::{normalize_product, Catalog};
use crate::experiment::{ExperimentReport, Experiments};
use crate::feedback::{EventsRequest, EventsResponse, Feedback, FeedbackOptions, SessionErased};
use crate::request::{CatalogChange, EmbedRequest, EmbedResponse, ModelInfo, ProductInput, SiteInfo, UpsertRequest};
use crate::vectors::{load_vectors, VectorSpec, CONTENT_ENCODER};
use crate::{Error, Result};
use load::site_vectors;
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

impl Service {
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
}

pub(crate) fn poisoned() -> Error {
    Error::Artifact { path: "service state".into(), reason: "a lock was poisoned by a panic".into() }
}
