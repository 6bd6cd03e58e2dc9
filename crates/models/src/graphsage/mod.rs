//! GraphSAGE (Hamilton, Ying & Leskovec 2017) over the cross-shop product graph
//! ([`crate::graph`]), trained with candle autograd on sampled neighbourhoods.
//!
//! - **Inputs**: a product's content vector through a linear map (or, on id-only data, a
//!   learned id embedding), plus embeddings of its shop and popularity bucket. A user starts
//!   from the weighted mean of all their visible products' inputs (no user ids), so any user can be
//!   embedded from their history.
//! - **Layers**: `fanouts.len()` GraphSAGE layers, `W_self h_v + W_neigh AGG(h_u) + b`, with a
//!   mean (edge-weighted) or max-pool aggregator, ReLU and dropout between layers, outputs
//!   L2-normalised; score = cosine × a learned scale.
//! - **Training**: mini-batches of (user, product) links with per-layer uniform neighbour
//!   sampling (like PyTorch Geometric's `LinkNeighborLoader`); the objective is an in-batch
//!   sampled softmax with the logQ correction (default, as the two-tower trains) or the
//!   link-prediction binary cross-entropy against `negatives` products drawn from the same
//!   shop (`graphsage-bce`). The cold start is
//!   simulated: each epoch, every cross-shop training user has one shop's edges removed from
//!   the graph and those products become the user's positives; other users have a few
//!   random edges held out as positives. Adam, early stopping on the NDCG@10 of held-out
//!   cross-shop users (whose nodes carry no edges), best epoch kept.
//! - **Speed**: inputs are linear in raw rows `[content, one-hot shop, one-hot popularity,
//!   user flag]`, so with the mean aggregator the first layer averages raw rows and multiplies
//!   only its destinations, once, by `[W_in W_self ; W_in W_neigh ; b]` (exact); the gradient of
//!   that constant-input product skips the data's side; neighbour means are one sparse op; a
//!   sampler thread prepares the next batches (sampling, gathering, dropout masks) while the
//!   current one trains.
//! - **Inference**: layer by layer over the whole training graph with full neighbourhoods;
//!   every product's layer outputs are cached, so a new user is embedded inductively from
//!   their history in a few small matrix products, without retraining.

mod config;
mod network;
mod persist;
mod serve;
mod train;

pub use config::{Aggregator, GraphSageConfig, GraphSageConfigBuilder, GraphSageLoss};
use network::{padded, weighted_mean_into};

use std::collections::HashSet;
use std::ops::Range;

use candle_core::{DType, Device, Tensor, D};
use candle_nn::{Optimizer, VarBuilder, VarMap};
use serde::{Deserialize, Serialize};
use warmstart_core::{ItemId, Rng};

use crate::graph::{content_knn, sample_blocks, ProductGraph};
use crate::losses::bce;
use crate::nn::{
    candle, constant_matmul, dense, l2, masked_relu, seeded_varmap, sparse_rows, EarlyStopping, FusedAdamW, SparseRows,
};
use crate::{Error, Result, TrainData};

/// What training did, epoch by epoch.
pub type GraphSageEpoch = crate::nn::EpochReport;

const POPULARITY_BUCKETS: usize = 16;
/// Initial logit scale: cosine × 10.
const INITIAL_SCALE: f32 = std::f32::consts::LN_10;

/// Everything needed besides the weights to rebuild a trained model.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Shape {
    config: GraphSageConfig,
    n_items: usize,
    n_sites: usize,
    content_dim: usize,
    id_embedding: bool,
    site: Vec<u32>,
    popularity: Vec<u32>,
}

struct Layer {
    own: (Tensor, Tensor),
    neigh: Tensor,
    pool: Option<(Tensor, Tensor)>,
}

struct Net {
    content: Option<Tensor>,
    ids: Option<Tensor>,
    site: Tensor,
    popularity: Tensor,
    user_bias: Tensor,
    layers: Vec<Layer>,
    scale: Tensor,
}

impl Shape {
    fn dims(&self) -> Vec<(usize, usize)> {
        let c = &self.config;
        let l = c.fanouts.len();
        (0..l).map(|i| (c.hidden, if i + 1 == l { c.dim } else { c.hidden })).collect()
    }

