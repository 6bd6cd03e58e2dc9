//! A learned blend of several models: each member's scores of the target shop are
//! standardised per request (z-scores over the shop's items), and the blend is their weighted
//! sum. The weights are chosen on validation users carved out of the training users, cross-
//! fitted in disjoint folds (members fitted without each fold; each validation user has one
//! shop's items hidden and ranked from the rest, as the cold-start protocol does), by NDCG@10
//! over a grid on the simplex, pooled over the folds; then the members are fitted again on all
//! the training data. No test user ever informs the weights. A second weight
//! vector serves returning shoppers (histories holding items of the ranked shop): it is chosen
//! on one leave-one-item-out case per validation user, and cold-start requests never use it.
//! A third serves histories of one or two other-shop items: it is chosen on the cold-start
//! cases graded again with their histories cut to one or two items at random.

mod config;
mod fit;

use std::ops::Range;
use std::path::Path;

pub use config::{BlendBuilder, BlendConfig, Normalisation};

use crate::artifact::{ArtifactReader, ArtifactWriter};
use crate::{Explanation, History, Recommender, Result};
use warmstart_core::ItemId;

/// Kind of a saved blend.
pub(crate) const KIND: &str = "blend";

/// Fewest validation cases a history-length bucket needs for weights of its own (with
/// `by_history`); a smaller bucket keeps the overall weights.
pub const MIN_BUCKET_CASES: usize = 50;

/// History-length buckets of `by_history` (other-shop items: 1–2, 3–5, 6+; none counts as
/// the first).
fn history_bucket(n: usize) -> usize {
    match n {
        0..=2 => 0,
        3..=5 => 1,
        _ => 2,
    }
}
const BUCKETS: usize = 3;

/// Members of `blend`; `blend-content` adds `content`.
pub const DEFAULT_MEMBERS: [&str; 5] = ["itemknn", "rp3beta", "als", "pop", "brandknn"];

/// The fitted blend.
pub struct Blend {
    config: BlendConfig,
    /// The overall weights, then (with `by_history`) one vector per history-length bucket,
    /// (with `short_history`) the short histories' vector, (with `item_cases`) the returning
    /// shoppers'.
    weights: Vec<Vec<f32>>,
    /// Fitted members, `None` where the weight is 0.
    members: Vec<Option<Box<dyn Recommender>>>,
    /// The chosen weights and their validation NDCG@10, and each member's alone (empty when
    /// loaded).
    notes: Vec<String>,
}

impl Blend {
    /// The members' overall weights, in member order.
    pub fn weights(&self) -> &[f32] {
        &self.weights[0]
    }

    /// The weights used for a history of `n` other-shop items, `warm` when it also holds
    /// items of the ranked shop.
    pub fn weights_for(&self, n: usize, warm: bool) -> &[f32] {
        if warm && self.config.item_cases {
            if let Some(w) = self.weights.last() {
                return w;
            }
        }
        let buckets = if self.config.by_history { BUCKETS } else { 0 };
        if self.config.short_history && history_bucket(n) == 0 {
            return &self.weights[1 + buckets];
        }
        if buckets > 0 {
            return &self.weights[1 + history_bucket(n)];
        }
        &self.weights[0]
    }

    pub(crate) fn load(r: &ArtifactReader, item_vectors: Option<&warmstart_core::ItemVectors>) -> Result<Blend> {
        let config: BlendConfig = r.config()?;
        // the cold-start vector, one per history bucket (`by_history`), the short histories'
        // (`short_history`), then the returning shoppers' (`item_cases`); artifacts before
        // `by_history` hold a single vector
        let weights: Vec<Vec<f32>> = r.extra().or_else(|_| r.extra::<Vec<f32>>().map(|w| vec![w]))?;
        let n = config.members.len();
        if weights.is_empty()
            || weights.len()
                != 1 + if config.by_history { BUCKETS } else { 0 }
                    + usize::from(config.short_history)
                    + usize::from(config.item_cases)
            || weights.iter().any(|w| w.len() != n || w.iter().any(|x| !x.is_finite()))
        {
            return Err(r.error(format!("weights of the wrong shape or not finite for {n} members")));
        }
        let members = (0..n)
            .map(|k| {
                if weights.iter().any(|w| w[k] > 0.0) {
                    crate::load(&member_dir(r.dir(), k), item_vectors).map(Some)
                } else {
                    Ok(None)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let sizes: Vec<usize> = members.iter().flatten().map(|m| m.n_items()).collect();
        if sizes.is_empty() || sizes.iter().any(|&n| n != sizes[0]) {
            return Err(r.error("no member, or members fitted on different items"));
        }
        Ok(Blend { config, weights, members, notes: Vec::new() })
    }
}

fn member_dir(dir: &Path, k: usize) -> std::path::PathBuf {
    dir.join(format!("member-{k}"))
}

impl Recommender for Blend {
    fn name(&self) -> String {
        self.config.model_name()
    }

    fn n_items(&self) -> usize {
        self.members.iter().flatten().next().map(|m| m.n_items()).unwrap_or(0)
    }

    fn score_items(&self, history: &History, items: Range<ItemId>, out: &mut [f32]) -> Result<()> {
        out.fill(0.0);
        let mut s = vec![0f32; out.len()];
        let other_shop = history.iter().filter(|(i, _)| !items.contains(i)).count();
        for (w, model) in self.weights_for(other_shop, other_shop < history.len()).iter().zip(&self.members) {
            if let Some(model) = model.as_ref().filter(|_| *w > 0.0) {
                model.score(history, items.clone(), &mut s)?;
                self.config.normalisation.apply(&mut s);
                for (o, x) in out.iter_mut().zip(&s) {
                    *o += w * x;
                }
            }
        }
        Ok(())
    }

    fn explain(&self, history: &History, items: &[ItemId]) -> Option<Vec<Explanation>> {
        let heaviest = self.weights[0].iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|e| e.0)?;
        self.members[heaviest].as_ref()?.explain(history, items)
    }

    fn fit_notes(&self) -> Vec<String> {
        self.notes.clone()
    }

    fn save(&self, dir: &Path) -> Result<()> {
        for (k, m) in self.members.iter().enumerate() {
            if let Some(m) = m {
                m.save(&member_dir(dir, k))?;
            }
        }
        ArtifactWriter::new(KIND, &self.config)?.extra(&self.weights)?.write(dir)
    }
}
