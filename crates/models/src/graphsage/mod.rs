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
mod persist;
mod serve;

pub use config::{Aggregator, GraphSageConfig, GraphSageConfigBuilder, GraphSageLoss};

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
    /// Everything of one batch that needs no parameters: targets (users, positives, then
    /// same-shop negatives for BCE), the sampled blocks, the first layer's raw input rows and
    /// the id-embedding lists. Runs on the sampler thread while the previous batch trains.
    fn prepare_batch(
        &self,
        graph: &ProductGraph,
        raw: &[f32],
        shape: &Shape,
        data: &TrainData,
        links: &[(usize, ItemId)],
        rng: &mut Rng,
    ) -> BatchInputs {
        let c = &self.config;
        let d = data.dataset;
        let n_items = graph.n_items;
        let mut targets: Vec<u32> = links.iter().map(|(u, _)| (n_items + u) as u32).collect();
        targets.extend(links.iter().map(|(_, i)| *i));
        let negatives = if c.loss == GraphSageLoss::Bce { c.negatives } else { 0 };
        for (_, i) in links {
            let range = d.sites[d.site_of(*i) as usize].items.clone();
            for _ in 0..negatives {
                targets.push(range.start + rng.below(range.len()) as u32);
            }
        }
        let blocks = sample_blocks(graph, &targets, &c.fanouts, rng);
        let r = shape.raw_width();
        let nodes = &blocks.nodes;
        let row = |v: u32| &raw[v as usize * r..(v as usize + 1) * r];
        let inputs = if c.aggregator == Aggregator::MaxPool {
            // max-pool needs every sampled node's input
            nodes.iter().flat_map(|&v| row(v).iter().copied()).collect()
        } else {
            // the first layer's destinations: [raw row | mean raw row of their neighbours]
            let first = blocks.hop_ends[c.fanouts.len() - 1];
            let lists = &blocks.adjacency[c.fanouts.len() - 1];
            let mut x = vec![0f32; first * (2 * r + 1)];
            for ((out, &v), list) in x.chunks_mut(2 * r + 1).zip(&nodes[..first]).zip(&lists[..first]) {
                let (own, agg) = out.split_at_mut(r);
                agg[r] = 1.0; // the bias column
                own.copy_from_slice(row(v));
                let total: f32 = list.iter().map(|x| x.1).sum();
                if total > 0.0 {
                    for &(p, w) in list {
                        let share = w / total;
                        for (o, x) in agg.iter_mut().zip(row(nodes[p as usize])) {
                            *o += share * x;
                        }
                    }
                }
            }
            x
        };
        let ids = shape.id_embedding.then(|| {
            // a product's own id row; a user's weighted mean over up to `user_items` products
            let mut buf = Vec::new();
            let own: Vec<Vec<(u32, f32)>> = nodes
                .iter()
                .map(|&v| {
                    if (v as usize) < n_items {
                        vec![(v, 1.0)]
                    } else {
                        graph.sample(v, c.user_items, rng, &mut buf);
                        buf.clone()
                    }
                })
                .collect();
            let own = SparseRows::means(&own);
            if c.aggregator == Aggregator::MaxPool {
                return own;
            }
            // the neighbour means of the first layer's destinations, expanded to id rows
            let first = blocks.hop_ends[c.fanouts.len() - 1];
            let mut rows = SparseRows::default();
            for v in 0..first {
                rows.push(own.row(v));
            }
            for list in &blocks.adjacency[c.fanouts.len() - 1][..first] {
                let total: f32 = list.iter().map(|x| x.1).sum();
                let scale = if total > 0.0 { 1.0 / total } else { 0.0 };
                rows.push(list.iter().flat_map(|&(p, w)| own.row(p as usize).map(move |(i, s)| (i, w * scale * s))));
            }
            rows
        });
        let layers = c.fanouts.len();
        let keep = 1.0 - c.dropout;
        // four 16-bit draws per random word
        let threshold = (keep as f64 * 65536.0) as u64;
        let dropout = (1..layers)
            .filter(|_| c.dropout > 0.0)
            .map(|l| {
                let len = blocks.hop_ends[layers - l] * c.hidden;
                let mut mask = Vec::with_capacity(len + 3);
                while mask.len() < len {
                    let bits = rng.next_u64();
                    for k in 0..4 {
                        mask.push(if (bits >> (16 * k)) & 0xffff < threshold { 1.0 / keep } else { 0.0 });
                    }
                }
                mask.truncate(len);
                mask
            })
            .collect();
        BatchInputs { links: links.to_vec(), targets, blocks, inputs, ids, dropout }
    }

    /// The loss of one prepared batch.
    fn batch_loss(&self, t: &Trained, batch: BatchInputs, logq: &[f32]) -> candle_core::Result<Tensor> {
        let c = &self.config;
        let dev = &Device::Cpu;
        let z = self.forward(t, &batch.blocks, batch.inputs, batch.ids, &batch.dropout)?;
        let (links, targets, blocks) = (&batch.links, &batch.targets, &batch.blocks);
        let pos_of = |node: u32| blocks.position(node);
        let b = links.len();
        let user_rows: Vec<u32> = targets[..b].iter().map(|&v| pos_of(v)).collect();
        let pos_rows: Vec<u32> = targets[b..2 * b].iter().map(|&v| pos_of(v)).collect();
        let zu = z.index_select(&Tensor::from_vec(user_rows, b, dev)?, 0)?;
        let zp = z.index_select(&Tensor::from_vec(pos_rows, b, dev)?, 0)?;
        let scale = t.net.scale.exp()?;
        if c.loss == GraphSageLoss::Softmax {
            // every user against the batch's positives; column j's expected count is B·p_j
            let logits = zu.matmul(&zp.t()?)?.broadcast_mul(&scale)?;
            let items: Vec<ItemId> = links.iter().map(|x| x.1).collect();
            let columns: Vec<(ItemId, f32)> = items.iter().map(|&i| (i, logq[i as usize] + (b as f32).ln())).collect();
            return crate::losses::sampled_softmax(&logits, &items, &columns);
        }
        let neg_rows: Vec<u32> = targets[2 * b..].iter().map(|&v| pos_of(v)).collect();
        let zn =
            z.index_select(&Tensor::from_vec(neg_rows, b * c.negatives, dev)?, 0)?.reshape((b, c.negatives, c.dim))?;
        let pos = (zu.clone() * zp)?.sum(1)?.broadcast_mul(&scale)?;
        let neg = zn.broadcast_mul(&zu.unsqueeze(1)?)?.sum(D::Minus1)?.broadcast_mul(&scale)?;
        bce(&pos, &neg)
    }

    /// The targets' outputs (rows in node order) of a prepared batch.
    ///
    /// With the mean aggregator the first layer needs no per-node projection: the mean of
    /// linear inputs is the input of the mean raw row, and `(x W_in) W_self + (x̄ W_in) W_neigh`
    /// is one product of `[x | x̄ | 1]` with `[W_in W_self ; W_in W_neigh ; b]`, so only the first
    /// layer's destinations are multiplied, once (exact; dropout acts between layers).
    /// Max-pool projects every sampled node.
    fn forward(
        &self,
        t: &Trained,
        blocks: &crate::graph::SampledBlocks,
        inputs: Vec<f32>,
        id_rows: Option<SparseRows>,
        dropout: &[Vec<f32>],
    ) -> candle_core::Result<Tensor> {
        let layers = self.config.fanouts.len();
        let r = t.shape.raw_width();
        let w_in = t.net.input_weight()?;
        let ids = match (&t.net.ids, id_rows) {
            (Some(table), Some(rows)) => Some(sparse_rows(table, rows)?),
            _ => None,
        };
        let dev = &Device::Cpu;
        if self.config.aggregator == Aggregator::MaxPool {
            let n = blocks.nodes.len();
            let mut h = constant_matmul(Tensor::from_vec(inputs, (n, r), dev)?, &w_in)?;
            if let Some(ids) = &ids {
                h = (h + ids)?;
            }
            return self.propagate(t, blocks, h, 0, dropout);
        }
        let first = blocks.hop_ends[layers - 1];
        let layer = &t.net.layers[0];
        let stacked =
            Tensor::cat(&[w_in.matmul(&layer.own.0)?, w_in.matmul(&layer.neigh)?, layer.own.1.unsqueeze(0)?], 0)?;
        let mut pre = constant_matmul(Tensor::from_vec(inputs, (first, 2 * r + 1), dev)?, &stacked)?;
        if let Some(ids) = &ids {
            // own id rows, then the neighbour means
            let (own, agg) = (ids.narrow(0, 0, first)?, ids.narrow(0, first, first)?);
            pre = (pre + own.matmul(&layer.own.0)? + agg.matmul(&layer.neigh)?)?;
        }
        // ReLU and the next layer's dropout in one op
        let h = if layers == 1 { l2(&pre)? } else { masked_relu(&pre, dropout.first().map(|m| m.as_slice()))? };
        self.propagate(t, blocks, h, 1, dropout)
    }

    /// Runs layers `from..` over sampled blocks (dropout before every layer after the first
    /// when training); returns the targets' outputs (rows in node order).
    fn propagate(
        &self,
        t: &Trained,
        blocks: &crate::graph::SampledBlocks,
        mut h: Tensor,
        from: usize,
        dropout: &[Vec<f32>],
    ) -> candle_core::Result<Tensor> {
        let c = &self.config;
        let layers = c.fanouts.len();
        for (l, layer) in t.net.layers.iter().enumerate().skip(from) {
            let hop = layers - 1 - l;
            let n_dst = blocks.hop_ends[hop];
            // (the first layer of the mean path applied its dropout with its ReLU)
            if l > from && c.dropout > 0.0 {
                h = (h * Tensor::from_slice(&dropout[l - 1], (blocks.hop_ends[hop + 1], c.hidden), &Device::Cpu)?)?;
            }
            let agg = Self::aggregate(layer, &h, &blocks.adjacency[hop][..n_dst])?;
            let own = h.narrow(0, 0, n_dst)?;
            h = Self::combine(layer, &own, &agg, l + 1 == layers)?;
        }
        Ok(h)
    }

    /// Full-graph, full-neighbourhood inference: every product's representation at every
    /// layer input and its final embedding.
    fn infer(&self, t: &Trained, graph: &ProductGraph) -> candle_core::Result<Cache> {
        let n = graph.n_nodes();
        let n_items = graph.n_items;
        let hsize = self.config.hidden;
        // layer 0: products, then users from all their products
        let mut x_items = Vec::with_capacity(n_items * hsize);
        let all: Vec<u32> = (0..n_items as u32).collect();
        for chunk in all.chunks(4096) {
            x_items.extend(Self::item_inputs(t, chunk)?.flatten_all()?.to_vec1::<f32>()?);
        }
        let bias = t.net.user_bias.to_vec1::<f32>()?;
        let mut h = x_items.clone();
        h.resize(n * hsize, 0.0);
        for u in 0..graph.n_users {
            let (nb, w) = graph.neighbours((n_items + u) as u32);
            let row = weighted_mean(&x_items, hsize, nb, w);
            let out = &mut h[(n_items + u) * hsize..(n_items + u + 1) * hsize];
            for ((o, r), b) in out.iter_mut().zip(&row).zip(&bias) {
                *o = r + b;
            }
        }
        let mut item_layers = vec![h[..n_items * hsize].to_vec()];
        let layers = t.net.layers.len();
        let dev = &Device::Cpu;
        for (l, layer) in t.net.layers.iter().enumerate() {
            let width = h.len() / n;
            let src = Tensor::from_vec(h.clone(), (n, width), dev)?;
            // aggregate over full neighbourhoods
            let pooled: Vec<f32> = match &layer.pool {
                None => h.clone(),
                Some(pool) => dense(&src, pool)?.relu()?.flatten_all()?.to_vec1::<f32>()?,
            };
            let mut agg = vec![0f32; n * width];
            for v in 0..n {
                let (nb, w) = graph.neighbours(v as u32);
                let row = match layer.pool {
                    None => weighted_mean(&pooled, width, nb, w),
                    Some(_) => max_rows(&pooled, width, nb),
                };
                agg[v * width..(v + 1) * width].copy_from_slice(&row);
            }
            let agg = Tensor::from_vec(agg, (n, width), dev)?;
            let out = Self::combine(layer, &src, &agg, l + 1 == layers)?;
            h = out.flatten_all()?.to_vec1::<f32>()?;
            let out_width = h.len() / n;
            if l + 1 < layers {
                item_layers.push(h[..n_items * out_width].to_vec());
            }
        }
        let out_width = h.len() / n;
        Ok(Cache { item_layers, item_out: h[..n_items * out_width].to_vec() })
    }

    /// The embedding of a user known by `history` (products and weights), from the cache.
    fn embed_user(&self, t: &Trained, history: &[(ItemId, f32)]) -> candle_core::Result<Vec<f32>> {
        let dev = &Device::Cpu;
        let nb: Vec<u32> = history.iter().map(|x| x.0).collect();
        let w: Vec<f32> = history.iter().map(|x| x.1).collect();
        let hsize = self.config.hidden;
        let bias = t.net.user_bias.to_vec1::<f32>()?;
        let mut user: Vec<f32> =
            weighted_mean(&t.cache.item_layers[0], hsize, &nb, &w).iter().zip(&bias).map(|(a, b)| a + b).collect();
        let layers = t.net.layers.len();
        for (l, layer) in t.net.layers.iter().enumerate() {
            let items = &t.cache.item_layers[l];
            let width = user.len();
            let agg = match &layer.pool {
                None => weighted_mean(items, width, &nb, &w),
                Some(pool) => {
                    let rows: Vec<f32> =
                        nb.iter().flat_map(|&i| items[i as usize * width..(i as usize + 1) * width].to_vec()).collect();
                    let p = dense(&Tensor::from_vec(rows, (nb.len(), width), dev)?, pool)?.relu()?;
                    p.max(0)?.to_vec1::<f32>()?
                }
            };
            let own = Tensor::from_vec(user, (1, width), dev)?;
            let agg = Tensor::from_vec(agg, (1, width), dev)?;
            user = Self::combine(layer, &own, &agg, l + 1 == layers)?.flatten_all()?.to_vec1::<f32>()?;
        }
        Ok(user)
    }
}