    fn specs(&self) -> Vec<(String, Vec<usize>, f32)> {
        let c = &self.config;
        let h = c.hidden;
        let mut out = Vec::new();
        if self.content_dim > 0 {
            out.push(("input.content".into(), vec![self.content_dim, h], 1.0 / (self.content_dim as f32).sqrt()));
        }
        if self.id_embedding {
            out.push(("input.id".into(), vec![self.n_items, h], 0.1));
        }
        out.push(("input.site".into(), vec![self.n_sites.max(1), h], 0.1));
        out.push(("input.popularity".into(), vec![POPULARITY_BUCKETS, h], 0.1));
        out.push(("input.user".into(), vec![h], 0.0));
        for (l, (i, o)) in self.dims().into_iter().enumerate() {
            let gain = if l + 1 == c.fanouts.len() { 1.0 } else { 2f32.sqrt() };
            out.push((format!("layer{l}.self.weight"), vec![i, o], gain / (2.0 * i as f32).sqrt()));
            out.push((format!("layer{l}.self.bias"), vec![o], 0.0));
            out.push((format!("layer{l}.neigh.weight"), vec![i, o], gain / (2.0 * i as f32).sqrt()));
            if c.aggregator == Aggregator::MaxPool {
                out.push((format!("layer{l}.pool.weight"), vec![i, i], 2f32.sqrt() / (i as f32).sqrt()));
                out.push((format!("layer{l}.pool.bias"), vec![i], 0.0));
            }
        }
        out.push(("scale".into(), vec![], 0.0));
        out
    }

    /// Width of a node's raw input row: content, one-hot shop, one-hot popularity bucket and
    /// a user flag.
    fn raw_width(&self) -> usize {
        self.content_dim + self.n_sites.max(1) + POPULARITY_BUCKETS + 1
    }

    /// The raw input row of product `i` (`content` is `n_items × content_dim`).
    fn item_raw(&self, content: &[f32], i: usize, out: &mut [f32]) {
        let c = self.content_dim;
        out.fill(0.0);
        out[..c].copy_from_slice(&content[i * c..(i + 1) * c]);
        out[c + self.site[i] as usize] = 1.0;
        out[c + self.n_sites.max(1) + self.popularity[i] as usize] = 1.0;
    }

    /// Raw input rows of every node of `graph` (`n_nodes × raw_width`): products as
    /// [`item_raw`](Self::item_raw), users the edge-weighted mean of their products' rows with
    /// the user flag set. A node's input is its row times [`Net::input_weight`] (plus its id
    /// embedding), so a user's input is the mean of its products' inputs plus the user bias,
    /// and the mean of several nodes' inputs is the input of their mean row.
    fn raw_rows(&self, content: &[f32], graph: &ProductGraph) -> Vec<f32> {
        use rayon::prelude::*;
        let r = self.raw_width();
        let n_items = graph.n_items;
        let mut rows = vec![0f32; graph.n_nodes() * r];
        let (items, users) = rows.split_at_mut(n_items * r);
        items.par_chunks_mut(r).enumerate().for_each(|(i, out)| self.item_raw(content, i, out));
        let items: &[f32] = items;
        users.par_chunks_mut(r).enumerate().for_each(|(u, out)| {
            let (nb, w) = graph.neighbours((n_items + u) as u32);
            weighted_mean_into(items, r, nb, w, out);
            out[r - 1] = 1.0;
        });
        rows
    }

    fn build(&self, vb: &VarBuilder) -> candle_core::Result<Net> {
        let c = &self.config;
        let h = c.hidden;
        let mut layers = Vec::new();
        for (l, (i, o)) in self.dims().into_iter().enumerate() {
            layers.push(Layer {
                own: (vb.get((i, o), &format!("layer{l}.self.weight"))?, vb.get(o, &format!("layer{l}.self.bias"))?),
                neigh: vb.get((i, o), &format!("layer{l}.neigh.weight"))?,
                pool: if c.aggregator == Aggregator::MaxPool {
                    Some((
                        vb.get((i, i), &format!("layer{l}.pool.weight"))?,
                        vb.get(i, &format!("layer{l}.pool.bias"))?,
                    ))
                } else {
                    None
                },
            });
        }
        Ok(Net {
            content: if self.content_dim > 0 { Some(vb.get((self.content_dim, h), "input.content")?) } else { None },
            ids: if self.id_embedding { Some(vb.get((self.n_items, h), "input.id")?) } else { None },
            site: vb.get((self.n_sites.max(1), h), "input.site")?,
            popularity: vb.get((POPULARITY_BUCKETS, h), "input.popularity")?,
            user_bias: vb.get(h, "input.user")?,
            layers,
            scale: vb.get((), "scale")?,
        })
    }
}

impl Net {
    /// The input map of raw rows (`raw_width × hidden`): content weight, shop and popularity
    /// embeddings and the user bias stacked, so a one-hot row picks an embedding.
    fn input_weight(&self) -> candle_core::Result<Tensor> {
        let mut parts: Vec<Tensor> = self.content.iter().cloned().collect();
        parts.push(self.site.clone());
        parts.push(self.popularity.clone());
        parts.push(self.user_bias.unsqueeze(0)?);
        Tensor::cat(&parts, 0)
    }
}

