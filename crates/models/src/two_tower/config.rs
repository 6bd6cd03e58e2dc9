//! The two-tower model's hyper-parameters: the checked config, its builder (with `key=value`
//! parsing for model names) and the display name.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Training objective.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TwoTowerLoss {
    /// Binary cross-entropy on positives and uniformly sampled same-site negatives.
    Bce,
    /// In-batch sampled softmax with logQ correction.
    Softmax,
}

/// How a history is pooled into the user tower's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// Interaction-weighted mean.
    Mean,
    /// Attention with a learned query; logits plus the log interaction weight.
    Attention,
}

/// Checked hyper-parameters of [`TwoTower`] (build with [`TwoTowerConfig::builder`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TwoTowerConfig {
    /// Output dimension of both towers.
    pub dim: usize,
    /// Hidden width of the MLPs.
    pub hidden: usize,
    /// Loss.
    pub loss: TwoTowerLoss,
    /// Negatives per positive (BCE).
    pub negatives: usize,
    /// History pooling.
    pub pooling: Pooling,
    /// Learn an item-id embedding (on by default only for data without content vectors).
    pub id_embedding: Option<bool>,
    /// Maximum epochs.
    pub epochs: usize,
    /// Examples per step.
    pub batch: usize,
    /// Peak learning rate (AdamW; linear warm-up, cosine decay).
    pub learning_rate: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
    /// History items kept per example (a random subset of longer histories).
    pub max_history: usize,
    /// Share of cross-site training users held out for early stopping (0 disables it).
    pub validation_share: f64,
    /// Epochs without a better validation NDCG@10 before stopping.
    pub patience: usize,
    /// Seed of initialisation, sampling and order.
    pub seed: u64,
    /// Training examples (target items) drawn per user and epoch.
    #[serde(default = "one")]
    pub targets_per_user: usize,
    /// Uniformly drawn same-site negatives added to the in-batch softmax (mixed negative
    /// sampling, Yang et al. 2020); 0 = in-batch negatives only.
    #[serde(default)]
    pub uniform_negatives: usize,
    /// Embed the categorical features (site, category, brand, price).
    #[serde(default = "yes")]
    pub categorical: bool,
    /// Embed the popularity bucket.
    #[serde(default = "yes")]
    pub popularity_feature: bool,
    /// The residual MLP of the user tower (off: the pooled history is the user).
    #[serde(default = "yes")]
    pub user_mlp: bool,
    /// Weights to start from instead of the seeded initialisation: a safetensors file with
    /// this model's parameter names and shapes (`scripts/two_tower_torch.py --save` writes one
    /// from the PyTorch re-implementation). With `epochs = 0` the model is used as loaded.
    #[serde(default)]
    pub init: Option<String>,
}

fn one() -> usize {
    1
}

fn yes() -> bool {
    true
}

/// Builder of [`TwoTowerConfig`].
#[derive(Debug, Clone)]
pub struct TwoTowerConfigBuilder(TwoTowerConfig);

