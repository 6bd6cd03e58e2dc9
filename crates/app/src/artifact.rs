//! Trained artifacts: what `warmstart train` publishes and `warmstart serve` loads.
//!
//! Layout, beside the store (`<store>.models/artifacts/`):
//!
//! ```text
//! <dataset>/<model slug>/v0001/manifest.json   what it is, how it was trained and measured
//!                             /items.json      [site, external id] of every model item id
//!                             /model/          the fitted model (warmstart_models::load)
//!                             /index/<site>.hnsw   ANN index of the model's item vectors
//! ```
//!
//! A version is written into a temporary directory beside the others and renamed into place
//! only when complete (the manifest last), so a reader sees a whole version or none, and a
//! killed trainer leaves at most a `.tmp-*` directory that listing ignores.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use warmstart_core::Dataset;

use crate::{Error, Result};

/// Version of the manifest layout.
pub const MANIFEST_FORMAT: u32 = 1;

/// How the model was trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingInfo {
    /// Seconds to fit.
    pub seconds: f64,
    /// Users in the training matrix.
    pub users: usize,
    /// Non-zeros of the (binary) training matrix.
    pub interactions: usize,
    /// Share of cross-site users held out to measure the model (0: trained on everything).
    pub holdout_share: f64,
    /// Seed.
    pub seed: u64,
    /// What fitting chose (a blend's weights and the validation scores behind them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Metrics of one evaluation task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskEvaluation {
    /// Task name (`*→site`).
    pub task: String,
    /// Test cases.
    pub cases: usize,
    /// Mean metrics (`ndcg@10`, `recall@10`, …).
    pub metrics: BTreeMap<String, f64>,
}

/// The evaluation the published model itself scored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Protocol description.
    pub protocol: String,
    /// One entry per target site.
    pub tasks: Vec<TaskEvaluation>,
}

impl Evaluation {
    /// Case-weighted mean of a metric over the tasks.
    pub fn mean(&self, metric: &str) -> Option<f64> {
        let (mut sum, mut n) = (0.0, 0usize);
        for t in &self.tasks {
            if let Some(v) = t.metrics.get(metric) {
                sum += v * t.cases as f64;
                n += t.cases;
            }
        }
        (n > 0).then(|| sum / n as f64)
    }
}

/// An ANN index file of the artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexInfo {
    /// Site key.
    pub site: String,
    /// File name under `index/`.
    pub file: String,
    /// Vectors indexed.
    pub items: usize,
    /// Seconds to build.
    pub build_seconds: f64,
}

/// What an artifact is, how it was trained and how it measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Layout version.
    pub format: u32,
    /// Model name as given to `train` (with parameters), e.g. `two-tower:epochs=3`.
    pub model: String,
    /// The fitted model's own description.
    pub display_name: String,
    /// Dataset group.
    pub dataset: String,
    /// Content vectors the model read (`None` for collaborative models).
    pub vectors: Option<String>,
    /// Fingerprint of the dataset it was trained on.
    pub fingerprint: String,
    /// Number of model item ids.
    pub items: usize,
    /// Version number (assigned at publication).
    pub version: u32,
    /// Unix seconds of publication.
    pub created_unix: u64,
    /// Training.
    pub training: TrainingInfo,
    /// The evaluation this fitted model scored (none when trained on everything).
    pub evaluation: Option<Evaluation>,
    /// ANN indexes.
    pub index: Vec<IndexInfo>,
}

/// A published artifact on disk.
#[derive(Debug, Clone)]
pub struct ArtifactRef {
    /// Its version directory.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
}

impl ArtifactRef {
    /// The fitted model's directory.
    pub fn model_dir(&self) -> PathBuf {
        self.dir.join("model")
    }
    /// The [site, external id] of every model item id.
    pub fn items(&self) -> Result<Vec<(String, String)>> {
        let path = self.dir.join("items.json");
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        serde_json::from_str(&text)
            .map_err(|e| Error::Artifact { path: path.display().to_string(), reason: e.to_string() })
    }
}

