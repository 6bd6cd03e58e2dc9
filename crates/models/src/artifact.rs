//! Saved models: a directory holding `model.json` (the model kind, a format version, the
//! validated hyper-parameters and small extras) and `arrays.safetensors` (the fitted state as
//! named little-endian `f32` / `u32` arrays). [`load`](crate::load) reads any of them back.
//!
//! Atomicity (temporary directory + rename) is the caller's concern: a model only writes
//! into the directory it is given.

use std::path::{Path, PathBuf};

use warmstart_core::paths::replace_file;

use safetensors::tensor::{Dtype, TensorView};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::{Error, Result};

/// Version of the layout written by [`ArtifactWriter`].
pub const FORMAT_VERSION: u32 = 1;
const META: &str = "model.json";
const ARRAYS: &str = "arrays.safetensors";

#[derive(Serialize, Deserialize)]
struct Meta {
    kind: String,
    format: u32,
    config: serde_json::Value,
    #[serde(default)]
    extra: serde_json::Value,
}

fn artifact_error(path: &Path, reason: impl ToString) -> Error {
    Error::Artifact { path: path.display().to_string(), reason: reason.to_string() }
}

/// Collects a model's arrays and writes them with its config.
pub struct ArtifactWriter {
    kind: &'static str,
    config: serde_json::Value,
    extra: serde_json::Value,
    arrays: Vec<(String, Dtype, Vec<usize>, Vec<u8>)>,
}

impl ArtifactWriter {
    /// Starts an artifact of `kind` with its hyper-parameters.
    pub fn new(kind: &'static str, config: &impl Serialize) -> Result<Self> {
        let config = serde_json::to_value(config).map_err(|e| artifact_error(Path::new(META), e))?;
        Ok(ArtifactWriter { kind, config, extra: serde_json::Value::Null, arrays: Vec::new() })
    }
    /// Small extra state (JSON).
    pub fn extra(mut self, extra: &impl Serialize) -> Result<Self> {
        self.extra = serde_json::to_value(extra).map_err(|e| artifact_error(Path::new(META), e))?;
        Ok(self)
    }
    /// Adds an `f32` array of shape `shape`.
    pub fn f32(mut self, name: &str, shape: &[usize], data: &[f32]) -> Self {
        let bytes = data.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.arrays.push((name.to_string(), Dtype::F32, shape.to_vec(), bytes));
        self
    }
    /// Adds a `u32` array of shape `shape`.
    pub fn u32(mut self, name: &str, shape: &[usize], data: &[u32]) -> Self {
        let bytes = data.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.arrays.push((name.to_string(), Dtype::U32, shape.to_vec(), bytes));
        self
    }
    /// Writes `model.json` and `arrays.safetensors` into `dir` (created if needed).
    pub fn write(self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| artifact_error(dir, e))?;
        let meta = Meta { kind: self.kind.to_string(), format: FORMAT_VERSION, config: self.config, extra: self.extra };
        let text = serde_json::to_string_pretty(&meta).map_err(|e| artifact_error(&dir.join(META), e))?;
        replace_file(&dir.join(META), |tmp| std::fs::write(tmp, &text))
            .map_err(|e| artifact_error(&dir.join(META), e))?;
        if self.arrays.is_empty() {
            return Ok(());
        }
        let mut views = Vec::with_capacity(self.arrays.len());
        for (name, dtype, shape, bytes) in &self.arrays {
            let view = TensorView::new(*dtype, shape.clone(), bytes).map_err(|e| artifact_error(dir, e))?;
            views.push((name.clone(), view));
        }
        let path = dir.join(ARRAYS);
        replace_file(&path, |tmp| safetensors::serialize_to_file(views, None, tmp).map_err(std::io::Error::other))
            .map_err(|e| artifact_error(&path, e))
    }
}

/// A saved model read back.
pub struct ArtifactReader {
    dir: PathBuf,
    kind: String,
    config: serde_json::Value,
    extra: serde_json::Value,
    bytes: Vec<u8>,
}

