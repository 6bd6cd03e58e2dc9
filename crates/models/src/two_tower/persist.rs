//! Saving and loading a trained two-tower model.

use std::path::Path;

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use warmstart_core::paths::replace_file;

use super::{Shape, Trained, TwoTower};
use crate::nn::{candle, content_tensor};
use crate::{Error, Result};

impl TwoTower {
    pub(super) fn refresh_item_vectors(&mut self) -> candle_core::Result<()> {
        let t = &mut self.trained;
        let n = t.shape.n_items;
        let mut out = Vec::with_capacity(n * t.shape.config.dim);
        let all: Vec<u32> = (0..n as u32).collect();
        for chunk in all.chunks(4096) {
            out.extend(Self::item_tower(t, &t.net, chunk)?.detach().flatten_all()?.to_vec1::<f32>()?);
        }
        t.item_vectors = out;
        Ok(())
    }

    /// Saves the weights (`model.safetensors`) and shape (`two_tower.json`) into `dir`.
    pub(super) fn save_files(&self, dir: &Path) -> Result<()> {
        let t = &self.trained;
        let io = |e: String| Error::BadData(format!("saving to {}: {e}", dir.display()));
        std::fs::create_dir_all(dir).map_err(|e| io(e.to_string()))?;
        replace_file(&dir.join("model.safetensors"), |tmp| t.varmap.save(tmp).map_err(std::io::Error::other))
            .map_err(|e| io(e.to_string()))?;
        let shape = serde_json::to_string(&t.shape).map_err(|e| io(e.to_string()))?;
        replace_file(&dir.join("two_tower.json"), |tmp| std::fs::write(tmp, &shape)).map_err(|e| io(e.to_string()))
    }

    /// Loads a model saved by [`save`](Self::save) for the same dataset and item vectors.
    pub fn load(dir: &Path, item_vectors: Option<&warmstart_core::ItemVectors>) -> Result<TwoTower> {
        let bad = |e: String| Error::BadData(format!("loading {}: {e}", dir.display()));
        let text = std::fs::read_to_string(dir.join("two_tower.json")).map_err(|e| bad(e.to_string()))?;
        let shape: Shape = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let content = content_tensor(item_vectors, shape.n_items)?;
        if content.dim(1).map_err(candle)? != shape.content_dim.max(1) && shape.content_dim > 0 {
            return Err(bad(format!("item vectors have another dimension than the model's {}", shape.content_dim)));
        }
        let mut varmap = VarMap::new();
        {
            let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
            shape.build(&vb).map_err(candle)?;
        }
        varmap.load(dir.join("model.safetensors")).map_err(|e| bad(e.to_string()))?;
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let net = shape.build(&vb).map_err(candle)?;
        let mut model = TwoTower {
            config: shape.config.clone(),
            trained: Trained { shape, net, varmap, content, item_vectors: Vec::new(), history: Vec::new() },
        };
        model.refresh_item_vectors().map_err(candle)?;
        Ok(model)
    }
}