/// The artifacts directory of a store.
pub fn root(store: &warmstart_store::Store) -> PathBuf {
    store.models_dir().join("artifacts")
}

/// A file-system-safe name for a model name (`two-tower:epochs=3` → `two-tower_epochs-3`).
pub fn slug(model: &str) -> String {
    model
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' => c,
            '=' => '-',
            _ => '_',
        })
        .collect()
}

/// FNV-1a fingerprint of a dataset: sites, products (site and external id, in id order) and
/// interactions (user, item, kind).
pub fn fingerprint(d: &Dataset) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes.iter().chain(std::iter::once(&0xffu8)) {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
    };
    for s in &d.sites {
        feed(s.key.as_bytes());
    }
    for p in &d.products {
        feed(&p.site.to_le_bytes());
        feed(p.external_id.as_bytes());
    }
    for r in &d.interactions {
        feed(&r.user.to_le_bytes());
        feed(&r.item.to_le_bytes());
        feed(&[r.kind.code()]);
    }
    format!("{h:016x}")
}

/// The [site, external id] of every item of a dataset, in item-id order.
pub fn item_keys(d: &Dataset) -> Vec<(String, String)> {
    d.products.iter().map(|p| (d.sites[p.site as usize].key.clone(), p.external_id.clone())).collect()
}

fn version_of(name: &str) -> Option<u32> {
    name.strip_prefix('v').and_then(|v| v.parse().ok())
}