impl ArtifactReader {
    /// Reads `dir`'s `model.json` and arrays (the arrays may be absent for models that keep
    /// their own files).
    pub fn open(dir: &Path) -> Result<Self> {
        let meta_path = dir.join(META);
        let text = std::fs::read_to_string(&meta_path).map_err(|e| artifact_error(&meta_path, e))?;
        let meta: Meta = serde_json::from_str(&text).map_err(|e| artifact_error(&meta_path, e))?;
        if meta.format != FORMAT_VERSION {
            return Err(artifact_error(
                &meta_path,
                format!("format {} (this build reads {FORMAT_VERSION})", meta.format),
            ));
        }
        let arrays = dir.join(ARRAYS);
        let bytes =
            if arrays.exists() { std::fs::read(&arrays).map_err(|e| artifact_error(&arrays, e))? } else { Vec::new() };
        Ok(ArtifactReader { dir: dir.to_path_buf(), kind: meta.kind, config: meta.config, extra: meta.extra, bytes })
    }
    /// The model kind written by the model's `save`.
    pub fn kind(&self) -> &str {
        &self.kind
    }
    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// The hyper-parameters.
    pub fn config<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_value(self.config.clone()).map_err(|e| artifact_error(&self.dir.join(META), e))
    }
    /// The extra state.
    pub fn extra<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_value(self.extra.clone()).map_err(|e| artifact_error(&self.dir.join(META), e))
    }
    fn array(&self, name: &str, dtype: Dtype) -> Result<(Vec<usize>, &[u8])> {
        let path = self.dir.join(ARRAYS);
        let st = safetensors::SafeTensors::deserialize(&self.bytes).map_err(|e| artifact_error(&path, e))?;
        let view = st.tensor(name).map_err(|e| artifact_error(&path, format!("array `{name}`: {e}")))?;
        if view.dtype() != dtype {
            return Err(artifact_error(&path, format!("array `{name}` is {:?}, expected {dtype:?}", view.dtype())));
        }
        let shape = view.shape().to_vec();
        let start = view.data().as_ptr() as usize - self.bytes.as_ptr() as usize;
        Ok((shape, &self.bytes[start..start + view.data().len()]))
    }
    /// An `f32` array and its shape.
    pub fn f32(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        let (shape, b) = self.array(name, Dtype::F32)?;
        Ok((shape, b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()))
    }
    /// A `u32` array and its shape.
    pub fn u32(&self, name: &str) -> Result<(Vec<usize>, Vec<u32>)> {
        let (shape, b) = self.array(name, Dtype::U32)?;
        Ok((shape, b.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()))
    }
    /// An error about this artifact.
    pub fn error(&self, reason: impl ToString) -> Error {
        artifact_error(&self.dir, reason)
    }
}

/// A CSR list of per-item neighbour lists as (offsets, ids, values).
pub(crate) fn pack_lists(lists: &[Vec<(u32, f32)>]) -> (Vec<u32>, Vec<u32>, Vec<f32>) {
    let mut offsets = Vec::with_capacity(lists.len() + 1);
    let (mut ids, mut vals) = (Vec::new(), Vec::new());
    offsets.push(0u32);
    for l in lists {
        for &(i, v) in l {
            ids.push(i);
            vals.push(v);
        }
        offsets.push(ids.len() as u32);
    }
    (offsets, ids, vals)
}

/// The inverse of [`pack_lists`], checked.
pub(crate) fn unpack_lists(
    r: &ArtifactReader,
    offsets: &[u32],
    ids: &[u32],
    vals: &[f32],
) -> Result<Vec<Vec<(u32, f32)>>> {
    if ids.len() != vals.len() || offsets.last().copied().unwrap_or(0) as usize != ids.len() {
        return Err(r.error("neighbour lists are inconsistent"));
    }
    offsets
        .windows(2)
        .map(|w| {
            if w[0] > w[1] {
                return Err(r.error("neighbour offsets decrease"));
            }
            Ok(ids[w[0] as usize..w[1] as usize]
                .iter()
                .copied()
                .zip(vals[w[0] as usize..w[1] as usize].iter().copied())
                .collect())
        })
        .collect()
}

/// Checks an array's length.
pub(crate) fn expect_len(r: &ArtifactReader, name: &str, got: usize, want: usize) -> Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(r.error(format!("array `{name}` has {got} values, expected {want}")))
    }
}
