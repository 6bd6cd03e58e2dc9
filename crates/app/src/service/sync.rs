//! Keeping a running service in step with its store: catalog changes made by other processes
//! (replicas, `warmstart ingest`, `embed`) and artifacts published after start.

use std::collections::HashMap;
use std::sync::Arc;

use warmstart_core::{ItemId, ItemVectors};
use warmstart_index::Hnsw;

use super::{poisoned, IdMap, Served, Service, NONE};
use crate::artifact::{self, ArtifactRef};
use crate::catalog::Catalog;
use crate::vectors::{load_vectors, VectorSpec};
use crate::{Error, Result};

/// Loads one artifact against a live catalog: its item ids mapped to the catalog's (by site
/// and external id, so products upserted since the catalog was loaded are found too), its
/// content inputs (aligned with `d`, the store's dataset), and its ANN indexes.
pub(super) fn load_served(
    a: ArtifactRef,
    d: &warmstart_core::Dataset,
    catalog: &Catalog,
    space: Option<&VectorSpec>,
    vectors: Option<Arc<ItemVectors>>,
) -> Result<Served> {
    let items = a.items()?;
    let mut to_catalog = vec![NONE; items.len()];
    for (m, (site, ext)) in items.iter().enumerate() {
        if let Some(c) = catalog.site(site).and_then(|s| catalog.item(s, ext)) {
            to_catalog[m] = c;
        }
    }
    let identity = items.len() <= catalog.n_items() && to_catalog.iter().enumerate().all(|(m, &c)| c == m as ItemId);
    let mut to_model = Vec::new();
    if !identity {
        to_model = vec![NONE; catalog.n_items()];
        for (m, &c) in to_catalog.iter().enumerate() {
            if c != NONE {
                to_model[c as usize] = m as u32;
            }
        }
    }
    let ids = IdMap { identity, to_model, to_catalog };
    // inputs of models that read content: in the model's item order
    let inputs = vectors.map(|v| {
        let keys = artifact::item_keys(d);
        if v.n_items() == items.len() && keys.iter().zip(&items).all(|(a, b)| a == b) {
            return v;
        }
        let row_of: HashMap<(String, String), usize> = keys.into_iter().enumerate().map(|(i, k)| (k, i)).collect();
        let mut out =
            ItemVectors { dim: v.dim, data: vec![0.0; items.len() * v.dim], present: vec![false; items.len()] };
        for (m, key) in items.iter().enumerate() {
            if let Some(&r) = row_of.get(key).filter(|&&r| v.present[r]) {
                out.data[m * v.dim..(m + 1) * v.dim].copy_from_slice(v.row(r as ItemId));
                out.present[m] = true;
            }
        }
        Arc::new(out)
    });
    let model = warmstart_models::load(&a.model_dir(), inputs.as_deref())?;
    if model.n_items() != items.len() {
        return Err(Error::Artifact {
            path: a.dir.display().to_string(),
            reason: format!("the model knows {} items, items.json lists {}", model.n_items(), items.len()),
        });
    }
    let content_space = model.space().is_some_and(|s| s.cosine())
        && a.manifest.vectors.is_some()
        && a.manifest.vectors.as_deref().and_then(|s| s.parse::<VectorSpec>().ok()).as_ref() == space;
    let mut indexes = HashMap::new();
    for info in &a.manifest.index {
        if let Some(s) = catalog.site(&info.site) {
            indexes.insert(s, Hnsw::open(&a.dir.join("index").join(&info.file))?);
        }
    }
    Ok(Served { artifact: a, model, ids, content_space, indexes })
}

