//! Opening a service: every dataset group's catalog, content vectors and ANN index (built
//! once and kept beside the store, rebuilt when the vectors change), and its newest artifacts.

use super::*;

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
pub(super) fn site_vectors(c: &Catalog, site: SiteId) -> (Vec<u32>, Vec<f32>) {
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
pub(super) fn open_or_build_index(
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
}
