//! Popularity: the number of training users who interacted with each item, optionally only
//! within a recent window. History is ignored (the honest "no personalisation" baseline).

use std::ops::Range;

use warmstart_core::{EventTime, ItemId};

use crate::artifact::{ArtifactReader, ArtifactWriter};
use crate::{check, Fit, History, Recommender, Result, TrainData};

/// Kind of a saved popularity model.
pub(crate) const KIND: &str = "pop";

/// Hyper-parameters of [`Popularity`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PopularityConfig {
    recent_window: Option<i64>,
}

/// Builder of [`PopularityConfig`].
#[derive(Debug, Clone, Default)]
pub struct PopularityBuilder {
    recent_window: Option<i64>,
}

impl PopularityConfig {
    /// Starts a builder.
    pub fn builder() -> PopularityBuilder {
        PopularityBuilder::default()
    }
}

impl PopularityBuilder {
    /// Count only interactions within this many time units (seconds for timestamps,
    /// positions for sequences) of the latest one.
    pub fn recent_window(mut self, w: i64) -> Self {
        self.recent_window = Some(w);
        self
    }
    /// Validates.
    pub fn build(self) -> Result<PopularityConfig> {
        if let Some(w) = self.recent_window {
            check("recent_window", w > 0, w, "must be positive")?;
        }
        Ok(PopularityConfig { recent_window: self.recent_window })
    }
}

/// Most-popular items (fitted).
#[derive(Debug, Clone)]
pub struct Popularity {
    config: PopularityConfig,
    counts: Vec<f32>,
}

impl Popularity {
    /// Fitted popularity counts by item.
    pub fn counts(&self) -> &[f32] {
        &self.counts
    }

    pub(crate) fn load(r: &ArtifactReader) -> Result<Popularity> {
        let (_, counts) = r.f32("counts")?;
        Ok(Popularity { config: r.config()?, counts })
    }
}

impl PopularityConfig {
    fn name(&self) -> String {
        match self.recent_window {
            Some(w) => format!("pop(window={w})"),
            None => "pop".into(),
        }
    }

    /// Counts the training users of every item.
    pub fn fit_popularity(&self, data: &TrainData) -> Result<Popularity> {
        let m = data.matrix;
        let mut counts = vec![0f32; m.n_cols()];
        match self.recent_window {
            None => {
                for &c in m.indices() {
                    counts[c as usize] += 1.0;
                }
            }
            Some(w) => {
                // Recency needs event times: use the dataset's interactions that are in the
                // training matrix (same user and item).
                let t = |r: &warmstart_core::InteractionRow| match r.time {
                    Some(EventTime::Timestamp(v)) | Some(EventTime::Sequence(v)) => Some(v),
                    None => None,
                };
                let latest = data.dataset.interactions.iter().filter_map(t).max().unwrap_or(0);
                for r in &data.dataset.interactions {
                    let recent = t(r).is_none_or(|v| v >= latest.saturating_sub(w));
                    if recent && m.get(r.user as usize, r.item) != 0.0 {
                        counts[r.item as usize] += 1.0;
                    }
                }
            }
        }
        Ok(Popularity { config: self.clone(), counts })
    }
}

impl Fit for PopularityConfig {
    fn name(&self) -> String {
        PopularityConfig::name(self)
    }
    fn fit(&self, data: &TrainData) -> Result<Box<dyn Recommender>> {
        Ok(Box::new(self.fit_popularity(data)?))
    }
}

impl Recommender for Popularity {
    fn name(&self) -> String {
        self.config.name()
    }

    fn n_items(&self) -> usize {
        self.counts.len()
    }

    fn save(&self, dir: &std::path::Path) -> Result<()> {
        ArtifactWriter::new(KIND, &self.config)?.f32("counts", &[self.counts.len()], &self.counts).write(dir)
    }

    fn score_items(&self, _history: &History, items: Range<ItemId>, out: &mut [f32]) -> Result<()> {
        out.copy_from_slice(&self.counts[items.start as usize..items.end as usize]);
        Ok(())
    }
}