/// Edge-weighted mean of the rows `nb` of `table` (`width` columns); zeros without rows.
fn weighted_mean(table: &[f32], width: usize, nb: &[u32], w: &[f32]) -> Vec<f32> {
    let mut out = vec![0f32; width];
    weighted_mean_into(table, width, nb, w, &mut out);
    out
}

/// [`weighted_mean`] written into `out` (which must hold zeros).
fn weighted_mean_into(table: &[f32], width: usize, nb: &[u32], w: &[f32], out: &mut [f32]) {
    let total: f32 = w.iter().sum();
    if nb.is_empty() || total <= 0.0 {
        return;
    }
    for (&i, &wt) in nb.iter().zip(w) {
        for (o, x) in out.iter_mut().zip(&table[i as usize * width..(i as usize + 1) * width]) {
            *o += wt / total * x;
        }
    }
}

/// Neighbour lists as padded `n × f` positions and weights (0 for padding), with `f` the
/// longest list.
fn padded(lists: &[Vec<(u32, f32)>]) -> (Vec<u32>, Vec<f32>, usize) {
    let n = lists.len();
    let f = lists.iter().map(|x| x.len()).max().unwrap_or(0);
    let mut idx = vec![0u32; n * f];
    let mut w = vec![0f32; n * f];
    for (v, list) in lists.iter().enumerate() {
        for (j, (p, wt)) in list.iter().enumerate() {
            idx[v * f + j] = *p;
            w[v * f + j] = *wt;
        }
    }
    (idx, w, f)
}

