//! GraphSAGE's hyper-parameters: aggregator, objective, the checked config and its builder
//! (also from `key=value` model-name parameters), and the display name.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Neighbourhood aggregator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Aggregator {
    /// Edge-weighted mean of the neighbours.
    Mean,
    /// Element-wise max of `ReLU(W_pool h_u + b_pool)` over the neighbours.
    MaxPool,
}

/// Training objective.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GraphSageLoss {
    /// Link-prediction binary cross-entropy against same-shop uniform negatives.
    Bce,
    /// In-batch sampled softmax over the batch's positive products with the logQ correction
    /// (as the two-tower model trains).
    Softmax,
}

/// Checked hyper-parameters of [`GraphSage`] (build with [`GraphSageConfig::builder`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphSageConfig {
    /// Width of the inputs and hidden layers.
    pub hidden: usize,
    /// Output dimension.
    pub dim: usize,
    /// Neighbours sampled per node, from the targets outwards; one layer per entry.
    pub fanouts: Vec<usize>,
    /// Aggregator.
    pub aggregator: Aggregator,
    /// Dropout between layers.
    pub dropout: f32,
    /// Objective.
    pub loss: GraphSageLoss,
    /// Same-shop negatives per positive link (BCE).
    pub negatives: usize,
    /// Positive links per step.
    pub batch: usize,
    /// Maximum epochs.
    pub epochs: usize,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
    /// Content k-nearest-neighbour edges per product (0: none).
    pub content_k: usize,
    /// Weight of a content edge (times the cosine similarity) in the mean aggregator.
    pub content_weight: f32,
    /// Positive links drawn per training user and epoch.
    pub targets_per_user: usize,
    /// Products sampled per user and step for the id-embedding part of the user's input
    /// (id embeddings only; content inputs average the user's whole visible history).
    pub user_items: usize,
    /// Share of cross-shop training users held out for early stopping (0 disables it).
    pub validation_share: f64,
    /// Epochs without a better validation NDCG@10 before stopping.
    pub patience: usize,
    /// Learn a product-id embedding (by default only for data without content vectors).
    pub id_embedding: Option<bool>,
    /// Seed of initialisation, sampling and order.
    pub seed: u64,
    /// Weights to start from instead of the seeded initialisation: a safetensors file with
    /// this model's parameter names and shapes (`scripts/graphsage_pyg.py --save` writes one
    /// from PyTorch Geometric). With `epochs = 0` the model is used as loaded.
    #[serde(default)]
    pub init: Option<String>,
}

/// Builder of [`GraphSageConfig`].
#[derive(Debug, Clone)]
pub struct GraphSageConfigBuilder(GraphSageConfig);

impl GraphSageConfig {
    /// Defaults: hidden 128, dim 64, fanouts [10, 5], mean aggregator, dropout 0.1, in-batch
    /// softmax (BCE: 4 negatives), batch 256, ≤ 20 epochs, lr 3e-3, content k 10, 2 targets
    /// per user.
    pub fn builder() -> GraphSageConfigBuilder {
        GraphSageConfigBuilder(GraphSageConfig {
            hidden: 128,
            dim: 64,
            fanouts: vec![10, 5],
            aggregator: Aggregator::Mean,
            dropout: 0.1,
            loss: GraphSageLoss::Softmax,
            negatives: 4,
            batch: 256,
            epochs: 20,
            learning_rate: 3e-3,
            weight_decay: 1e-4,
            content_k: 10,
            content_weight: 1.0,
            targets_per_user: 2,
            user_items: 20,
            validation_share: 0.1,
            patience: 2,
            init: None,
            id_embedding: None,
            seed: 42,
        })
    }
}

macro_rules! setter {
    ($name:ident, $t:ty) => {
        /// Sets the field of the same name.
        pub fn $name(mut self, v: $t) -> Self {
            self.0.$name = v;
            self
        }
    };
}

impl GraphSageConfigBuilder {
    setter!(hidden, usize);
    setter!(dim, usize);
    setter!(fanouts, Vec<usize>);
    setter!(aggregator, Aggregator);
    setter!(dropout, f32);
    setter!(loss, GraphSageLoss);
    setter!(negatives, usize);
    setter!(batch, usize);
    setter!(epochs, usize);
    setter!(learning_rate, f64);
    setter!(weight_decay, f64);
    setter!(content_k, usize);
    setter!(content_weight, f32);
    setter!(targets_per_user, usize);
    setter!(user_items, usize);
    setter!(validation_share, f64);
    setter!(patience, usize);
    setter!(id_embedding, Option<bool>);
    setter!(seed, u64);
    setter!(init, Option<String>);