fn sync_dir(dir: &Path) {
    // durability of the rename; not every platform can open a directory
    if let Ok(f) = std::fs::File::open(dir) {
        let _ = f.sync_all();
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    f.write_all(bytes).map_err(|e| Error::io(path, e))?;
    f.sync_all().map_err(|e| Error::io(path, e))
}

/// Publishes a new version of `manifest.model` for `manifest.dataset` under `root`:
/// `write(tmp)` fills a temporary directory (the model under `model/`, indexes under
/// `index/`), then the item keys and the manifest are written and the directory is renamed
/// to the next free `vNNNN`. Returns the published artifact.
pub fn publish(
    root: &Path,
    mut manifest: Manifest,
    items: &[(String, String)],
    write: impl FnOnce(&Path, &mut Manifest) -> Result<()>,
) -> Result<ArtifactRef> {
    let dir = root.join(slug(&manifest.dataset)).join(slug(&manifest.model));
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let tmp = dir.join(format!(".tmp-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let result = (|| -> Result<ArtifactRef> {
        write(&tmp, &mut manifest)?;
        let items_json = serde_json::to_vec(items).map_err(|e| Error::bad("items", e.to_string()))?;
        write_synced(&tmp.join("items.json"), &items_json)?;
        manifest.format = MANIFEST_FORMAT;
        manifest.items = items.len();
        manifest.created_unix =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        for _attempt in 0..100 {
            let next = list_versions(&dir)?.into_iter().max().unwrap_or(0) + 1;
            manifest.version = next;
            let text = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::bad("manifest", e.to_string()))?;
            write_synced(&tmp.join("manifest.json"), &text)?;
            sync_dir(&tmp);
            let target = dir.join(format!("v{next:04}"));
            if target.exists() {
                continue; // another trainer took this number
            }
            match std::fs::rename(&tmp, &target) {
                Ok(()) => {
                    sync_dir(&dir);
                    return Ok(ArtifactRef { dir: target, manifest: manifest.clone() });
                }
                Err(_) if target.exists() => continue,
                Err(e) => return Err(Error::io(&target, e)),
            }
        }
        Err(Error::Artifact { path: dir.display().to_string(), reason: "no free version number".into() })
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

fn list_versions(dir: &Path) -> Result<Vec<u32>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let e = e.map_err(|e| Error::io(dir, e))?;
        if let Some(v) = e.file_name().to_str().and_then(version_of) {
            out.push(v);
        }
    }
    Ok(out)
}

/// Reads one artifact version directory.
pub fn read(dir: &Path) -> Result<ArtifactRef> {
    let path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let manifest: Manifest = serde_json::from_str(&text)
        .map_err(|e| Error::Artifact { path: path.display().to_string(), reason: e.to_string() })?;
    if manifest.format != MANIFEST_FORMAT {
        return Err(Error::Artifact {
            path: path.display().to_string(),
            reason: format!("manifest format {} (this build reads {MANIFEST_FORMAT})", manifest.format),
        });
    }
    Ok(ArtifactRef { dir: dir.to_path_buf(), manifest })
}

/// The newest version of every (dataset, model) under `root`, sorted by dataset and model.
/// Versions whose manifest cannot be read are reported in the second list and skipped.
pub fn latest(root: &Path) -> Result<(Vec<ArtifactRef>, Vec<Error>)> {
    let mut out = Vec::new();
    let mut bad = Vec::new();
    if !root.exists() {
        return Ok((out, bad));
    }
    let mut datasets: Vec<PathBuf> = read_dirs(root)?;
    datasets.sort();
    for ds in datasets {
        let mut models = read_dirs(&ds)?;
        models.sort();
        for m in models {
            let mut versions: Vec<(u32, PathBuf)> = read_dirs(&m)?
                .into_iter()
                .filter_map(|p| p.file_name().and_then(|n| n.to_str()).and_then(version_of).map(|v| (v, p.clone())))
                .collect();
            versions.sort();
            // the newest readable version
            for (_, dir) in versions.into_iter().rev() {
                match read(&dir) {
                    Ok(a) => {
                        out.push(a);
                        break;
                    }
                    Err(e) => bad.push(e),
                }
            }
        }
    }
    Ok((out, bad))
}

fn read_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let e = e.map_err(|e| Error::io(dir, e))?;
        let name = e.file_name();
        if e.path().is_dir() && !name.to_string_lossy().starts_with('.') {
            out.push(e.path());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(model: &str) -> Manifest {
        Manifest {
            format: 0,
            model: model.into(),
            display_name: model.into(),
            dataset: "d".into(),
            vectors: None,
            fingerprint: "f".into(),
            items: 0,
            version: 0,
            created_unix: 0,
            training: TrainingInfo {
                seconds: 1.0,
                users: 1,
                interactions: 1,
                holdout_share: 0.1,
                seed: 1,
                notes: Vec::new(),
            },
            evaluation: None,
            index: Vec::new(),
        }
    }

    #[test]
    fn versions_are_published_whole_and_failures_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let items = vec![("a".to_string(), "1".to_string())];
        let a = publish(dir.path(), manifest("two-tower:epochs=3"), &items, |_, _| Ok(())).unwrap();
        let b = publish(dir.path(), manifest("two-tower:epochs=3"), &items, |_, _| Ok(())).unwrap();
        assert_eq!((a.manifest.version, b.manifest.version), (1, 2));
        assert!(b.dir.ends_with("d/two-tower_epochs-3/v0002"));
        assert_eq!(b.items().unwrap(), items);
        let failed = publish(dir.path(), manifest("two-tower:epochs=3"), &items, |_, _| {
            Err(Error::bad("x", "simulated failure"))
        });
        assert!(failed.is_err());
        let (latest, bad) = latest(dir.path()).unwrap();
        assert!(bad.is_empty());
        assert_eq!(latest.len(), 1);
        assert_eq!(latest[0].manifest.version, 2);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("d/two-tower_epochs-3"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "a failed publication is cleaned up");
        // a corrupt newest manifest falls back to the previous version and is reported
        std::fs::write(b.dir.join("manifest.json"), "{").unwrap();
        let (latest, bad) = super::latest(dir.path()).unwrap();
        assert_eq!(latest[0].manifest.version, 1);
        assert_eq!(bad.len(), 1);
    }
}
