//! Recommendation models behind one [`Recommender`] trait: fit on a training matrix, fold in
//! a user from their history on other sites without retraining, score or rank a site's
//! catalog, explain where the model can.

pub mod als;
pub mod bpr;
pub mod content;
pub mod graph;
pub mod graphsage;
pub mod itemknn;
mod linalg;
mod nn;
pub mod popularity;
pub mod random;
pub mod two_tower;

pub use als::{Als, AlsConfig};
pub use bpr::{Bpr, BprConfig};
pub use content::{ContentConfig, ContentModel};
pub use graphsage::{
    Aggregator, EpochGraph, GraphSage, GraphSageConfig, GraphSageEpoch, GraphSageExport, GraphSageLoss,
};
pub use itemknn::{ItemKnn, ItemKnnConfig};
pub use nn::EpochReport;
pub use popularity::{Popularity, PopularityConfig};
pub use random::RandomModel;
pub use two_tower::{Pooling, TwoTower, TwoTowerConfig, TwoTowerLoss};

use std::ops::Range;

use warmstart_core::{top_k, CsrMatrix, Dataset, ItemId, ItemVectors};

/// Errors of the models crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A hyper-parameter is out of its valid range.
    #[error("invalid hyper-parameter {name} = {value}: {rule}")]
    InvalidParameter {
        /// Parameter name.
        name: &'static str,
        /// Given value.
        value: String,
        /// What is allowed.
        rule: &'static str,
    },
    /// A model was asked to score before it was fitted.
    #[error("model `{0}` is not fitted")]
    NotFitted(String),
    /// Unknown model name.
    #[error("unknown model `{0}` (known: random, pop, itemknn, als, bpr, content, content-pop, content-map, content-map-pop, content names with -kN, two-tower, two-tower-bce, two-tower-attn, two-tower-ids, each two-tower name with `:key=value` parameters, graphsage, graphsage-max, graphsage-bce, also with `:key=value`)")]
    UnknownModel(String),
    /// A parameter given in a model name (`two-tower:dim=128`) is unknown or malformed.
    #[error("model parameter: {0}")]
    ModelParameter(String),
    /// The training data cannot be used.
    #[error("bad training data: {0}")]
    BadData(String),
}

/// Result alias for the models crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A user's history: items with a weight (1 for a plain interaction).
pub type History = [(ItemId, f32)];

/// What a model trains on.
#[derive(Debug, Clone, Copy)]
pub struct TrainData<'a> {
    /// The dataset (metadata, sites).
    pub dataset: &'a Dataset,
    /// User × item training matrix (held-out interactions removed), values are weights.
    pub matrix: &'a CsrMatrix,
    /// Content vectors of the items, for models that use content.
    pub item_vectors: Option<&'a ItemVectors>,
}

/// Why an item was recommended: the history item that contributed most.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    /// Recommended item.
    pub item: ItemId,
    /// History item that contributed most.
    pub because_of: ItemId,
    /// Its contribution to the score.
    pub contribution: f32,
}

/// One interface for every model, so that evaluation, the CLI and serving treat them alike.
pub trait Recommender: Send + Sync {
    /// Short name (as on the command line, with hyper-parameters where useful).
    fn name(&self) -> String;

    /// Trains on `data`.
    fn fit(&mut self, data: &TrainData) -> Result<()>;

    /// Scores the items in `items` (usually one site's catalog) for a user known only by
    /// `history`, folding the user in without retraining. `out.len() == items.len()`.
    fn score(&self, history: &History, items: Range<ItemId>, out: &mut [f32]) -> Result<()>;

    /// The best `k` items of `items` for the user, excluding `exclude`, best first.
    fn recommend(
        &self,
        history: &History,
        items: Range<ItemId>,
        k: usize,
        exclude: &[ItemId],
    ) -> Result<Vec<(ItemId, f32)>> {
        let scores = masked_scores(self, history, items.clone(), exclude)?;
        Ok(best_of(&scores, items.start, k))
    }

    /// Explains recommended items, when the model can.
    fn explain(&self, _history: &History, _items: &[ItemId]) -> Option<Vec<Explanation>> {
        None
    }
}

/// Scores of `items` for a user with `exclude` set to `-inf` (never recommended).
pub fn masked_scores<R: Recommender + ?Sized>(
    model: &R,
    history: &History,
    items: Range<ItemId>,
    exclude: &[ItemId],
) -> Result<Vec<f32>> {
    let mut scores = vec![0f32; items.len()];
    model.score(history, items.clone(), &mut scores)?;
    for &e in exclude {
        if items.contains(&e) {
            scores[(e - items.start) as usize] = f32::NEG_INFINITY;
        }
    }
    Ok(scores)
}

/// The `k` best of `scores` (indexed from item `first`) as (item, score), best first.
pub fn best_of(scores: &[f32], first: ItemId, k: usize) -> Vec<(ItemId, f32)> {
    top_k(scores, k).into_iter().map(|i| (first + i as ItemId, scores[i])).collect()
}

/// Test fixture: `users` users in two blocks, each interacting with two thirds of its
/// block's 10 items (items 0..10 and 10..20).
#[cfg(test)]
pub(crate) fn two_block_matrix(users: u32) -> CsrMatrix {
    let mut t = Vec::new();
    for u in 0..users {
        let block = u % 2;
        for i in 0..10u32 {
            if (u + i) % 3 != 0 {
                t.push((u, block * 10 + i, 1.0));
            }
        }
    }
    CsrMatrix::from_triplets(users as usize, 20, &t)
}