/// Element-wise max of the rows `nb` of `table`; zeros without rows.
fn max_rows(table: &[f32], width: usize, nb: &[u32]) -> Vec<f32> {
    if nb.is_empty() {
        return vec![0f32; width];
    }
    let mut out = vec![f32::NEG_INFINITY; width];
    for &i in nb {
        for (o, x) in out.iter_mut().zip(&table[i as usize * width..(i as usize + 1) * width]) {
            *o = o.max(*x);
        }
    }
    out
}

impl GraphSageConfig {
    /// Trains (early stopping on held-out cross-site users), calling `on_epoch` after every
    /// epoch and `on_progress(stage, done, total)` while building the graph.
    pub fn fit_with(
        &self,
        data: &TrainData,
        on_epoch: &mut dyn FnMut(&GraphSageEpoch),
        on_progress: &mut dyn FnMut(&str, usize, usize),
    ) -> Result<GraphSage> {
        let d = data.dataset;
        let m = data.matrix;
        let c = self.clone();
        let Prepared { mut rng, validation, skip, train_users, content_edges, shape, logq } =
            self.prepare(data, on_progress)?;
        let base = ProductGraph::build(m, &content_edges, c.content_weight, &skip, &HashSet::new());
        let content = match data.item_vectors {
            Some(v) if v.dim > 0 => {
                if v.n_items() != d.n_items() {
                    return Err(Error::BadData(format!("{} item vectors for {} items", v.n_items(), d.n_items())));
                }
                v.data.clone()
            }
            _ => Vec::new(),
        };
        let mut varmap = seeded_varmap(&shape.specs(), c.seed, &[("scale", INITIAL_SCALE)])?;
        if let Some(path) = &c.init {
            varmap.load(path).map_err(|e| Error::BadData(format!("graphsage init weights {path}: {e}")))?;
        }
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let net = shape.build(&vb).map_err(candle)?;
        let empty = Cache { item_layers: Vec::new(), item_out: Vec::new() };
        let mut model = GraphSage {
            config: c.clone(),
            trained: Trained { shape, net, varmap, content, cache: empty, history: Vec::new() },
        };
        let mut opt = FusedAdamW::new(
            model.trained.varmap.all_vars(),
            candle_nn::ParamsAdamW { lr: c.learning_rate, weight_decay: c.weight_decay, ..Default::default() },
        )
        .map_err(candle)?;
        let mut stopping = EarlyStopping::new(c.patience);
        let mut history = Vec::new();
        for epoch in 0..c.epochs {
            let started = std::time::Instant::now();
            let (plan, sampler_seed) = self.next_epoch(data, &train_users, &mut rng);
            let graph = ProductGraph::build(m, &content_edges, c.content_weight, &skip, &plan.hidden);
            let t = &model.trained;
            let raw = t.shape.raw_rows(&t.content, &graph);
            let (mut sum, mut count) = (0.0f64, 0usize);
            // a sampler thread prepares the next batches while this one trains
            std::thread::scope(|scope| -> Result<()> {
                let (sender, batches) = std::sync::mpsc::sync_channel::<BatchInputs>(2);
                let (this, graph, raw, links) = (&model, &graph, &raw, &plan.links);
                scope.spawn(move || {
                    let mut sampler = Rng::new(sampler_seed);
                    for batch in links.chunks(c.batch).filter(|b| b.len() >= 2) {
                        let prepared = this.prepare_batch(graph, raw, &t.shape, data, batch, &mut sampler);
                        if sender.send(prepared).is_err() {
                            break; // training stopped
                        }
                    }
                });
                for batch in batches {
                    let loss = model.batch_loss(t, batch, &logq).map_err(candle)?;
                    opt.backward_step(&loss).map_err(candle)?;
                    let l = loss.to_scalar::<f32>().map_err(candle)? as f64;
                    if !l.is_finite() {
                        return Err(Error::BadData(format!("GraphSAGE training diverged in epoch {}", epoch + 1)));
                    }
                    sum += l;
                    count += 1;
                }
                Ok(())
            })?;
            let train_seconds = started.elapsed().as_secs_f64();
            let ndcg = if validation.is_empty() {
                None
            } else {
                model.refresh(&base)?;
                Some(crate::cold_start_ndcg(&model, data, &validation, c.seed)?)
            };
            let report = GraphSageEpoch {
                epoch: epoch + 1,
                loss: sum / count.max(1) as f64,
                validation_ndcg: ndcg,
                train_seconds,
                examples: plan.links.len(),
            };
            on_epoch(&report);
            history.push(report);
            if let Some(v) = ndcg {
                if stopping.observe(v, &model.trained.varmap)? {
                    break;
                }
            }
        }
        stopping.restore_best(&model.trained.varmap)?;
        model.trained.history = history;
        // inference graph: every training edge (validation users stay out)
        model.refresh(&base)?;
        Ok(model)
    }