/// Cached outputs of the trained model for inference.
struct Cache {
    /// Per layer input `l` (0 = inputs): every product's representation (`n_items × width`).
    item_layers: Vec<Vec<f32>>,
    /// Final, L2-normalised product embeddings (`n_items × dim`).
    item_out: Vec<f32>,
}

struct Trained {
    shape: Shape,
    net: Net,
    varmap: VarMap,
    /// Content vectors (`n_items × content_dim`; empty after loading).
    content: Vec<f32>,
    cache: Cache,
    history: Vec<GraphSageEpoch>,
}

/// The GraphSAGE recommender.
pub struct GraphSage {
    config: GraphSageConfig,
    trained: Trained,
}

/// Kind of a saved GraphSAGE model.
pub(crate) const KIND: &str = "graphsage";

impl GraphSage {
    /// Training loss and validation NDCG@10 per epoch of the fit.
    pub fn epochs(&self) -> Vec<GraphSageEpoch> {
        self.trained.history.clone()
    }

    /// Final product embeddings (`n_items × dim`, row-major) of the fitted model.
    pub fn item_vectors(&self) -> Option<(&[f32], usize)> {
        Some((self.trained.cache.item_out.as_slice(), self.trained.shape.config.dim))
    }

    /// The input representation of `items` (`len × hidden`).
    fn item_inputs(t: &Trained, items: &[u32]) -> candle_core::Result<Tensor> {
        let r = t.shape.raw_width();
        let mut raw = vec![0f32; items.len() * r];
        for (out, &i) in raw.chunks_mut(r).zip(items) {
            t.shape.item_raw(&t.content, i as usize, out);
        }
        let x = Tensor::from_vec(raw, (items.len(), r), &Device::Cpu)?.matmul(&t.net.input_weight()?)?;
        match &t.net.ids {
            Some(ids) => x + ids.index_select(&Tensor::from_vec(items.to_vec(), items.len(), &Device::Cpu)?, 0)?,
            None => Ok(x),
        }
    }

    /// One layer's output from the destination nodes' own rows and their aggregated
    /// neighbours: `W_self h + W_neigh agg + b`, then ReLU (hidden layers) or L2 (last).
    fn combine(layer: &Layer, own: &Tensor, agg: &Tensor, last: bool) -> candle_core::Result<Tensor> {
        Self::activate((dense(own, &layer.own)? + agg.matmul(&layer.neigh)?)?, last)
    }

    /// ReLU for hidden layers, L2 normalisation for the last.
    fn activate(pre: Tensor, last: bool) -> candle_core::Result<Tensor> {
        if last {
            l2(&pre)
        } else {
            pre.relu()
        }
    }

    /// Aggregates neighbour lists (positions in `src` with edge weights), one output row per
    /// list: the edge-weighted mean, or the max of `ReLU(W_pool h + b)` (zeros without
    /// neighbours).
    fn aggregate(layer: &Layer, src: &Tensor, lists: &[Vec<(u32, f32)>]) -> candle_core::Result<Tensor> {
        let dev = &Device::Cpu;
        let n = lists.len();
        let width = src.dim(1)?;
        let Some(pool) = &layer.pool else {
            return sparse_rows(src, SparseRows::means(lists));
        };
        let (idx, weight, f) = padded(lists);
        if f == 0 {
            return Tensor::zeros((n, width), DType::F32, dev);
        }
        let index = Tensor::from_vec(idx, n * f, dev)?;
        let p = dense(src, pool)?.relu()?;
        let gathered = p.index_select(&index, 0)?.reshape((n, f, width))?;
        // padding gets −1e9 (never the max); rows without neighbours become 0
        let mask: Vec<f32> = weight.iter().map(|x| if *x > 0.0 { 0.0 } else { -1e9 }).collect();
        let mask = Tensor::from_vec(mask, (n, f, 1), dev)?;
        let any: Vec<f32> = weight.chunks(f).map(|r| if r.iter().any(|x| *x > 0.0) { 1.0 } else { 0.0 }).collect();
        let any = Tensor::from_vec(any, (n, 1), dev)?;
        gathered.broadcast_add(&mask)?.max(1)?.broadcast_mul(&any)
    }
}