    /// Sets one parameter from text (`graphsage:fanouts=10/5:agg=max`); the error names the key.
    pub fn set(self, key: &str, value: &str) -> Result<Self> {
        let bad = |what: &str| Error::ModelParameter(format!("graphsage parameter `{key}`: `{value}` {what}"));
        let num = |_: ()| -> Result<f64> { value.parse::<f64>().map_err(|_| bad("is not a number")) };
        let int = |_: ()| -> Result<usize> { value.parse::<usize>().map_err(|_| bad("is not a whole number")) };
        Ok(match key {
            "hidden" => self.hidden(int(())?),
            "dim" => self.dim(int(())?),
            "fanouts" => self.fanouts(
                value
                    .split(['/', ','])
                    .map(|f| f.parse::<usize>().map_err(|_| bad("is not a list like 15/10")))
                    .collect::<Result<_>>()?,
            ),
            "agg" | "aggregator" => self.aggregator(match value {
                "mean" => Aggregator::Mean,
                "max" | "maxpool" | "pool" => Aggregator::MaxPool,
                _ => return Err(bad("(mean or max)")),
            }),
            "dropout" => self.dropout(num(())? as f32),
            "loss" => self.loss(match value {
                "bce" => GraphSageLoss::Bce,
                "softmax" => GraphSageLoss::Softmax,
                _ => return Err(bad("(bce or softmax)")),
            }),
            "neg" => self.negatives(int(())?),
            "batch" => self.batch(int(())?),
            "epochs" => self.epochs(int(())?),
            "lr" => self.learning_rate(num(())?),
            "wd" => self.weight_decay(num(())?),
            "content_k" => self.content_k(int(())?),
            "content_weight" => self.content_weight(num(())? as f32),
            "targets" => self.targets_per_user(int(())?),
            "user_items" => self.user_items(int(())?),
            "validation" => self.validation_share(num(())?),
            "patience" => self.patience(int(())?),
            "seed" => self.seed(int(())? as u64),
            "init" => self.init(Some(value.to_string())),
            "ids" => self.id_embedding(Some(match value {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" => false,
                _ => return Err(bad("is not on/off")),
            })),
            _ => {
                return Err(Error::ModelParameter(format!(
                    "unknown graphsage parameter `{key}` (hidden, dim, fanouts, agg, dropout, loss, neg, batch, epochs, lr, \
                     wd, content_k, content_weight, targets, user_items, validation, patience, seed, ids, init)"
                )))
            }
        })
    }

    /// Validates into a config.
    pub fn build(self) -> Result<GraphSageConfig> {
        let c = self.0;
        crate::check("hidden/dim", c.hidden > 0 && c.dim > 0, format!("{}/{}", c.hidden, c.dim), "must be positive")?;
        crate::check(
            "fanouts",
            !c.fanouts.is_empty() && c.fanouts.len() <= 3 && c.fanouts.iter().all(|f| *f > 0),
            format!("{:?}", c.fanouts),
            "one to three positive fanouts",
        )?;
        crate::check("dropout", (0.0..0.9).contains(&c.dropout), c.dropout, "must be in [0, 0.9)")?;
        crate::check("negatives", c.negatives > 0, c.negatives, "BCE needs at least one negative")?;
        crate::check("batch", c.batch >= 2, c.batch, "must be at least 2")?;
        crate::check(
            "epochs/targets/user_items",
            (c.epochs > 0 || c.init.is_some()) && c.targets_per_user > 0 && c.user_items > 0,
            format!("{}/{}/{}", c.epochs, c.targets_per_user, c.user_items),
            "must be positive (epochs may be 0 with init weights)",
        )?;
        crate::check(
            "learning_rate",
            c.learning_rate > 0.0 && c.learning_rate.is_finite() && c.weight_decay >= 0.0,
            c.learning_rate,
            "must be positive (weight decay ≥ 0)",
        )?;
        crate::check(
            "content_weight",
            c.content_weight >= 0.0 && c.content_weight.is_finite(),
            c.content_weight,
            "must be ≥ 0",
        )?;
        crate::check(
            "validation_share",
            (0.0..0.5).contains(&c.validation_share),
            c.validation_share,
            "must be in [0, 0.5)",
        )?;
        Ok(c)
    }
}

impl GraphSageConfig {
    /// The model's display name: the variant and every setting that differs from the defaults.
    pub(super) fn model_name(&self) -> String {
        let c = self;
        let mut parts = vec![
            match c.loss {
                GraphSageLoss::Bce => "bce".to_string(),
                GraphSageLoss::Softmax => "softmax".to_string(),
            },
            match c.aggregator {
                Aggregator::Mean => "mean".to_string(),
                Aggregator::MaxPool => "max-pool".to_string(),
            },
            format!("fanouts {}", c.fanouts.iter().map(|f| f.to_string()).collect::<Vec<_>>().join("/")),
            format!("d {}", c.dim),
        ];
        if let Ok(d) = GraphSageConfig::builder().build() {
            let mut differs = |name: &str, a: String, b: String| {
                if a != b {
                    parts.push(format!("{name} {a}"));
                }
            };
            differs("hidden", c.hidden.to_string(), d.hidden.to_string());
            differs("dropout", c.dropout.to_string(), d.dropout.to_string());
            if c.loss == GraphSageLoss::Bce {
                differs("neg", c.negatives.to_string(), d.negatives.to_string());
            }
            differs("batch", c.batch.to_string(), d.batch.to_string());
            differs("lr", c.learning_rate.to_string(), d.learning_rate.to_string());
            differs("wd", c.weight_decay.to_string(), d.weight_decay.to_string());
            differs("content_k", c.content_k.to_string(), d.content_k.to_string());
            differs("content_weight", c.content_weight.to_string(), d.content_weight.to_string());
            differs("targets", c.targets_per_user.to_string(), d.targets_per_user.to_string());
            differs("user_items", c.user_items.to_string(), d.user_items.to_string());
            if let Some(path) = &c.init {
                parts.push(format!("init {path}"));
            }
            if let Some(ids) = c.id_embedding {
                parts.push(if ids { "ids".into() } else { "no ids".into() });
            }
        }
        format!("graphsage({}, ≤{} epochs)", parts.join(", "), c.epochs)
    }
}
