//! A two-tower retrieval model trained with candle autograd.
//!
//! - **Item tower**: the item's content vector (when the dataset has them), embeddings of its
//!   popularity bucket (log2 of its training interactions),
//!   site, category path, top-level category, brand and price bucket, and optionally an
//!   item-id embedding, through a two-layer MLP to `dim`, L2-normalised.
//! - **User tower**: the user's history pooled over the item-tower outputs of their items
//!   (weighted mean, or attention whose logits add the log of each interaction's weight),
//!   plus a residual two-layer MLP, L2-normalised. There is no user-id embedding: a user new
//!   to a shop is embedded from their other-shop history alone, without retraining.
//! - **Score**: cosine × a learned scale (inverse temperature).
//! - **Losses**: binary cross-entropy on each positive and `negatives` items drawn uniformly
//!   from the positive's site, or in-batch sampled softmax with the logQ correction
//!   (Yi et al. 2019) for the popularity of in-batch negatives.
//!
//! Training examples imitate the cold start: a training user's target item is drawn from
//! their interactions and the history is their items on the *other* sites (all other items
//! when they use one site). Early stopping watches NDCG@10 of held-out cross-site users.

use std::collections::HashMap;
use std::ops::Range;

use candle_core::{Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use serde::{Deserialize, Serialize};
use warmstart_core::{Dataset, ItemId, Rng};

mod config;
mod persist;
mod serve;
mod train;
use train::Example;

pub use crate::losses::{bce, sampled_softmax};
use crate::nn::{constant_matmul, dense, fused_dense, l2, sparse_rows, Activation, SparseRows};
pub use config::{Pooling, TwoTowerConfig, TwoTowerConfigBuilder, TwoTowerLoss};

/// Categorical features of every item (0 = unknown in each vocabulary).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct ItemFeatures {
    site: Vec<u32>,
    category: Vec<u32>,
    top_category: Vec<u32>,
    brand: Vec<u32>,
    price: Vec<u32>,
    /// log2 bucket of the item's training interactions (popularity as a feature).
    popularity: Vec<u32>,
    sizes: [usize; 6],
}

const PRICE_BUCKETS: usize = 16;
const POPULARITY_BUCKETS: usize = 16;

impl ItemFeatures {
    fn of(d: &Dataset, counts: &[f32]) -> ItemFeatures {
        let vocab = |keys: Vec<Option<String>>, min: usize| -> (Vec<u32>, usize) {
            let mut counts: HashMap<&str, usize> = HashMap::new();
            for k in keys.iter().flatten() {
                *counts.entry(k.as_str()).or_default() += 1;
            }
            let mut names: Vec<&str> = counts.iter().filter(|(_, c)| **c >= min).map(|(k, _)| *k).collect();
            names.sort_unstable();
            let id: HashMap<&str, u32> = names.iter().enumerate().map(|(i, k)| (*k, i as u32 + 1)).collect();
            (keys.iter().map(|k| k.as_deref().and_then(|k| id.get(k).copied()).unwrap_or(0)).collect(), names.len() + 1)
        };
        let (category, nc) =
            vocab(d.products.iter().map(|p| (!p.category.is_empty()).then(|| p.category.join(" > "))).collect(), 2);
        let (top_category, nt) = vocab(d.products.iter().map(|p| p.category.first().cloned()).collect(), 1);
        let (brand, nb) = vocab(d.products.iter().map(|p| p.brand.clone()).collect(), 2);
        let price = d
            .products
            .iter()
            .map(|p| match p.price_usd {
                Some(x) if x.is_finite() && x >= 0.0 => 1 + ((x + 1.0).log2() as u32).min(PRICE_BUCKETS as u32 - 2),
                _ => 0,
            })
            .collect();
        ItemFeatures {
            site: d.products.iter().map(|p| p.site).collect(),
            category,
            top_category,
            brand,
            price,
            popularity: counts.iter().map(|c| ((c + 1.0).log2() as u32).min(POPULARITY_BUCKETS as u32 - 1)).collect(),
            sizes: [d.sites.len().max(1), nc, nt, nb, PRICE_BUCKETS, POPULARITY_BUCKETS],
        }
    }
}

const EMB: [(&str, usize); 6] =
    [("site", 8), ("category", 16), ("top_category", 8), ("brand", 16), ("price", 8), ("popularity", 8)];
const ID_DIM: usize = 32;