    /// Users, validation split, content edges, shape and logQ; the generator is left where
    /// the first epoch starts.
    fn prepare(&self, data: &TrainData, on_progress: &mut dyn FnMut(&str, usize, usize)) -> Result<Prepared> {
        let d = data.dataset;
        let m = data.matrix;
        let c = self;
        if m.n_cols() != d.n_items() {
            return Err(Error::BadData(format!("matrix has {} columns for {} products", m.n_cols(), d.n_items())));
        }
        let mut rng = Rng::new(c.seed ^ 0x5a9e);
        let content_dim = data.item_vectors.map(|v| v.dim).unwrap_or(0);
        let id_embedding = c.id_embedding.unwrap_or(content_dim == 0);
        // users: cross-shop ones can validate; the rest train
        let mut cross: Vec<usize> = (0..m.n_rows())
            .filter(|&u| {
                let cols = m.row_indices(u);
                cols.iter().any(|x| d.site_of(*x) != d.site_of(cols[0]))
            })
            .collect();
        rng.shuffle(&mut cross);
        let n_val = ((cross.len() as f64) * c.validation_share).round() as usize;
        let validation: Vec<usize> = cross[..n_val].to_vec();
        let mut skip = vec![false; m.n_rows()];
        for &u in &validation {
            skip[u] = true;
        }
        let train_users: Vec<usize> = (0..m.n_rows()).filter(|u| !skip[*u] && m.row_nnz(*u) >= 2).collect();
        if train_users.is_empty() {
            return Err(Error::BadData("no user with two or more interactions to train GraphSAGE".into()));
        }
        let content_edges = match data.item_vectors {
            Some(v) if v.dim > 0 && c.content_k > 0 => {
                content_knn(v, c.content_k, 0.0, |done, total| on_progress("content neighbours", done, total))?
            }
            _ => Vec::new(),
        };
        let mut counts = vec![0f32; d.n_items()];
        for &i in m.indices() {
            counts[i as usize] += 1.0;
        }
        let shape = Shape {
            config: c.clone(),
            n_items: d.n_items(),
            n_sites: d.sites.len(),
            content_dim,
            id_embedding,
            site: d.products.iter().map(|p| p.site).collect(),
            popularity: counts.iter().map(|x| ((x + 1.0).log2() as u32).min(POPULARITY_BUCKETS as u32 - 1)).collect(),
        };
        // log sampling probability of each product as a positive (softmax's logQ)
        let total: f32 = counts.iter().sum::<f32>().max(1.0);
        let logq: Vec<f32> = counts.iter().map(|x| ((x + 1e-3) / total).ln()).collect();
        Ok(Prepared { rng, validation, skip, train_users, content_edges, shape, logq })
    }