impl Service {
    /// Applies the catalog changes that other processes committed to the store since the last
    /// sync (another replica's upserts and removals, `warmstart ingest` or `embed` runs):
    /// products are upserted or taken off, with their vectors and ANN entries. Products of
    /// sites the service did not load are skipped (a new site needs a restart). Returns the
    /// changes applied.
    pub fn sync_catalog(&self) -> Result<usize> {
        let mut synced = self.synced.lock().map_err(|_| poisoned())?;
        let mut pending = Vec::new();
        let top = {
            let store = self.store.lock().map_err(|_| poisoned())?;
            let now = store.catalog_version()?;
            if now <= *synced {
                return Ok(0);
            }
            let mut top = now;
            for (gi, g) in self.groups.iter().enumerate() {
                let dataset = g.catalog.read().map_err(|_| poisoned())?.dataset.clone();
                let model = match &g.space {
                    Some(VectorSpec::Single(m)) => Some(m.as_str()),
                    _ => None,
                };
                let changes = store.catalog_changes(&dataset, *synced, model)?;
                top = changes.iter().map(|c| c.version).fold(top, i64::max);
                pending.push((gi, changes));
            }
            top
        };
        let mut applied = 0;
        for (gi, changes) in pending {
            let g = &self.groups[gi];
            let mut c = g.catalog.write().map_err(|_| poisoned())?;
            let mut index = g.content_index.write().map_err(|_| poisoned())?;
            for ch in changes {
                let Some(s) = c.site(&ch.site) else { continue };
                if ch.removed {
                    if let Some(i) = c.remove(s, &ch.meta.external_id) {
                        if let Some(ix) = index.get_mut(&s) {
                            ix.remove(i);
                        }
                    }
                    applied += 1;
                    continue;
                }
                let meta = warmstart_core::ProductMeta { site: s, ..ch.meta };
                // a vector of another dimension (a re-embedded space) waits for a restart
                let vector = ch.vector.filter(|v| v.len() == c.dim());
                // this replica's own writes are already served: no new index node for them
                if let Some(i) = c.item(s, &meta.external_id) {
                    if *c.product(i) == meta && vector.as_deref().is_none_or(|v| c.vector(i) == Some(v)) {
                        continue;
                    }
                }
                let (id, _) = c.upsert(s, meta, vector.clone())?;
                if let (Some(v), Some(ix)) = (vector, index.get_mut(&s)) {
                    ix.upsert(id, &v)?;
                }
                applied += 1;
            }
        }
        *synced = top;
        Ok(applied)
    }

    /// Loads artifacts published since start (by `warmstart train` on any machine sharing the
    /// models directory): a newer version of a served model replaces it in place, a model of
    /// a served dataset group not yet served is added. Requests keep using the old version
    /// until the new one is loaded. Returns (dataset, model, version) of what was loaded.
    pub fn sync_artifacts(&self) -> Result<Vec<(String, String, u32)>> {
        let (latest, _bad) = artifact::latest(&self.artifacts_root)?;
        let mut loaded = Vec::new();
        for a in latest {
            let Some(g) = self.groups.iter().find(|g| g.catalog.read().is_ok_and(|c| c.dataset == a.manifest.dataset))
            else {
                continue;
            };
            let newer = {
                let models = g.models.read().map_err(|_| poisoned())?;
                match models.iter().find(|s| s.name() == a.manifest.model) {
                    Some(s) => s.artifact.manifest.version < a.manifest.version,
                    None => true,
                }
            };
            if !newer {
                continue;
            }
            let dataset = a.manifest.dataset.clone();
            let (d, inputs) = {
                let store = self.store.lock().map_err(|_| poisoned())?;
                let d = store.load_dataset(Some(&dataset))?;
                let inputs = match a.manifest.vectors.as_deref() {
                    Some(spec) => Some(Arc::new(load_vectors(&store, &dataset, &d, &spec.parse()?, &mut |_| {})?)),
                    None => None,
                };
                (d, inputs)
            };
            let served = {
                let c = g.catalog.read().map_err(|_| poisoned())?;
                load_served(a, &d, &c, g.space.as_ref(), inputs)?
            };
            let key = (dataset, served.name().to_string(), served.artifact.manifest.version);
            let mut models = g.models.write().map_err(|_| poisoned())?;
            match models.iter().position(|s| s.name() == key.1) {
                Some(i) => models[i] = Arc::new(served),
                None => models.push(Arc::new(served)),
            }
            loaded.push(key);
        }
        Ok(loaded)
    }
}