/// Everything needed to rebuild a trained model (saved beside the weights).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Shape {
    config: TwoTowerConfig,
    features: ItemFeatures,
    content_dim: usize,
    n_items: usize,
    id_embedding: bool,
}

struct Net {
    /// Feature column (index into `EMB`) and its embedding table.
    tables: Vec<(usize, Tensor)>,
    ids: Option<Tensor>,
    item: [(Tensor, Tensor); 2],
    user: Option<[(Tensor, Tensor); 2]>,
    query: Tensor,
    scale: Tensor,
}

impl Shape {
    /// The embedded feature columns (indices into `EMB`).
    fn columns(&self) -> Vec<usize> {
        let c = &self.config;
        (0..EMB.len()).filter(|&i| if i == EMB.len() - 1 { c.popularity_feature } else { c.categorical }).collect()
    }

    fn input_dim(&self) -> usize {
        self.content_dim
            + self.columns().iter().map(|&i| EMB[i].1).sum::<usize>()
            + if self.id_embedding { ID_DIM } else { 0 }
    }

    /// Parameter names, shapes and initial standard deviations.
    fn specs(&self) -> Vec<(String, Vec<usize>, f32)> {
        let c = &self.config;
        let mut out: Vec<(String, Vec<usize>, f32)> = self
            .columns()
            .into_iter()
            .map(|i| (format!("emb.{}", EMB[i].0), vec![self.features.sizes[i], EMB[i].1], 0.1))
            .collect();
        if self.id_embedding {
            out.push(("emb.id".into(), vec![self.n_items, ID_DIM], 0.1));
        }
        let mut lin = |name: &str, i: usize, o: usize, gain: f32| {
            out.push((format!("{name}.weight"), vec![i, o], gain / (i as f32).sqrt()));
            out.push((format!("{name}.bias"), vec![o], 0.0));
        };
        lin("item.0", self.input_dim(), c.hidden, 2f32.sqrt());
        lin("item.1", c.hidden, c.dim, 1.0);
        if c.user_mlp {
            lin("user.0", c.dim, c.hidden, 2f32.sqrt());
            lin("user.1", c.hidden, c.dim, 0.1);
        }
        out.push(("query".into(), vec![c.dim], 0.1));
        out.push(("scale".into(), vec![], 0.0));
        out
    }

    fn build(&self, vb: &VarBuilder) -> candle_core::Result<Net> {
        let c = &self.config;
        let lin = |name: &str, i: usize, o: usize| -> candle_core::Result<(Tensor, Tensor)> {
            Ok((vb.get((i, o), &format!("{name}.weight"))?, vb.get(o, &format!("{name}.bias"))?))
        };
        Ok(Net {
            tables: self
                .columns()
                .into_iter()
                .map(|i| Ok((i, vb.get((self.features.sizes[i], EMB[i].1), &format!("emb.{}", EMB[i].0))?)))
                .collect::<candle_core::Result<_>>()?,
            ids: if self.id_embedding { Some(vb.get((self.n_items, ID_DIM), "emb.id")?) } else { None },
            item: [lin("item.0", self.input_dim(), c.hidden)?, lin("item.1", c.hidden, c.dim)?],
            user: if c.user_mlp {
                Some([lin("user.0", c.dim, c.hidden)?, lin("user.1", c.hidden, c.dim)?])
            } else {
                None
            },
            query: vb.get(c.dim, "query")?,
            scale: vb.get((), "scale")?,
        })
    }
}

/// The trained two-tower model.
pub struct TwoTower {
    config: TwoTowerConfig,
    trained: Trained,
}

/// Kind of a saved two-tower model.
pub(crate) const KIND: &str = "two-tower";

struct Trained {
    shape: Shape,
    net: Net,
    varmap: VarMap,
    content: Tensor,
    /// Item-tower outputs of every item (`n_items × dim`), computed after training.
    item_vectors: Vec<f32>,
    /// What each epoch of the last fit did.
    history: Vec<TwoTowerEpoch>,
}

/// What training did, epoch by epoch.
pub type TwoTowerEpoch = crate::nn::EpochReport;

/// An exported training example: the target item and the (item, weight) history.
pub type ExportedExample = (ItemId, Vec<(ItemId, f32)>);