    /// The first `epochs` epochs' training data as [`fit`](Recommender::fit) would see them
    /// (without early stopping), for re-implementations (the PyTorch Geometric comparison in
    /// `scripts/graphsage_pyg.py`).
    pub fn export(&self, data: &TrainData, epochs: usize) -> Result<GraphSageExport> {
        let Prepared { mut rng, skip, train_users, content_edges, shape, logq, .. } =
            self.prepare(data, &mut |_, _, _| {})?;
        let epochs = (0..epochs.max(1))
            .map(|_| {
                let (plan, _) = self.next_epoch(data, &train_users, &mut rng);
                let graph = ProductGraph::build(data.matrix, &content_edges, self.content_weight, &skip, &plan.hidden);
                let (offsets, neighbours, weights) = graph.csr();
                EpochGraph {
                    offsets: offsets.to_vec(),
                    neighbours: neighbours.to_vec(),
                    weights: weights.to_vec(),
                    links: plan.links,
                }
            })
            .collect();
        Ok(GraphSageExport {
            config: self.clone(),
            content: data.item_vectors.filter(|v| v.dim > 0).map(|v| v.data.clone()).unwrap_or_default(),
            content_dim: shape.content_dim,
            id_embedding: shape.id_embedding,
            n_items: shape.n_items,
            n_users: data.matrix.n_rows(),
            n_sites: shape.n_sites,
            site: shape.site,
            popularity: shape.popularity,
            epochs,
            logq,
            site_ranges: data.dataset.sites.iter().map(|s| s.items.clone()).collect(),
        })
    }
}

