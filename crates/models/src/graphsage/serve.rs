//! A fitted GraphSAGE model behind the crate's traits: fitting from parameters, scoring,
//! saving, and its vector space (the cached product outputs and inductive user embeddings).

use std::ops::Range;
use std::path::Path;

use warmstart_core::ItemId;

use super::{GraphSage, GraphSageConfig, KIND};
use crate::nn::candle;
use crate::{Fit, History, Recommender, Result, TrainData};

impl Fit for GraphSageConfig {
    fn name(&self) -> String {
        self.model_name()
    }
    fn fit(&self, data: &TrainData) -> Result<Box<dyn Recommender>> {
        Ok(Box::new(self.fit_with(data, &mut |_| {}, &mut |_, _, _| {})?))
    }
}

impl Recommender for GraphSage {
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
        crate::dot_rows(&self.trained.cache.item_out, self.trained.shape.config.dim, user.as_deref(), items, out);
        Ok(())
    }

    fn score_ids(&self, history: &History, ids: &[ItemId], out: &mut [f32]) -> Result<()> {
        crate::check_ids(self, history, ids, out)?;
        let user = self.user_vector(history)?;
        crate::dot_rows(
            &self.trained.cache.item_out,
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

impl GraphSage {
    /// The embedding of an inductive user from their history (none for an empty one).
    fn user_vector(&self, history: &History) -> Result<Option<Vec<f32>>> {
        let t = &self.trained;
        let n = t.shape.n_items;
        let hist: Vec<(ItemId, f32)> = history.iter().filter(|(i, w)| (*i as usize) < n && *w > 0.0).copied().collect();
        if hist.is_empty() {
            return Ok(None);
        }
        Ok(Some(self.embed_user(t, &hist).map_err(candle)?))
    }
}

impl crate::VectorSpace for GraphSage {
    fn dim(&self) -> usize {
        self.trained.shape.config.dim
    }
    fn cosine(&self) -> bool {
        false
    }
    fn item_vector(&self, item: ItemId) -> Option<Vec<f32>> {
        let dim = self.trained.shape.config.dim;
        self.trained.cache.item_out.get(item as usize * dim..(item as usize + 1) * dim).map(<[f32]>::to_vec)
    }
    fn queries(&self, history: &History, _target: warmstart_core::SiteId) -> Result<Vec<Vec<f32>>> {
        Ok(self.user_vector(history)?.into_iter().collect())
    }
}