impl TwoTowerConfig {
    /// Defaults: 64-d, hidden 256, softmax loss, mean pooling, at most 25 epochs of batch 256.
    pub fn builder() -> TwoTowerConfigBuilder {
        TwoTowerConfigBuilder(TwoTowerConfig {
            dim: 64,
            hidden: 256,
            loss: TwoTowerLoss::Softmax,
            negatives: 4,
            pooling: Pooling::Mean,
            id_embedding: None,
            epochs: 25,
            batch: 256,
            learning_rate: 3e-3,
            weight_decay: 1e-4,
            max_history: 50,
            validation_share: 0.05,
            patience: 2,
            seed: 42,
            targets_per_user: 1,
            uniform_negatives: 0,
            categorical: true,
            popularity_feature: true,
            user_mlp: true,
            init: None,
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

impl TwoTowerConfigBuilder {
    setter!(dim, usize);
    setter!(hidden, usize);
    setter!(loss, TwoTowerLoss);
    setter!(negatives, usize);
    setter!(pooling, Pooling);
    setter!(id_embedding, Option<bool>);
    setter!(epochs, usize);
    setter!(batch, usize);
    setter!(learning_rate, f64);
    setter!(weight_decay, f64);
    setter!(max_history, usize);
    setter!(validation_share, f64);
    setter!(patience, usize);
    setter!(seed, u64);
    setter!(targets_per_user, usize);
    setter!(uniform_negatives, usize);
    setter!(categorical, bool);
    setter!(popularity_feature, bool);
    setter!(user_mlp, bool);
    setter!(init, Option<String>);

    /// Sets one parameter from text (`key=value` in model names such as
    /// `two-tower:epochs=40:dim=128`); the error names the key and the rule.
    pub fn set(self, key: &str, value: &str) -> Result<Self> {
        fn num<T: std::str::FromStr>(key: &str, value: &str) -> Result<T> {
            value.parse().map_err(|_| Error::BadData(format!("two-tower parameter `{key}`: `{value}` is not a number")))
        }
        fn flag(key: &str, value: &str) -> Result<bool> {
            match value {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" => Ok(false),
                _ => Err(Error::ModelParameter(format!("two-tower parameter `{key}`: `{value}` is not on/off"))),
            }
        }
        Ok(match key {
            "dim" => self.dim(num(key, value)?),
            "hidden" => self.hidden(num(key, value)?),
            "epochs" => self.epochs(num(key, value)?),
            "batch" => self.batch(num(key, value)?),
            "lr" => self.learning_rate(num(key, value)?),
            "wd" => self.weight_decay(num(key, value)?),
            "neg" => self.negatives(num(key, value)?),
            "uniform" => self.uniform_negatives(num(key, value)?),
            "targets" => self.targets_per_user(num(key, value)?),
            "history" => self.max_history(num(key, value)?),
            "patience" => self.patience(num(key, value)?),
            "validation" => self.validation_share(num(key, value)?),
            "seed" => self.seed(num(key, value)?),
            "ids" => self.id_embedding(Some(flag(key, value)?)),
            "categorical" => self.categorical(flag(key, value)?),
            "popularity" => self.popularity_feature(flag(key, value)?),
            "user_mlp" => self.user_mlp(flag(key, value)?),
            "init" => self.init(Some(value.to_string())),
            "loss" => self.loss(match value {
                "bce" => TwoTowerLoss::Bce,
                "softmax" => TwoTowerLoss::Softmax,
                _ => {
                    return Err(Error::ModelParameter(format!(
                        "two-tower parameter `loss`: `{value}` (bce or softmax)"
                    )))
                }
            }),
            "pooling" => self.pooling(match value {
                "mean" => Pooling::Mean,
                "attention" | "attn" => Pooling::Attention,
                _ => {
                    return Err(Error::ModelParameter(format!(
                        "two-tower parameter `pooling`: `{value}` (mean or attention)"
                    )))
                }
            }),
            _ => {
                return Err(Error::ModelParameter(format!(
                    "unknown two-tower parameter `{key}` (dim, hidden, epochs, batch, lr, wd, neg, uniform, targets, \
                     history, patience, validation, seed, ids, categorical, popularity, user_mlp, loss, pooling, init)"
                )))
            }
        })
    }

    /// Validates into a config.
    pub fn build(self) -> Result<TwoTowerConfig> {
        let c = self.0;
        let bad =
            |name: &'static str, value: String, rule: &'static str| Err(Error::InvalidParameter { name, value, rule });
        if c.dim == 0 || c.hidden == 0 {
            return bad("dim/hidden", format!("{}/{}", c.dim, c.hidden), "must be positive");
        }
        if c.batch < 2 {
            return bad("batch", c.batch.to_string(), "must be at least 2");
        }
        if (c.epochs == 0 && c.init.is_none()) || c.max_history == 0 || c.targets_per_user == 0 {
            return bad(
                "epochs/max_history/targets_per_user",
                format!("{}/{}/{}", c.epochs, c.max_history, c.targets_per_user),
                "must be positive (epochs may be 0 with init weights)",
            );
        }
        if c.loss == TwoTowerLoss::Bce && c.negatives == 0 {
            return bad("negatives", "0".into(), "BCE needs at least one negative");
        }
        if !(c.learning_rate > 0.0 && c.learning_rate.is_finite()) || c.weight_decay < 0.0 {
            return bad("learning_rate", c.learning_rate.to_string(), "must be positive (weight decay ≥ 0)");
        }
        if !(0.0..0.5).contains(&c.validation_share) {
            return bad("validation_share", c.validation_share.to_string(), "must be in [0, 0.5)");
        }
        Ok(c)
    }
}

impl TwoTowerConfig {
    /// The model's display name: the variant and every setting that differs from the defaults.
    pub(super) fn model_name(&self) -> String {
        let c = self;
        let loss = match c.loss {
            TwoTowerLoss::Bce => "bce",
            TwoTowerLoss::Softmax => "softmax",
        };
        let mut parts = vec![loss.to_string()];
        if c.pooling == Pooling::Attention {
            parts.push("attention".into());
        }
        match c.id_embedding {
            Some(true) => parts.push("ids".into()),
            Some(false) => parts.push("no ids".into()),
            None => {}
        }
        parts.push(format!("d {}", c.dim));
        // every other setting that differs from the defaults
        if let Ok(d) = TwoTowerConfig::builder().build() {
            let mut differs = |name: &str, a: String, b: String| {
                if a != b {
                    parts.push(format!("{name} {a}"));
                }
            };
            differs("hidden", c.hidden.to_string(), d.hidden.to_string());
            if c.loss == TwoTowerLoss::Bce {
                differs("neg", c.negatives.to_string(), d.negatives.to_string());
            }
            differs("uniform", c.uniform_negatives.to_string(), d.uniform_negatives.to_string());
            differs("targets", c.targets_per_user.to_string(), d.targets_per_user.to_string());
            differs("batch", c.batch.to_string(), d.batch.to_string());
            differs("lr", c.learning_rate.to_string(), d.learning_rate.to_string());
            differs("wd", c.weight_decay.to_string(), d.weight_decay.to_string());
            differs("history", c.max_history.to_string(), d.max_history.to_string());
            differs("categorical", c.categorical.to_string(), d.categorical.to_string());
            differs("popularity", c.popularity_feature.to_string(), d.popularity_feature.to_string());
            differs("user_mlp", c.user_mlp.to_string(), d.user_mlp.to_string());
        }
        if let Some(path) = &c.init {
            parts.push(format!("init {path}"));
        }
        format!("two-tower({}, ≤{} epochs)", parts.join(", "), c.epochs)
    }
}