impl GraphSage {
    fn refresh(&mut self, graph: &ProductGraph) -> Result<()> {
        self.trained.cache = self.infer(&self.trained, graph).map_err(candle)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Var;

    fn t2(v: &[f32], r: usize, c: usize) -> Tensor {
        Tensor::from_vec(v.to_vec(), (r, c), &Device::Cpu).unwrap()
    }

    /// Identity layer weights: output = own + aggregated.
    fn identity_layer(pool: bool) -> Layer {
        let eye = t2(&[1.0, 0.0, 0.0, 1.0], 2, 2);
        Layer {
            own: (eye.clone(), Tensor::zeros(2, DType::F32, &Device::Cpu).unwrap()),
            neigh: eye.clone(),
            pool: pool.then(|| (eye, Tensor::zeros(2, DType::F32, &Device::Cpu).unwrap())),
        }
    }

    #[test]
    fn aggregators_on_a_hand_made_graph_agree_with_full_inference() {
        // node 0 has neighbours 1 (weight 1) and 2 (weight 3); node 3 none
        let src = [1.0f32, 0.0, 0.0, 2.0, 4.0, -1.0, 5.0, 5.0];
        let h = t2(&src, 4, 2);
        let lists = vec![vec![(1u32, 1.0f32), (2, 3.0)], vec![]];
        let mean = GraphSage::aggregate(&identity_layer(false), &h, &lists).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(mean[0], vec![3.0, -0.25], "(1·(0,2) + 3·(4,−1)) / 4");
        assert_eq!(mean[1], vec![0.0, 0.0], "no neighbours");
        assert_eq!(mean[0], weighted_mean(&src, 2, &[1, 2], &[1.0, 3.0]));
        // max-pool: ReLU(h) element-wise max over the neighbours
        let max = GraphSage::aggregate(&identity_layer(true), &h, &lists).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(max[0], vec![4.0, 2.0]);
        assert_eq!(max[1], vec![0.0, 0.0]);
        let relu: Vec<f32> = src.iter().map(|x| x.max(0.0)).collect();
        assert_eq!(max[0], max_rows(&relu, 2, &[1, 2]));
        // the layer: own + aggregated, L2-normalised as the last layer
        let own = h.narrow(0, 0, 1).unwrap();
        let agg = t2(&mean[0], 1, 2);
        let out = GraphSage::combine(&identity_layer(false), &own, &agg, true).unwrap().to_vec2::<f32>().unwrap();
        let (a, b) = (4.0f32, -0.25f32);
        let n = (a * a + b * b).sqrt();
        assert!((out[0][0] - a / n).abs() < 1e-6 && (out[0][1] - b / n).abs() < 1e-6, "{out:?}");
        let hidden = GraphSage::combine(&identity_layer(false), &t2(&[-5.0, 1.0], 1, 2), &agg, false).unwrap();
        assert_eq!(hidden.to_vec2::<f32>().unwrap()[0], vec![0.0, 0.75], "ReLU");
    }

    /// Two shops of 6 products; 12 users each with two products on both.
    fn tiny() -> (warmstart_core::Dataset, warmstart_core::CsrMatrix) {
        let mut b = warmstart_core::DatasetBuilder::default();
        for s in 0..2 {
            let site = b.push_site(&format!("s{s}"), "s", "test");
            for i in 0..6 {
                b.push_product(warmstart_core::ProductMeta {
                    site,
                    external_id: format!("{s}-{i}"),
                    title: format!("p{i}"),
                    brand: None,
                    category: Vec::new(),
                    price_usd: None,
                    image: None,
                });
            }
        }
        let mut t = Vec::new();
        for u in 0..12u32 {
            b.push_user(format!("u{u}"));
            for k in 0..2 {
                t.push((u, (u + k) % 6, 1.0));
                t.push((u, 6 + (u + k) % 6, 1.0));
            }
        }
        let d = b.finish().unwrap();
        let m = warmstart_core::CsrMatrix::from_triplets(12, 12, &t);
        (d, m)
    }

    /// The training path (sampled blocks, first layer aggregated in raw space, custom ops)
    /// computes what full-neighbourhood inference computes when the fanouts cover every
    /// neighbour and dropout is off.
    #[test]
    fn training_forward_equals_full_inference() {
        let (d, m) = tiny();
        let v = warmstart_core::ItemVectors {
            dim: 3,
            data: (0..36).map(|i| ((i * 7) % 5) as f32 - 2.0).collect(),
            present: vec![true; 12],
        };
        for (aggregator, ids) in [
            (Aggregator::Mean, false),
            (Aggregator::MaxPool, false),
            (Aggregator::Mean, true),
            (Aggregator::MaxPool, true),
        ] {
            let c = GraphSageConfig::builder()
                .hidden(8)
                .dim(4)
                .fanouts(vec![50, 50])
                .aggregator(aggregator)
                .dropout(0.0)
                .content_k(0)
                .id_embedding(Some(ids))
                .validation_share(0.0)
                .epochs(1)
                .build()
                .unwrap();
            let data = TrainData { dataset: &d, matrix: &m, item_vectors: Some(&v) };
            let model = c.fit_with(&data, &mut |_| {}, &mut |_, _, _| {}).unwrap();
            let t = &model.trained;
            let graph = ProductGraph::build(&m, &[], 1.0, &[], &HashSet::new());
            let raw = t.shape.raw_rows(&t.content, &graph);
            let links: Vec<(usize, ItemId)> = (0..12).map(|u| (u, ((u + 3) % 12) as ItemId)).collect();
            let batch = model.prepare_batch(&graph, &raw, &t.shape, &data, &links, &mut Rng::new(3));
            let z = model.forward(t, &batch.blocks, batch.inputs.clone(), batch.ids.clone(), &batch.dropout).unwrap();
            let z = z.to_vec2::<f32>().unwrap();
            for &(u, i) in &links {
                let item = &t.cache.item_out[i as usize * 4..(i as usize + 1) * 4];
                let got = &z[batch.blocks.position(i) as usize];
                assert!(
                    item.iter().zip(got).all(|(a, b)| (a - b).abs() < 1e-5),
                    "{aggregator:?} item {i}: {item:?} vs {got:?}"
                );
                let history: Vec<(ItemId, f32)> = m.row_indices(u).iter().map(|&i| (i, 1.0)).collect();
                let user = model.embed_user(t, &history).unwrap();
                let got = &z[batch.blocks.position((12 + u) as u32) as usize];
                assert!(
                    user.iter().zip(got).all(|(a, b)| (a - b).abs() < 1e-5),
                    "{aggregator:?} user {u}: {user:?} vs {got:?}"
                );
            }
        }
    }

    #[test]
    fn gradients_reach_every_parameter() {
        let (d, m) = tiny();
        let v = warmstart_core::ItemVectors {
            dim: 3,
            data: (0..36).map(|i| ((i * 7) % 5) as f32 - 2.0).collect(),
            present: vec![true; 12],
        };
        for aggregator in [Aggregator::Mean, Aggregator::MaxPool] {
            let c = GraphSageConfig::builder()
                .hidden(8)
                .dim(4)
                .fanouts(vec![3, 2])
                .aggregator(aggregator)
                .content_k(2)
                .validation_share(0.0)
                .epochs(1)
                .build()
                .unwrap();
            let data = TrainData { dataset: &d, matrix: &m, item_vectors: Some(&v) };
            let model = c.fit_with(&data, &mut |_| {}, &mut |_, _, _| {}).unwrap();
            let t = &model.trained;
            let mut rng = Rng::new(1);
            let users: Vec<usize> = (0..12).collect();
            let plan = c.plan_epoch(&data, &users, &mut rng);
            assert!(plan.links.iter().all(|(u, i)| plan.hidden.contains(&(*u as u32, *i))), "every positive is hidden");
            let graph = ProductGraph::build(&m, &[], 1.0, &[], &plan.hidden);
            let raw = t.shape.raw_rows(&t.content, &graph);
            for (u, i) in &plan.links {
                assert!(!graph.neighbours((12 + u) as u32).0.contains(i), "a positive link is not in the graph");
            }
            let logq = vec![0f32; 12];
            let batch = model.prepare_batch(&graph, &raw, &t.shape, &data, &plan.links, &mut rng);
            let loss = model.batch_loss(t, batch, &logq).unwrap();
            let grads = loss.backward().unwrap();
            let vars: Vec<(String, Var)> =
                t.varmap.data().lock().unwrap().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            for (name, var) in vars {
                let g = grads.get(var.as_tensor()).unwrap_or_else(|| panic!("{aggregator:?}: no gradient for {name}"));
                let norm = g.sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
                assert!(norm > 0.0 && norm.is_finite(), "{aggregator:?}: zero gradient for {name}");
            }
        }
    }
}
