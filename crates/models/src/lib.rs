//! Recommendation models behind one [`Recommender`] trait: fit on a training matrix, fold in
//! a user from their history on other sites without retraining, score or rank a site's
//! catalog, explain where the model can.

pub mod als;
pub mod artifact;
pub mod blend;
pub mod bpr;
pub mod brandknn;
pub mod content;
pub mod dae;
mod ease;
pub mod graph;
pub mod graphsage;
pub mod itemknn;
mod linalg;
mod losses;
mod nn;
pub mod popularity;
pub mod random;
pub mod two_tower;
pub mod userknn;

pub use als::{Als, AlsConfig};
pub use blend::{Blend, BlendConfig};
pub use bpr::{Bpr, BprConfig};
pub use brandknn::{BrandKnn, BrandKnnConfig};
pub use content::{ContentConfig, ContentModel};
pub use dae::{Dae, DaeConfig};
pub use graphsage::{
    Aggregator, EpochGraph, GraphSage, GraphSageConfig, GraphSageEpoch, GraphSageExport, GraphSageLoss,
};
pub use itemknn::{ItemKnn, ItemKnnConfig, Similarity};
pub use nn::EpochReport;
pub use popularity::{Popularity, PopularityConfig};
pub use random::RandomModel;
pub use two_tower::{Pooling, TwoTower, TwoTowerConfig, TwoTowerLoss};
pub use userknn::{UserKnn, UserKnnConfig};