/// One batch prepared for training without touching the parameters
/// ([`GraphSage::prepare_batch`]).
struct BatchInputs {
    links: Vec<(usize, ItemId)>,
    /// Users, positives, then negatives (node ids).
    targets: Vec<u32>,
    blocks: crate::graph::SampledBlocks,
    /// Mean aggregator: `first × (2·raw_width + 1)` rows `[raw | mean raw of the sampled
    /// neighbours | 1]` of the first layer's destinations; max-pool: every node's raw row.
    inputs: Vec<f32>,
    /// Id-embedding part (id embeddings only), as rows of the id table: mean aggregator, the
    /// first layer's destinations' own rows then their neighbour means; max-pool, every node's.
    ids: Option<SparseRows>,
    /// Inverted-dropout masks of the inputs of layers `1..` (`rows × hidden` each).
    dropout: Vec<Vec<f32>>,
}

/// What [`GraphSage::prepare`] sets up before the first epoch.
struct Prepared {
    rng: Rng,
    validation: Vec<usize>,
    skip: Vec<bool>,
    train_users: Vec<usize>,
    content_edges: Vec<(u32, u32, f32)>,
    shape: Shape,
    logq: Vec<f32>,
}

/// One epoch's training data in plain arrays (see [`GraphSage::export`]).
#[derive(Debug, Clone)]
pub struct GraphSageExport {
    /// The checked config.
    pub config: GraphSageConfig,
    /// Content vectors (`n_items × content_dim`; empty without content).
    pub content: Vec<f32>,
    /// Content dimension (0 without content).
    pub content_dim: usize,
    /// Whether product-id embeddings are learned.
    pub id_embedding: bool,
    /// Products.
    pub n_items: usize,
    /// Users.
    pub n_users: usize,
    /// Shops.
    pub n_sites: usize,
    /// Shop of every product.
    pub site: Vec<u32>,
    /// Popularity bucket of every product.
    pub popularity: Vec<u32>,
    /// Each epoch's graph and links.
    pub epochs: Vec<EpochGraph>,
    /// Log sampling probability of each product as a positive.
    pub logq: Vec<f32>,
    /// Product-id range of each shop.
    pub site_ranges: Vec<Range<ItemId>>,
}

/// One epoch's training graph (CSR over products then users, the cold-start edges hidden) and
/// its positive links (user, product) in training order.
#[derive(Debug, Clone)]
pub struct EpochGraph {
    /// CSR offsets (`n_nodes + 1`).
    pub offsets: Vec<usize>,
    /// Neighbours of the CSR graph.
    pub neighbours: Vec<u32>,
    /// Edge weights of the CSR graph.
    pub weights: Vec<f32>,
    /// Positive links.
    pub links: Vec<(usize, ItemId)>,
}

/// One epoch's supervision: positive links and the pairs hidden from the graph.
struct EpochPlan {
    links: Vec<(usize, ItemId)>,
    hidden: HashSet<(u32, u32)>,
}

impl GraphSageConfig {
    /// The next epoch's plan and the seed of its sampler thread, drawn in the order training
    /// and [`export`](Self::export) share.
    fn next_epoch(&self, data: &TrainData, users: &[usize], rng: &mut Rng) -> (EpochPlan, u64) {
        let plan = self.plan_epoch(data, users, rng);
        (plan, rng.next_u64())
    }

    fn plan_epoch(&self, data: &TrainData, users: &[usize], rng: &mut Rng) -> EpochPlan {
        let d = data.dataset;
        let m = data.matrix;
        let c = self;
        let mut links = Vec::new();
        let mut hidden = HashSet::new();
        for &u in users {
            let cols = m.row_indices(u);
            if cols.len() < 2 {
                continue;
            }
            let mut sites: Vec<u32> = cols.iter().map(|i| d.site_of(*i)).collect();
            sites.sort_unstable();
            sites.dedup();
            let mut positives: Vec<ItemId> = if sites.len() > 1 {
                // the cold start: one shop's edges gone, its products are the positives
                let target = sites[rng.below(sites.len())];
                let on: Vec<ItemId> = cols.iter().copied().filter(|i| d.site_of(*i) == target).collect();
                for &i in &on {
                    hidden.insert((u as u32, i));
                }
                on
            } else {
                let mut all = cols.to_vec();
                rng.shuffle(&mut all);
                all.truncate(c.targets_per_user.min(cols.len() - 1));
                for &i in &all {
                    hidden.insert((u as u32, i));
                }
                all
            };
            rng.shuffle(&mut positives);
            positives.truncate(c.targets_per_user);
            links.extend(positives.into_iter().map(|i| (u, i)));
        }
        rng.shuffle(&mut links);
        EpochPlan { links, hidden }
    }
}

impl GraphSage {
    fn refresh(&mut self, graph: &ProductGraph) -> Result<()> {
        self.trained.cache = self.infer(&self.trained, graph).map_err(candle)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