/// The training epochs' data in plain arrays, for re-implementations of the training loop
/// (the PyTorch comparison in `scripts/two_tower_torch.py`).
#[derive(Debug, Clone)]
pub struct TwoTowerExport {
    /// The checked config.
    pub config: TwoTowerConfig,
    /// Content vectors (`n_items × content_dim`, row-major; empty without content).
    pub content: Vec<f32>,
    /// Content dimension (0 without content).
    pub content_dim: usize,
    /// Whether an item-id embedding is learned.
    pub id_embedding: bool,
    /// Embedded feature columns: name, embedding dimension, vocabulary size, and each item's
    /// index (`n_items`).
    pub features: Vec<(&'static str, usize, usize, Vec<u32>)>,
    /// Item-id range of each site.
    pub site_ranges: Vec<Range<ItemId>>,
    /// Log sampling probability of each item as an in-batch target.
    pub logq: Vec<f32>,
    /// Each epoch's examples in training order (a fresh draw per epoch, as training draws
    /// them): target item and (item, weight) history.
    pub epochs: Vec<Vec<ExportedExample>>,
    /// Warm-up and total steps of the learning-rate schedule.
    pub warmup_steps: usize,
    /// Total optimiser steps.
    pub total_steps: usize,
    /// Where the learning rate ends, as a share of its peak.
    pub lr_floor: f64,
    /// Width of the item-id embedding (when learned).
    pub id_dim: usize,
    /// Initial log of the logit scale.
    pub initial_scale: f32,
    /// AdamW's β₁, β₂ and ε.
    pub adam: (f64, f64, f64),
}

impl TwoTower {
    /// Training loss and validation NDCG@10 per epoch of the fit.
    pub fn epochs(&self) -> Vec<TwoTowerEpoch> {
        self.trained.history.clone()
    }

    /// Item-tower outputs (`n_items × dim`, row-major) of the fitted model.
    pub fn item_vectors(&self) -> Option<(&[f32], usize)> {
        Some((self.trained.item_vectors.as_slice(), self.trained.shape.config.dim))
    }

    /// The item tower over `items`. Its first layer is `ReLU([content | embeddings] · W + b)`,
    /// computed as one fused op with the content vectors as data, so the backward pass skips
    /// their gradient (it would be the largest product of the step).
    fn item_tower(t: &Trained, net: &Net, items: &[u32]) -> candle_core::Result<Tensor> {
        let dev = &Device::Cpu;
        let idx = Tensor::from_vec(items.to_vec(), items.len(), dev)?;
        let f = &t.shape.features;
        let mut parts = Vec::new();
        let columns = [&f.site, &f.category, &f.top_category, &f.brand, &f.price, &f.popularity];
        for (c, table) in &net.tables {
            let ids: Vec<u32> = items.iter().map(|&i| columns[*c][i as usize]).collect();
            parts.push(table.index_select(&Tensor::from_vec(ids, items.len(), dev)?, 0)?);
        }
        if let Some(ids) = &net.ids {
            parts.push(ids.index_select(&idx, 0)?);
        }
        let content = if t.shape.content_dim > 0 { Some(t.content.index_select(&idx, 0)?) } else { None };
        let hidden = if parts.is_empty() {
            let Some(content) = content else { candle_core::bail!("the item tower has no inputs") };
            let (w, b) = &net.item[0];
            constant_matmul(content, w)?.broadcast_add(b)?.relu()?
        } else {
            fused_dense(content, &Tensor::cat(&parts, 1)?, &net.item[0], Activation::Relu)?
        };
        fused_dense(None, &hidden, &net.item[1], Activation::L2)
    }

    /// Users from pooled history: `histories[b]` lists user `b`'s (row of `items`, weight);
    /// `items` are the item outputs (`U × dim`).
    fn user_tower(&self, net: &Net, histories: &[Vec<(u32, f32)>], items: &Tensor) -> candle_core::Result<Tensor> {
        let pooled = match self.config.pooling {
            // a weighted mean of a few rows each: sparse, not a B × U product
            Pooling::Mean => sparse_rows(items, SparseRows::means(histories))?,
            Pooling::Attention => {
                let u = items.dim(0)?;
                let mut pool = vec![0f32; histories.len() * u];
                for (b, h) in histories.iter().enumerate() {
                    for &(slot, w) in h {
                        pool[b * u + slot as usize] += w;
                    }
                }
                let pool = Tensor::from_vec(pool, (histories.len(), u), items.device())?;
                let logits = items.matmul(&net.query.unsqueeze(1)?)?.t()?; // 1 × U
                                                                           // log weight, −∞ (as −1e9) outside the history
                let mask = pool.gt(0.0)?;
                let logw = pool.clamp(1e-12, f64::MAX)?.log()?;
                let neg = Tensor::full(-1e9f32, pool.shape(), pool.device())?;
                let scores = mask.where_cond(&logits.broadcast_add(&logw)?, &neg)?;
                candle_nn::ops::softmax_last_dim(&scores)?.matmul(items)?
            }
        };
        match &net.user {
            Some(mlp) => l2(&(dense(&fused_dense(None, &pooled, &mlp[0], Activation::Relu)?, &mlp[1])? + &pooled)?),
            None => l2(&pooled),
        }
    }

