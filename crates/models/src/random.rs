//! Random ranking: the floor every model must clear. Scores are a seeded hash of
//! (history, item), so runs are repeatable.

use std::ops::Range;

use warmstart_core::ItemId;

use crate::{History, Recommender, Result, TrainData};

/// Uniformly random scores.
#[derive(Debug, Clone)]
pub struct RandomModel {
    seed: u64,
}

impl RandomModel {
    /// A random ranker with a seed.
    pub fn new(seed: u64) -> Self {
        RandomModel { seed }
    }
}

impl Recommender for RandomModel {
    fn name(&self) -> String {
        "random".into()
    }

    fn fit(&mut self, _data: &TrainData) -> Result<()> {
        Ok(())
    }

    fn score(&self, history: &History, items: Range<ItemId>, out: &mut [f32]) -> Result<()> {
        let user = history.iter().fold(self.seed, |h, &(i, _)| h.rotate_left(5) ^ i as u64);
        let mut rng = warmstart_core::Rng::new(user);
        for o in out.iter_mut().take(items.len()) {
            *o = rng.unit_f32();
        }
        Ok(())
    }
}