/// Builds a model with default hyper-parameters from its command-line name
/// (`random`, `pop`, `itemknn`, `als`, `bpr`, `content`, `content-pop`, `content-map`,
/// `content-map-pop`; content names take `-kN` for N interests, e.g. `content-map-pop-k3`).
pub fn by_name(name: &str, threads: usize, seed: u64) -> Result<Box<dyn Recommender>> {
    // content models take an optional `-kN` suffix: N interests per user
    let (base, interests) = match name.rsplit_once("-k") {
        Some((b, k)) if b.starts_with("content") && !k.is_empty() && k.bytes().all(|c| c.is_ascii_digit()) => {
            (b, k.parse::<usize>().map_err(|_| Error::UnknownModel(name.to_string()))?)
        }
        _ => (name, 1),
    };
    let content = |mapped: bool, pop: f32| -> Result<Box<dyn Recommender>> {
        let c = ContentConfig::builder().mapped(mapped).pop_weight(pop).interests(interests).build()?;
        Ok(Box::new(ContentModel::new(c)))
    };
    Ok(match base {
        "pop" | "popularity" => Box::new(Popularity::new(PopularityConfig::builder().build()?)),
        "itemknn" => Box::new(ItemKnn::new(ItemKnnConfig::builder().build()?)),
        "als" => Box::new(Als::new(AlsConfig::builder().threads(threads).seed(seed).build()?)),
        "bpr" => Box::new(Bpr::new(BprConfig::builder().seed(seed).build()?)),
        "random" => Box::new(RandomModel::new(seed)),
        "content" => content(false, 0.0)?,
        "content-pop" => content(false, 0.5)?,
        "content-map" => content(true, 0.0)?,
        "content-map-pop" => content(true, 0.5)?,
        two_tower if two_tower.starts_with("two-tower") => {
            // `two-tower[-variant][:key=value...]`
            let mut parts = two_tower.split(':');
            let mut b = TwoTowerConfig::builder().seed(seed);
            b = match parts.next().unwrap_or_default() {
                "two-tower" | "two-tower-softmax" => b,
                "two-tower-bce" => b.loss(TwoTowerLoss::Bce),
                "two-tower-ids" => b.id_embedding(Some(true)),
                "two-tower-attn" => b.pooling(Pooling::Attention),
                _ => return Err(Error::UnknownModel(name.to_string())),
            };
            for (k, v) in name_parameters(parts, name)? {
                b = b.set(k, v)?;
            }
            Box::new(TwoTower::new(b.build()?))
        }
        graphsage if graphsage.starts_with("graphsage") => {
            // `graphsage[-max|-bce][:key=value...]`
            let mut parts = graphsage.split(':');
            let mut b = GraphSageConfig::builder().seed(seed);
            b = match parts.next().unwrap_or_default() {
                "graphsage" | "graphsage-mean" => b,
                "graphsage-max" => b.aggregator(Aggregator::MaxPool),
                "graphsage-bce" => b.loss(GraphSageLoss::Bce),
                _ => return Err(Error::UnknownModel(name.to_string())),
            };
            for (k, v) in name_parameters(parts, name)? {
                b = b.set(k, v)?;
            }
            Box::new(GraphSage::new(b.build()?))
        }
        other => return Err(Error::UnknownModel(other.to_string())),
    })
}

/// The `key=value` parameters after a model name's base (`two-tower:dim=128:epochs=3`).
fn name_parameters<'a>(parts: impl Iterator<Item = &'a str>, name: &str) -> Result<Vec<(&'a str, &'a str)>> {
    parts
        .map(|p| p.split_once('=').ok_or_else(|| Error::ModelParameter(format!("`{p}` in `{name}` is not key=value"))))
        .collect()
}

/// NDCG@10 of validation users for early stopping: each user's items on one randomly drawn
/// site are hidden and that site's catalog is ranked from the rest of their history.
pub(crate) fn cold_start_ndcg<R: Recommender + ?Sized>(
    model: &R,
    data: &TrainData,
    users: &[usize],
    seed: u64,
) -> Result<f64> {
    use warmstart_core::metrics::{case_metrics, relevant_ranks};
    let d = data.dataset;
    let mut rng = warmstart_core::Rng::new(seed);
    let (mut sum, mut n) = (0.0, 0usize);
    for &u in users {
        let (cols, vals) = (data.matrix.row_indices(u), data.matrix.row_values(u));
        let mut sites: Vec<u32> = cols.iter().map(|c| d.site_of(*c)).collect();
        sites.sort_unstable();
        sites.dedup();
        if sites.len() < 2 {
            continue;
        }
        let target = sites[rng.below(sites.len())];
        let history: Vec<(ItemId, f32)> =
            cols.iter().zip(vals).filter(|(c, _)| d.site_of(**c) != target).map(|(c, v)| (*c, *v)).collect();
        let range = d.sites[target as usize].items.clone();
        let relevant: Vec<usize> =
            cols.iter().filter(|c| range.contains(*c)).map(|c| (c - range.start) as usize).collect();
        let mut scores = vec![0f32; range.len()];
        model.score(&history, range, &mut scores)?;
        sum += case_metrics(&relevant_ranks(&scores, &relevant), scores.len(), &[10])["ndcg@10"];
        n += 1;
    }
    Ok(if n == 0 { 0.0 } else { sum / n as f64 })
}

/// Whether a model name needs item vectors.
pub fn needs_vectors(name: &str) -> bool {
    name.starts_with("content")
}

/// Whether a model uses item vectors when the dataset has them (and works without).
pub fn can_use_vectors(name: &str) -> bool {
    needs_vectors(name) || name.starts_with("two-tower") || name.starts_with("graphsage")
}

pub(crate) fn check(name: &'static str, ok: bool, value: impl ToString, rule: &'static str) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidParameter { name, value: value.to_string(), rule })
    }
}