    fn loss(
        &self,
        t: &Trained,
        batch: &[Example],
        rng: &mut Rng,
        d: &Dataset,
        logq: &[f32],
    ) -> candle_core::Result<Tensor> {
        let net = &t.net;
        let dev = &Device::Cpu;
        // the unique items of the batch: histories, targets and negatives
        let mut slot: HashMap<ItemId, usize> = HashMap::new();
        let mut items: Vec<u32> = Vec::new();
        let mut at = |i: ItemId, items: &mut Vec<u32>| -> usize {
            *slot.entry(i).or_insert_with(|| {
                items.push(i);
                items.len() - 1
            })
        };
        let histories: Vec<Vec<(u32, f32)>> =
            batch.iter().map(|e| e.history.iter().map(|&(i, w)| (at(i, &mut items) as u32, w)).collect()).collect();
        let targets: Vec<usize> = batch.iter().map(|e| at(e.target, &mut items)).collect();
        let negatives: Vec<Vec<usize>> = match self.config.loss {
            TwoTowerLoss::Bce => batch
                .iter()
                .map(|e| {
                    let range = d.sites[d.site_of(e.target) as usize].items.clone();
                    (0..self.config.negatives)
                        .map(|_| at(range.start + rng.below(range.len()) as u32, &mut items))
                        .collect()
                })
                .collect(),
            // mixed negative sampling: a shared set of uniform draws from the batch's sites
            TwoTowerLoss::Softmax => vec![(0..self.config.uniform_negatives)
                .map(|_| {
                    let e = &batch[rng.below(batch.len())];
                    let range = d.sites[d.site_of(e.target) as usize].items.clone();
                    at(range.start + rng.below(range.len()) as u32, &mut items)
                })
                .collect()],
        };
        let h = Self::item_tower(t, net, &items)?;
        let users = self.user_tower(net, &histories, &h)?;
        let scale = net.scale.exp()?;
        let pos_idx = Tensor::from_vec(targets.iter().map(|&x| x as u32).collect::<Vec<_>>(), batch.len(), dev)?;
        let pos = h.index_select(&pos_idx, 0)?;
        match self.config.loss {
            TwoTowerLoss::Bce => {
                let k = self.config.negatives;
                let neg_idx: Vec<u32> = negatives.iter().flatten().map(|&x| x as u32).collect();
                let neg = h.index_select(&Tensor::from_vec(neg_idx, batch.len() * k, dev)?, 0)?.reshape((
                    batch.len(),
                    k,
                    (),
                ))?;
                let pos_logit = (users.clone() * pos)?.sum(1)?.broadcast_mul(&scale)?; // B
                let neg_logit = neg.broadcast_mul(&users.unsqueeze(1)?)?.sum(2)?.broadcast_mul(&scale)?; // B × k
                bce(&pos_logit, &neg_logit)
            }
            TwoTowerLoss::Softmax => {
                // columns: the batch's targets (sampled ∝ popularity: expected count B·p),
                // then the uniform negatives (expected count R / |site|)
                let mut columns: Vec<(ItemId, f32)> =
                    batch.iter().map(|e| (e.target, logq[e.target as usize] + (batch.len() as f32).ln())).collect();
                let uniform = &negatives[0];
                let mut col_idx: Vec<u32> = targets.iter().map(|&x| x as u32).collect();
                for &slot in uniform {
                    let item = items[slot];
                    let n_site = d.sites[d.site_of(item) as usize].items.len() as f32;
                    columns.push((item, (uniform.len() as f32 / n_site).ln()));
                    col_idx.push(slot as u32);
                }
                let cols = h.index_select(&Tensor::from_vec(col_idx, columns.len(), dev)?, 0)?;
                let logits = users.matmul(&cols.t()?)?.broadcast_mul(&scale)?;
                let target_items: Vec<ItemId> = batch.iter().map(|e| e.target).collect();
                sampled_softmax(&logits, &target_items, &columns)
            }
        }
    }
}
