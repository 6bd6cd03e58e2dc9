//! Training the two-tower model: the plan (features, users, sampling probabilities), the
//! cold-start-shaped examples and the epoch loop.

use candle_core::{DType, Device};
use candle_nn::{Optimizer, VarBuilder};
use warmstart_core::{ItemId, Rng};

use super::{ItemFeatures, Shape, Trained, TwoTower, TwoTowerConfig, TwoTowerEpoch, TwoTowerExport, EMB, ID_DIM};
use crate::nn::{candle, content_tensor, seeded_varmap, EarlyStopping, FusedAdamW};
use crate::{Error, Result, TrainData};

/// What training needs besides the weights: features, users, sampling probabilities.
pub(super) struct Plan {
    features: ItemFeatures,
    content_dim: usize,
    id_embedding: bool,
    train_users: Vec<usize>,
    validation: Vec<usize>,
    logq: Vec<f32>,
    steps_per_epoch: usize,
}

/// One training example: a target item and the pooled history's items and weights.
pub(super) struct Example {
    pub(super) target: ItemId,
    pub(super) history: Vec<(ItemId, f32)>,
}

/// Warm-up steps of the learning-rate schedule: the first 5% of the steps.
pub(super) fn warmup_steps(total_steps: usize) -> usize {
    (total_steps / 20).max(1)
}

/// Initial logit scale: cosine × 10.
pub(super) const INITIAL_SCALE: f32 = std::f32::consts::LN_10;

impl TwoTowerConfig {
    fn examples(&self, data: &TrainData, users: &[usize], rng: &mut Rng) -> Vec<Example> {
        let d = data.dataset;
        let m = data.matrix;
        let mut out = Vec::with_capacity(users.len());
        for &u in users {
            let (cols, vals) = (m.row_indices(u), m.row_values(u));
            if cols.len() < 2 {
                continue;
            }
            // distinct targets: a partial shuffle of the user's items
            let n_targets = self.targets_per_user.min(cols.len());
            let mut order: Vec<usize> = (0..cols.len()).collect();
            for j in 0..n_targets {
                let k = j + rng.below(cols.len() - j);
                order.swap(j, k);
            }
            for &j in &order[..n_targets] {
                let t = cols[j];
                let site = d.site_of(t);
                let mut history: Vec<(ItemId, f32)> = cols
                    .iter()
                    .zip(vals)
                    .filter(|(c, _)| d.site_of(**c) != site)
                    .map(|(c, v)| (*c, v.max(1e-3)))
                    .collect();
                if history.is_empty() {
                    history = cols.iter().zip(vals).filter(|(c, _)| **c != t).map(|(c, v)| (*c, v.max(1e-3))).collect();
                }
                if history.len() > self.max_history {
                    rng.shuffle(&mut history);
                    history.truncate(self.max_history);
                }
                out.push(Example { target: t, history });
            }
        }
        // examples of one user are spread over the epoch
        rng.shuffle(&mut out);
        out
    }
}

impl TwoTowerConfig {
    /// Features, training and validation users, and sampling probabilities.
    fn plan(&self, data: &TrainData, rng: &mut Rng) -> Result<Plan> {
        let d = data.dataset;
        let c = self;
        let content_dim = data.item_vectors.map(|v| v.dim).unwrap_or(0);
        let id_embedding = c.id_embedding.unwrap_or(content_dim == 0);
        let mut item_counts = vec![0f32; d.n_items()];
        for &i in data.matrix.indices() {
            item_counts[i as usize] += 1.0;
        }
        let features = ItemFeatures::of(d, &item_counts);
        // users: cross-site ones can validate; everyone with 2+ items trains
        let m = data.matrix;
        let mut cross: Vec<usize> = (0..m.n_rows())
            .filter(|&u| {
                let cols = m.row_indices(u);
                cols.iter().any(|x| d.site_of(*x) != d.site_of(cols[0]))
            })
            .collect();
        rng.shuffle(&mut cross);
        let n_val = ((cross.len() as f64) * c.validation_share).round() as usize;
        let validation: Vec<usize> = cross[..n_val].to_vec();
        let held: std::collections::HashSet<usize> = validation.iter().copied().collect();
        let train_users: Vec<usize> = (0..m.n_rows()).filter(|u| !held.contains(u) && m.row_nnz(*u) >= 2).collect();
        if train_users.is_empty() {
            return Err(Error::BadData("no user with two or more interactions to train the two-tower model".into()));
        }
        // log sampling probability of each item as an in-batch target
        let mut counts = vec![0f32; d.n_items()];
        let mut n_examples = 0usize;
        for &u in &train_users {
            n_examples += c.targets_per_user.min(m.row_nnz(u));
            for &i in m.row_indices(u) {
                counts[i as usize] += 1.0;
            }
        }
        let total: f32 = counts.iter().sum::<f32>().max(1.0);
        let logq: Vec<f32> = counts.iter().map(|x| ((x + 1e-3) / total).ln()).collect();
        let steps_per_epoch = n_examples.div_ceil(c.batch);
        Ok(Plan { features, content_dim, id_embedding, train_users, validation, logq, steps_per_epoch })
    }

