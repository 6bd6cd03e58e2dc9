//! Random ranking: the floor every model must clear. Scores are a seeded hash of
//! (history, item), so runs are repeatable.

use std::ops::Range;

use warmstart_core::ItemId;

use crate::artifact::{ArtifactReader, ArtifactWriter};
use crate::{Fit, History, Recommender, Result, TrainData};

/// Kind of a saved random model.
pub(crate) const KIND: &str = "random";

/// Parameters of the random ranker: its seed.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RandomConfig {
    seed: u64,
}

impl RandomConfig {
    /// A random ranker's parameters.
    pub fn new(seed: u64) -> Self {
        RandomConfig { seed }
    }
}

impl Fit for RandomConfig {
    fn name(&self) -> String {
        "random".into()
    }
    fn fit(&self, data: &TrainData) -> Result<Box<dyn Recommender>> {
        Ok(Box::new(RandomModel { seed: self.seed, n_items: data.dataset.n_items() }))
    }
}

/// Uniformly random scores.
#[derive(Debug, Clone)]
pub struct RandomModel {
    seed: u64,
    n_items: usize,
}

impl RandomModel {
    pub(crate) fn load(r: &ArtifactReader) -> Result<RandomModel> {
        let c: RandomConfig = r.config()?;
        let n_items: usize = r.extra()?;
        Ok(RandomModel { seed: c.seed, n_items })
    }
}

impl Recommender for RandomModel {
    fn name(&self) -> String {
        "random".into()
    }

    fn n_items(&self) -> usize {
        self.n_items
    }

    fn save(&self, dir: &std::path::Path) -> Result<()> {
        ArtifactWriter::new(KIND, &RandomConfig { seed: self.seed })?.extra(&self.n_items)?.write(dir)
    }

    fn score_items(&self, history: &History, items: Range<ItemId>, out: &mut [f32]) -> Result<()> {
        let user = history.iter().fold(self.seed, |h, &(i, _)| h.rotate_left(5) ^ i as u64);
        let mut rng = warmstart_core::Rng::new(user);
        for o in out.iter_mut().take(items.len()) {
            *o = rng.unit_f32();
        }
        Ok(())
    }
}