use std::ops::Range;
use std::path::Path;

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
    /// An item id outside the items the model was fitted on (e.g. a product added after
    /// training): the model cannot score it.
    #[error("model `{model}` knows items 0..{known}, not item {item}")]
    UnknownItem {
        /// Model name.
        model: String,
        /// Item asked for.
        item: u64,
        /// Number of items the model was fitted on.
        known: usize,
    },
    /// A saved model cannot be read or written.
    #[error("model file {path}: {reason}")]
    Artifact {
        /// File or directory.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// Unknown model name.
    #[error("unknown model `{0}` (known: random, pop, itemknn, rp3beta, ease, brandknn, catknn, userknn, dae, blend, als, bpr (the neighbour models, als, dae and blend also with `:key=value` parameters), content, content-pop, content-map, content-map-pop, content names with -kN, two-tower, two-tower-bce, two-tower-attn, two-tower-ids, each two-tower name with `:key=value` parameters, graphsage, graphsage-max, graphsage-bce, also with `:key=value`)")]
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

/// Validated hyper-parameters of a model (linfa's split): fitting them on training data
/// gives a fitted [`Recommender`], the only thing that can score, so "not fitted" cannot
/// happen at run time.
pub trait Fit: Send + Sync {
    /// Short name of the model these parameters train (as on the command line).
    fn name(&self) -> String;
    /// Trains on `data`.
    fn fit(&self, data: &TrainData) -> Result<Box<dyn Recommender>>;
}

/// One interface for every fitted model, so that evaluation, the CLI and serving treat them
/// alike.
pub trait Recommender: Send + Sync {
    /// Short name (as on the command line, with hyper-parameters where useful).
    fn name(&self) -> String;

    /// Number of items the model was fitted on: it scores item ids `0..n_items()` only.
    fn n_items(&self) -> usize;

    /// Scores `items` for `history`; called by [`score`](Self::score) after it checked that
    /// every id is below [`n_items`](Self::n_items) and `out.len() == items.len()`.
    fn score_items(&self, history: &History, items: Range<ItemId>, out: &mut [f32]) -> Result<()>;

    /// Scores the items in `items` (usually one site's catalog) for a user known only by
    /// `history`, folding the user in without retraining. `out.len() == items.len()`. An item
    /// (in `items` or the history) the model was not fitted on is an error, never a panic.
    fn score(&self, history: &History, items: Range<ItemId>, out: &mut [f32]) -> Result<()> {
        let known = self.n_items();
        let unknown = |item: u64| Error::UnknownItem { model: self.name(), item, known };
        if items.end as usize > known {
            return Err(unknown(items.end.saturating_sub(1).max(items.start) as u64));
        }
        if let Some(&(i, _)) = history.iter().find(|(i, _)| *i as usize >= known) {
            return Err(unknown(i as u64));
        }
        if out.len() != items.len() {
            return Err(Error::BadData(format!("{} scores asked for {} items", out.len(), items.len())));
        }
        self.score_items(history, items, out)
    }

    /// Scores of arbitrary items `ids` (e.g. an ANN index's candidates), checked like
    /// [`score`](Self::score). The default scores the smallest range that holds them.
    fn score_ids(&self, history: &History, ids: &[ItemId], out: &mut [f32]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let lo = ids.iter().copied().min().unwrap_or(0);
        let hi = ids.iter().copied().max().unwrap_or(0).saturating_add(1);
        let mut all = vec![0f32; (hi - lo) as usize];
        self.score(history, lo..hi, &mut all)?;
        for (o, &i) in out.iter_mut().zip(ids) {
            *o = all[(i - lo) as usize];
        }
        Ok(())
    }

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

    /// Writes the fitted model into the directory `dir` (created if needed) so that
    /// [`load`] restores it.
    fn save(&self, dir: &Path) -> Result<()>;

    /// What fitting chose that a person should see, one line each (a blend's weights and the
    /// validation scores behind them); empty for most models and for loaded artifacts.
    fn fit_notes(&self) -> Vec<String> {
        Vec::new()
    }

    /// The model's vector space, when its score is (a monotone function of) an inner product
    /// of a user vector with item vectors: an ANN index over the item vectors then retrieves
    /// candidates that [`score_ids`](Self::score_ids) re-ranks exactly.
    fn space(&self) -> Option<&dyn VectorSpace> {
        None
    }

    /// Per item, its (neighbour, similarity) list, when the model's score of an item is the
    /// weighted sum over the history of these similarities (item-kNN, RP3beta): a device can
    /// then score a shop from downloaded lists alone.
    fn neighbour_lists(&self) -> Option<&[Vec<(ItemId, f32)>]> {
        None
    }
}

/// Item vectors and user queries of a model whose score is an inner product.
pub trait VectorSpace: Send + Sync {
    /// Dimension.
    fn dim(&self) -> usize;
    /// Whether queries and items are compared by cosine (vectors are unit length) or a raw
    /// inner product.
    fn cosine(&self) -> bool;
    /// The vector of an item (none for items without content, for example).
    fn item_vector(&self, item: ItemId) -> Option<Vec<f32>>;
    /// Query vectors of a user (several for multi-interest models) for ranking the catalog of
    /// `target` site.
    fn queries(&self, history: &History, target: warmstart_core::SiteId) -> Result<Vec<Vec<f32>>>;

    /// Like [`queries`](Self::queries), with history items the model does not know given by
    /// their content vectors and weights. Only content models can use them; the default
    /// ignores them.
    fn queries_with(
        &self,
        history: &History,
        _external: &[(Vec<f32>, f32)],
        target: warmstart_core::SiteId,
    ) -> Result<Vec<Vec<f32>>> {
        self.queries(history, target)
    }

    /// The model's score of a known item for these queries; equals
    /// [`Recommender::score`] for the history the queries came from. The default is the best
    /// inner product.
    fn score_item(&self, queries: &[Vec<f32>], item: ItemId) -> f32 {
        self.item_vector(item).map(|v| self.score_vector(queries, &v)).unwrap_or(f32::NEG_INFINITY)
    }

    /// The score of an item the model was not fitted on, from its vector in this space (no
    /// popularity or bias terms). The default is the best inner product.
    fn score_vector(&self, queries: &[Vec<f32>], vector: &[f32]) -> f32 {
        queries.iter().map(|q| warmstart_scoring::dot(q, vector)).fold(f32::NEG_INFINITY, f32::max)
    }
}

/// The checks of [`Recommender::score`] for [`Recommender::score_ids`] overrides.
pub(crate) fn check_ids<R: Recommender + ?Sized>(
    model: &R,
    history: &History,
    ids: &[ItemId],
    out: &[f32],
) -> Result<()> {
    let known = model.n_items();
    let bad = ids.iter().copied().chain(history.iter().map(|h| h.0)).find(|&i| i as usize >= known);
    if let Some(item) = bad {
        return Err(Error::UnknownItem { model: model.name(), item: item as u64, known });
    }
    if out.len() != ids.len() {
        return Err(Error::BadData(format!("{} scores asked for {} items", out.len(), ids.len())));
    }
    Ok(())
}

/// Inner products of `query` with the rows `ids` of a row-major `dim`-wide table, into `out`
/// (zeros without a query: an empty history scores nothing).
pub(crate) fn dot_rows(
    table: &[f32],
    dim: usize,
    query: Option<&[f32]>,
    ids: impl IntoIterator<Item = ItemId>,
    out: &mut [f32],
) {
    match query {
        None => out.fill(0.0),
        Some(q) => {
            for (o, i) in out.iter_mut().zip(ids) {
                *o = warmstart_scoring::dot(&table[i as usize * dim..(i as usize + 1) * dim], q);
            }
        }
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

/// EASE's (λ, solved items) by default.
pub const EASE_DEFAULT: (f32, u32) = (2000.0, 3000);

/// RP3beta's (α, β) by default (see the README's leaderboards for how they were chosen).
pub const RP3BETA_DEFAULT: (f32, f32) = (0.5, 0.0);

/// Validated hyper-parameters with defaults from a model's command-line name (`random`,
/// `pop`, `itemknn`, `rp3beta`, `brandknn`, `userknn`, `dae`, `als`, `bpr`, `content`, `content-pop`, `content-map`, `content-map-pop`;
/// content names take `-kN` for N interests, e.g. `content-map-pop-k3`; two-tower and
/// GraphSAGE names take `:key=value` parameters).
pub fn by_name(name: &str, threads: usize, seed: u64) -> Result<Box<dyn Fit>> {
    // content models take an optional `-kN` suffix: N interests per user
    let (base, interests) = match name.rsplit_once("-k") {
        Some((b, k)) if b.starts_with("content") && !k.is_empty() && k.bytes().all(|c| c.is_ascii_digit()) => {
            (b, k.parse::<usize>().map_err(|_| Error::UnknownModel(name.to_string()))?)
        }
        _ => (name, 1),
    };
    let content = |mapped: bool, pop: f32| -> Result<Box<dyn Fit>> {
        Ok(Box::new(ContentConfig::builder().mapped(mapped).pop_weight(pop).interests(interests).build()?))
    };
    Ok(match base {
        "pop" | "popularity" => Box::new(PopularityConfig::builder().build()?),
        knn if matches!(knn.split(':').next(), Some("itemknn" | "rp3beta")) => {
            // `itemknn[:k=N][:shrink=S]`, `rp3beta[:alpha=A][:beta=B][:k=N]`
            let rp3 = knn.starts_with("rp3beta");
            let model = if rp3 { "rp3beta" } else { "itemknn" };
            let (mut alpha, mut beta) = RP3BETA_DEFAULT;
            let mut b = ItemKnnConfig::builder();
            for (k, v) in name_parameters(knn.split(':').skip(1), name)? {
                let bad = || Error::ModelParameter(format!("{model} {k} `{v}`"));
                match k {
                    "k" => b = b.neighbours(v.parse().map_err(|_| bad())?),
                    "shrink" if !rp3 => b = b.shrink(v.parse().map_err(|_| bad())?),
                    "alpha" if rp3 => alpha = v.parse().map_err(|_| bad())?,
                    "beta" if rp3 => beta = v.parse().map_err(|_| bad())?,
                    other => return Err(Error::ModelParameter(format!("{model} has no parameter `{other}`"))),
                }
            }
            if rp3 {
                b = b.rp3beta(alpha, beta);
            }
            Box::new(b.build()?)
        }
        ease if ease == "ease" || ease.starts_with("ease:") => {
            // `ease[:lambda=L][:items=N]`
            let (mut lambda, mut items) = EASE_DEFAULT;
            for (k, v) in name_parameters(ease.split(':').skip(1), name)? {
                let bad = || Error::ModelParameter(format!("ease {k} `{v}`"));
                match k {
                    "lambda" => lambda = v.parse().map_err(|_| bad())?,
                    "items" => items = v.parse().map_err(|_| bad())?,
                    other => return Err(Error::ModelParameter(format!("ease has no parameter `{other}`"))),
                }
            }
            Box::new(ItemKnnConfig::builder().ease(lambda, items).build()?)
        }
        brandknn if matches!(brandknn.split(':').next(), Some("brandknn" | "catknn")) => {
            // `brandknn[:k=N][:shrink=S]`, `catknn` (pooled by category path) likewise
            let mut b = BrandKnnConfig::builder();
            if brandknn.starts_with("catknn") {
                b = b.by(brandknn::Grouping::Category);
            }
            for (k, v) in name_parameters(brandknn.split(':').skip(1), name)? {
                let bad = || Error::ModelParameter(format!("brandknn {k} `{v}`"));
                b = match k {
                    "k" => b.neighbours(v.parse().map_err(|_| bad())?),
                    "shrink" => b.shrink(v.parse().map_err(|_| bad())?),
                    other => return Err(Error::ModelParameter(format!("brandknn has no parameter `{other}`"))),
                };
            }
            Box::new(b.build()?)
        }
        als if als == "als" || als.starts_with("als:") => {
            // `als[:factors=N][:reg=R][:alpha=A][:iterations=N]`
            let mut b = AlsConfig::builder().threads(threads).seed(seed);
            for (k, v) in name_parameters(als.split(':').skip(1), name)? {
                let bad = || Error::ModelParameter(format!("als {k} `{v}`"));
                b = match k {
                    "factors" => b.factors(v.parse().map_err(|_| bad())?),
                    "reg" => b.regularization(v.parse().map_err(|_| bad())?),
                    "alpha" => b.alpha(v.parse().map_err(|_| bad())?),
                    "iterations" => b.iterations(v.parse().map_err(|_| bad())?),
                    other => return Err(Error::ModelParameter(format!("als has no parameter `{other}`"))),
                };
            }
            Box::new(b.build()?)
        }
        userknn if userknn == "userknn" || userknn.starts_with("userknn:") => {
            // `userknn[:k=N][:shrink=S][:exp=E]`
            let mut b = UserKnnConfig::builder();
            for (k, v) in name_parameters(userknn.split(':').skip(1), name)? {
                let bad = || Error::ModelParameter(format!("userknn {k} `{v}`"));
                b = match k {
                    "k" => b.neighbours(v.parse().map_err(|_| bad())?),
                    "shrink" => b.shrink(v.parse().map_err(|_| bad())?),
                    "exp" => b.exponent(v.parse().map_err(|_| bad())?),
                    other => return Err(Error::ModelParameter(format!("userknn has no parameter `{other}`"))),
                };
            }
            Box::new(b.build()?)
        }
        blend if matches!(blend.split(':').next(), Some("blend" | "blend-content")) => {
            // `blend` (blend::DEFAULT_MEMBERS), `blend-content` (and content), `blend:members=a+b+c`;
            // `:history=1` adds weights per history-length bucket; `:short=0` drops the short
            // histories' weights
            let mut b = BlendConfig::builder().seed(seed).threads(threads);
            if blend.starts_with("blend-content") {
                let mut members: Vec<String> = blend::DEFAULT_MEMBERS.iter().map(|m| m.to_string()).collect();
                members.push("content".into());
                b = b.members(members);
            }
            for (k, v) in name_parameters(blend.split(':').skip(1), name)? {
                b = match k {
                    // a member's own parameters are written with `/` for `:`: `itemknn/shrink=200`
                    "members" => b.members(v.split('+').map(|m| m.replace('/', ":")).collect()),
                    "step" => b.step(v.parse().map_err(|_| Error::ModelParameter(format!("blend step `{v}`")))?),
                    "validation" => b.validation_share(
                        v.parse().map_err(|_| Error::ModelParameter(format!("blend validation `{v}`")))?,
                    ),
                    "folds" => b.folds(v.parse().map_err(|_| Error::ModelParameter(format!("blend folds `{v}`")))?),
                    "norm" => b.normalisation(match v {
                        "zscore" => blend::Normalisation::Zscore,
                        "rank" => blend::Normalisation::Rank,
                        _ => return Err(Error::ModelParameter(format!("blend norm `{v}` (zscore or rank)"))),
                    }),
                    "items" => b.item_cases(match v {
                        "1" | "true" => true,
                        "0" | "false" => false,
                        _ => return Err(Error::ModelParameter(format!("blend items `{v}` (1 or 0)"))),
                    }),
                    "short" => b.short_history(match v {
                        "1" | "true" => true,
                        "0" | "false" => false,
                        _ => return Err(Error::ModelParameter(format!("blend short `{v}` (1 or 0)"))),
                    }),
                    "history" => b.by_history(match v {
                        "1" | "true" => true,
                        "0" | "false" => false,
                        _ => return Err(Error::ModelParameter(format!("blend history `{v}` (1 or 0)"))),
                    }),
                    other => return Err(Error::ModelParameter(format!("blend has no parameter `{other}`"))),
                };
            }
            Box::new(b.build()?)
        }
        dae if dae == "dae" || dae.starts_with("dae:") => {
            // `dae[:key=value...]`, e.g. `dae:hidden=200`
            let mut b = DaeConfig::builder().seed(seed);
            for (k, v) in name_parameters(dae.split(':').skip(1), name)? {
                b = b.set(k, v)?;
            }
            Box::new(b.build()?)
        }
        bpr if bpr == "bpr" || bpr.starts_with("bpr:") => {
            // `bpr[:key=value...]`, e.g. `bpr:threads=2`
            let mut b = BprConfig::builder().seed(seed);
            for (k, v) in name_parameters(bpr.split(':').skip(1), name)? {
                b = b.set(k, v)?;
            }
            Box::new(b.build()?)
        }
        "random" => Box::new(random::RandomConfig::new(seed)),
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
            Box::new(b.build()?)
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
            Box::new(b.build()?)
        }
        other => return Err(Error::UnknownModel(other.to_string())),
    })
}

/// Loads a model saved by [`Recommender::save`]. Models that read content vectors as inputs
/// (two-tower, GraphSAGE) need the same `item_vectors` they were trained with.
pub fn load(dir: &Path, item_vectors: Option<&ItemVectors>) -> Result<Box<dyn Recommender>> {
    let r = artifact::ArtifactReader::open(dir)?;
    Ok(match r.kind() {
        popularity::KIND => Box::new(Popularity::load(&r)?),
        itemknn::KIND => Box::new(ItemKnn::load(&r)?),
        brandknn::KIND => Box::new(BrandKnn::load(&r)?),
        als::KIND => Box::new(Als::load(&r)?),
        bpr::KIND => Box::new(Bpr::load(&r)?),
        random::KIND => Box::new(RandomModel::load(&r)?),
        content::KIND => Box::new(ContentModel::load(&r)?),
        two_tower::KIND => Box::new(TwoTower::load(dir, item_vectors)?),
        graphsage::KIND => Box::new(GraphSage::load(dir)?),
        blend::KIND => Box::new(Blend::load(&r, item_vectors)?),
        userknn::KIND => Box::new(UserKnn::load(&r)?),
        dae::KIND => Box::new(Dae::load(&r)?),
        other => return Err(r.error(format!("unknown model kind `{other}`"))),
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
    name.starts_with("content") || (name.starts_with("blend") && name.contains("content"))
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
