//! Saving and loading a fitted GraphSAGE model: weights, the inference cache and the shape.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use warmstart_core::paths::replace_file;

use super::{Cache, GraphSage, Shape, Trained};
use crate::nn::candle;
use crate::{Error, Result};

impl GraphSage {
    /// Saves the weights (`model.safetensors`), the inference cache (`cache.safetensors`) and
    /// the shape (`graphsage.json`) into `dir`.
    pub(super) fn save_files(&self, dir: &Path) -> Result<()> {
        let t = &self.trained;
        let io = |e: String| Error::BadData(format!("saving to {}: {e}", dir.display()));
        std::fs::create_dir_all(dir).map_err(|e| io(e.to_string()))?;
        replace_file(&dir.join("model.safetensors"), |tmp| t.varmap.save(tmp).map_err(std::io::Error::other))
            .map_err(|e| io(e.to_string()))?;
        let n = t.shape.n_items;
        let mut tensors: HashMap<String, Tensor> = HashMap::new();
        for (l, rows) in t.cache.item_layers.iter().enumerate() {
            let width = rows.len() / n.max(1);
            tensors
                .insert(format!("layer{l}"), Tensor::from_vec(rows.clone(), (n, width), &Device::Cpu).map_err(candle)?);
        }
        tensors.insert(
            "out".into(),
            Tensor::from_vec(t.cache.item_out.clone(), (n, t.shape.config.dim), &Device::Cpu).map_err(candle)?,
        );
        replace_file(&dir.join("cache.safetensors"), |tmp| {
            candle_core::safetensors::save(&tensors, tmp).map_err(std::io::Error::other)
        })
        .map_err(|e| io(e.to_string()))?;
        let shape = serde_json::to_string(&t.shape).map_err(|e| io(e.to_string()))?;
        replace_file(&dir.join("graphsage.json"), |tmp| std::fs::write(tmp, &shape)).map_err(|e| io(e.to_string()))
    }

    /// Loads a model saved by [`save`](Self::save) (its own cache; no graph needed).
    pub fn load(dir: &Path) -> Result<GraphSage> {
        let bad = |e: String| Error::BadData(format!("loading {}: {e}", dir.display()));
        let text = std::fs::read_to_string(dir.join("graphsage.json")).map_err(|e| bad(e.to_string()))?;
        let shape: Shape = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let mut varmap = VarMap::new();
        {
            let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
            shape.build(&vb).map_err(candle)?;
        }
        varmap.load(dir.join("model.safetensors")).map_err(|e| bad(e.to_string()))?;
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let net = shape.build(&vb).map_err(candle)?;
        let tensors = candle_core::safetensors::load(dir.join("cache.safetensors"), &Device::Cpu)
            .map_err(|e| bad(e.to_string()))?;
        let rows = |name: &str| -> Result<Vec<f32>> {
            let t = tensors.get(name).ok_or_else(|| bad(format!("cache has no `{name}`")))?;
            if t.dim(0).map_err(candle)? != shape.n_items {
                return Err(bad(format!("cache `{name}` is not for {} products", shape.n_items)));
            }
            t.flatten_all().and_then(|x| x.to_vec1::<f32>()).map_err(candle)
        };
        let item_layers = (0..shape.config.fanouts.len()).map(|l| rows(&format!("layer{l}"))).collect::<Result<_>>()?;
        let cache = Cache { item_layers, item_out: rows("out")? };
        let content = Vec::new();
        Ok(GraphSage {
            config: shape.config.clone(),
            trained: Trained { shape, net, varmap, content, cache, history: Vec::new() },
        })
    }
}
