//! The trained two-tower model as a recommender and a vector space.

use std::ops::Range;
use std::path::Path;

use candle_core::{Device, Tensor};
use warmstart_core::ItemId;

use super::{TwoTower, TwoTowerConfig, KIND};
use crate::nn::candle;
use crate::{Fit, History, Recommender, Result, TrainData};

impl Fit for TwoTowerConfig {
    fn name(&self) -> String {
        self.model_name()
    }
    fn fit(&self, data: &TrainData) -> Result<Box<dyn Recommender>> {
        Ok(Box::new(self.fit_with(data, &mut |_| {})?))
    }
}

impl Recommender for TwoTower {
    fn name(&self) -> String {
        self.config.model_name()
    }

    fn n_items(&self) -> usize {
        self.trained.shape.n_items
    }

    fn save(&self, dir: &Path) -> Result<()> {
        self.save_files(dir)?;
        crate::artifact::ArtifactWriter::new(KIND, &self.config)?.write(dir)
    }

    fn score_items(&self, history: &History, items: Range<ItemId>, out: &mut [f32]) -> Result<()> {
        let user = self.user_vector(history)?;
        crate::dot_rows(&self.trained.item_vectors, self.trained.shape.config.dim, user.as_deref(), items, out);
        Ok(())
    }

    fn score_ids(&self, history: &History, ids: &[ItemId], out: &mut [f32]) -> Result<()> {
        crate::check_ids(self, history, ids, out)?;
        let user = self.user_vector(history)?;
        crate::dot_rows(
            &self.trained.item_vectors,
            self.trained.shape.config.dim,
            user.as_deref(),
            ids.iter().copied(),
            out,
        );
        Ok(())
    }

    fn space(&self) -> Option<&dyn crate::VectorSpace> {
        Some(self)
    }
}

impl TwoTower {
    /// The user tower's output for a history (none for an empty one).
    fn user_vector(&self, history: &History) -> Result<Option<Vec<f32>>> {
        let t = &self.trained;
        let dim = t.shape.config.dim;
        let hist: Vec<(ItemId, f32)> =
            history.iter().filter(|(i, w)| (*i as usize) < t.shape.n_items && *w > 0.0).copied().collect();
        if hist.is_empty() {
            return Ok(None);
        }
        let dev = &Device::Cpu;
        let rows: Vec<f32> = hist
            .iter()
            .flat_map(|(i, _)| t.item_vectors[*i as usize * dim..(*i as usize + 1) * dim].to_vec())
            .collect();
        let h = Tensor::from_vec(rows, (hist.len(), dim), dev).map_err(candle)?;
        let pool = [hist.iter().enumerate().map(|(slot, x)| (slot as u32, x.1)).collect::<Vec<_>>()];
        let u = self.user_tower(&t.net, &pool, &h).and_then(|u| u.flatten_all()?.to_vec1::<f32>()).map_err(candle)?;
        Ok(Some(u))
    }
}

impl crate::VectorSpace for TwoTower {
    fn dim(&self) -> usize {
        self.trained.shape.config.dim
    }
    fn cosine(&self) -> bool {
        false
    }
    fn item_vector(&self, item: ItemId) -> Option<Vec<f32>> {
        let dim = self.trained.shape.config.dim;
        self.trained.item_vectors.get(item as usize * dim..(item as usize + 1) * dim).map(<[f32]>::to_vec)
    }
    fn queries(&self, history: &History, _target: warmstart_core::SiteId) -> Result<Vec<Vec<f32>>> {
        Ok(self.user_vector(history)?.into_iter().collect())
    }
}