    /// The training data of `epochs` epochs as [`fit`](Recommender::fit) draws them (the same
    /// draws exactly when the loss samples no negatives: softmax without uniform ones).
    pub fn export(&self, data: &TrainData, epochs: usize) -> Result<TwoTowerExport> {
        let c = self;
        let mut rng = Rng::new(c.seed ^ 0x7777);
        let plan = self.plan(data, &mut rng)?;
        let epochs = (0..epochs.max(1))
            .map(|_| {
                let mut users = plan.train_users.clone();
                rng.shuffle(&mut users);
                self.examples(data, &users, &mut rng).into_iter().map(|e| (e.target, e.history)).collect()
            })
            .collect();
        let f = &plan.features;
        let columns = [&f.site, &f.category, &f.top_category, &f.brand, &f.price, &f.popularity];
        let shape = Shape {
            config: c.clone(),
            features: f.clone(),
            content_dim: plan.content_dim,
            n_items: data.dataset.n_items(),
            id_embedding: plan.id_embedding,
        };
        let total_steps = plan.steps_per_epoch * c.epochs;
        let adam = self.adam_params();
        Ok(TwoTowerExport {
            config: c.clone(),
            content: data.item_vectors.filter(|v| v.dim > 0).map(|v| v.data.clone()).unwrap_or_default(),
            content_dim: plan.content_dim,
            id_embedding: plan.id_embedding,
            features: shape
                .columns()
                .into_iter()
                .map(|i| (EMB[i].0, EMB[i].1, f.sizes[i], columns[i].clone()))
                .collect(),
            site_ranges: data.dataset.sites.iter().map(|s| s.items.clone()).collect(),
            logq: plan.logq,
            epochs,
            warmup_steps: warmup_steps(total_steps),
            total_steps,
            lr_floor: warmstart_core::schedule::WARMUP_COSINE_FLOOR,
            id_dim: ID_DIM,
            initial_scale: INITIAL_SCALE,
            adam: (adam.beta1, adam.beta2, adam.eps),
        })
    }

    fn adam_params(&self) -> candle_nn::ParamsAdamW {
        candle_nn::ParamsAdamW { lr: self.learning_rate, weight_decay: self.weight_decay, ..Default::default() }
    }

    /// Trains (early stopping on held-out cross-site users), calling `on_epoch` after every
    /// epoch.
    pub fn fit_with(&self, data: &TrainData, on_epoch: &mut dyn FnMut(&TwoTowerEpoch)) -> Result<TwoTower> {
        let d = data.dataset;
        let c = self.clone();
        let mut rng = Rng::new(c.seed ^ 0x7777);
        let Plan { features, content_dim, id_embedding, train_users, validation, logq, steps_per_epoch } =
            self.plan(data, &mut rng)?;
        let shape = Shape { config: c.clone(), features, content_dim, n_items: d.n_items(), id_embedding };
        let content = content_tensor(data.item_vectors, d.n_items())?;
        let mut varmap = seeded_varmap(&shape.specs(), c.seed, &[("scale", INITIAL_SCALE)])?;
        if let Some(path) = &c.init {
            varmap.load(path).map_err(|e| Error::BadData(format!("two-tower init weights {path}: {e}")))?;
        }
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let net = shape.build(&vb).map_err(candle)?;
        let mut model = TwoTower {
            config: c.clone(),
            trained: Trained { shape, net, varmap, content, item_vectors: Vec::new(), history: Vec::new() },
        };
        let mut opt = FusedAdamW::new(model.trained.varmap.all_vars(), self.adam_params()).map_err(candle)?;
        let total_steps = steps_per_epoch * c.epochs;
        let warmup = warmup_steps(total_steps);
        let mut step = 0usize;
        let mut stopping = EarlyStopping::new(c.patience);
        let mut history = Vec::new();
        for epoch in 0..c.epochs {
            let mut users = train_users.clone();
            rng.shuffle(&mut users);
            let examples = self.examples(data, &users, &mut rng);
            let started = std::time::Instant::now();
            let (mut sum, mut count) = (0.0f64, 0usize);
            for batch in examples.chunks(c.batch) {
                if batch.len() < 2 {
                    continue;
                }
                opt.set_learning_rate(warmstart_core::schedule::warmup_cosine(
                    step,
                    warmup,
                    total_steps,
                    c.learning_rate,
                ));
                let loss = model.loss(&model.trained, batch, &mut rng, d, &logq).map_err(candle)?;
                opt.backward_step(&loss).map_err(candle)?;
                let l = loss.to_scalar::<f32>().map_err(candle)? as f64;
                if !l.is_finite() {
                    return Err(Error::BadData(format!("two-tower training diverged at step {step}")));
                }
                sum += l;
                count += 1;
                step += 1;
            }
            let train_seconds = started.elapsed().as_secs_f64();
            // item vectors are needed per epoch only to validate; they are refreshed once at the end
            let ndcg = if validation.is_empty() {
                None
            } else {
                model.refresh_item_vectors().map_err(candle)?;
                Some(crate::cold_start_ndcg(&model, data, &validation, c.seed)?)
            };
            let report = TwoTowerEpoch {
                epoch: epoch + 1,
                loss: sum / count.max(1) as f64,
                validation_ndcg: ndcg,
                train_seconds,
                examples: examples.len(),
            };
            if stopping.end_epoch(report, &mut history, on_epoch, &model.trained.varmap)? {
                break;
            }
        }
        stopping.restore_best(&model.trained.varmap)?;
        model.trained.history = history;
        model.refresh_item_vectors().map_err(candle)?;
        Ok(model)
    }
}
