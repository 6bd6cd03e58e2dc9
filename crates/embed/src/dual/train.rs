//! Training a dual encoder: pairs, retrieval metrics on held-out pairs, options, the epoch loop
//! with its events and report.

use super::*;

/// Image–text pairs to train on: prepared images (`n × height × width × 3` bytes) and
/// frozen text vectors (`n × text_dim`).
#[derive(Debug, Clone, Default)]
pub struct PairSet {
    /// Image bytes.
    pub pixels: Vec<u8>,
    /// Text vectors.
    pub text: Vec<f32>,
    /// Number of pairs.
    pub n: usize,
}

impl PairSet {
    fn gather(
        &self,
        idx: &[usize],
        img_len: usize,
        text_dim: usize,
        flips: Option<&mut Rng>,
        width: usize,
    ) -> (Vec<u8>, Vec<f32>) {
        let mut px = Vec::with_capacity(idx.len() * img_len);
        let mut tx = Vec::with_capacity(idx.len() * text_dim);
        let mut flips = flips;
        for &i in idx {
            let src = &self.pixels[i * img_len..(i + 1) * img_len];
            let flip = flips.as_mut().is_some_and(|r| r.below(2) == 1);
            if flip {
                // mirror each row
                for row in src.chunks_exact(width * 3) {
                    for x in (0..width).rev() {
                        px.extend_from_slice(&row[x * 3..x * 3 + 3]);
                    }
                }
            } else {
                px.extend_from_slice(src);
            }
            tx.extend_from_slice(&self.text[i * text_dim..(i + 1) * text_dim]);
        }
        (px, tx)
    }
}

/// Recall at 1 and 10 of one retrieval direction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Recall {
    /// Share of queries whose match ranks first.
    #[serde(rename = "recall@1")]
    pub at1: f64,
    /// Share of queries whose match is in the top 10.
    #[serde(rename = "recall@10")]
    pub at10: f64,
}

/// Retrieval scores on a pool of matching pairs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Retrieval {
    /// Pool size.
    pub pool: usize,
    /// Titles as queries, images ranked.
    pub text_to_image: Recall,
    /// Images as queries, titles ranked.
    pub image_to_text: Recall,
}

impl Retrieval {
    /// Expected scores of a random ranking of a pool of `pool`.
    pub fn random(pool: usize) -> Retrieval {
        let r = |k: usize| (k.min(pool) as f64) / pool.max(1) as f64;
        let recall = Recall { at1: r(1), at10: r(10) };
        Retrieval { pool, text_to_image: recall, image_to_text: recall }
    }

    /// Scores of L2-normalised `image` and `text` rows (`pool × dim` each, row `i` of one
    /// matching row `i` of the other). The rank of a match counts the candidates scoring
    /// strictly higher, so ties do not help.
    pub fn of(image: &[f32], text: &[f32], dim: usize) -> Retrieval {
        let pool = image.len() / dim.max(1);
        let dot = |a: usize, b: usize| -> f32 {
            image[a * dim..(a + 1) * dim].iter().zip(&text[b * dim..(b + 1) * dim]).map(|(x, y)| x * y).sum()
        };
        let sims: Vec<f32> = (0..pool * pool).map(|k| dot(k / pool, k % pool)).collect(); // [image][text]
        let (mut t2i, mut i2t) = ([0usize; 2], [0usize; 2]);
        for q in 0..pool {
            let target = sims[q * pool + q];
            let rank_t2i = (0..pool).filter(|&i| sims[i * pool + q] > target).count();
            let rank_i2t = (0..pool).filter(|&t| sims[q * pool + t] > target).count();
            for (acc, rank) in [(&mut t2i, rank_t2i), (&mut i2t, rank_i2t)] {
                acc[0] += usize::from(rank < 1);
                acc[1] += usize::from(rank < 10);
            }
        }
        let r = |c: usize| c as f64 / pool.max(1) as f64;
        Retrieval {
            pool,
            text_to_image: Recall { at1: r(t2i[0]), at10: r(t2i[1]) },
            image_to_text: Recall { at1: r(i2t[0]), at10: r(i2t[1]) },
        }
    }
}

/// Training settings (checked by [`TrainOptions::validate`]).
#[derive(Debug, Clone, PartialEq)]
pub struct TrainOptions {
    /// Passes over the training pairs.
    pub epochs: usize,
    /// Pairs per step (the in-batch negatives).
    pub batch: usize,
    /// Peak learning rate of AdamW (linear warm-up, cosine decay).
    pub learning_rate: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
    /// Pairs held out for the retrieval scores.
    pub held_out: usize,
    /// Mirror training images at random.
    pub flip: bool,
    /// Seed of initialisation, split, order and augmentation.
    pub seed: u64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            epochs: 8,
            batch: 256,
            learning_rate: 2e-3,
            weight_decay: 1e-4,
            held_out: 1000,
            flip: true,
            seed: 42,
        }
    }
}

impl TrainOptions {
    /// Checks the settings against `n` pairs.
    pub fn validate(self, n: usize) -> Result<TrainOptions> {
        if self.epochs == 0 || self.batch < 2 {
            return Err(Error::Config("epochs must be positive and batch at least 2".into()));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) || self.weight_decay < 0.0 {
            return Err(Error::Config("learning rate must be positive, weight decay not negative".into()));
        }
        if self.held_out < 2 || n < self.held_out + 2 {
            return Err(Error::Config(format!(
                "{n} pairs cannot hold out {} (at least 2) and still train",
                self.held_out
            )));
        }
        Ok(self)
    }
}

/// What happened in one epoch.
#[derive(Debug, Clone, Serialize)]
pub struct EpochReport {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f64,
    /// InfoNCE on the held-out pairs.
    pub held_out_loss: f64,
    /// Held-out retrieval.
    pub retrieval: Retrieval,
    /// Temperature after the epoch.
    pub temperature: f32,
    /// Wall-clock seconds of training (not evaluation).
    pub seconds: f64,
}

/// Progress events of [`DualTrainer::train`].
#[derive(Debug, Clone)]
pub enum TrainEvent {
    /// A step finished with this loss.
    Step {
        /// Epoch (1-based).
        epoch: usize,
        /// Loss of the step.
        loss: f32,
    },
    /// An epoch finished.
    Epoch(EpochReport),
}

/// The result of training.
#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    /// Pairs trained on.
    pub train_pairs: usize,
    /// Pairs held out.
    pub held_out_pairs: usize,
    /// Loss of every step.
    pub step_losses: Vec<f32>,
    /// Per epoch.
    pub epochs: Vec<EpochReport>,
    /// Held-out retrieval before training.
    pub initial: Retrieval,
    /// Expected retrieval of a random ranking.
    pub random: Retrieval,
    /// Training pairs per second (all epochs).
    pub pairs_per_second: f64,
}

/// A dual encoder with trainable weights.
pub struct DualTrainer {
    model: DualModel,
    varmap: VarMap,
}

impl DualTrainer {
    /// A fresh model of `config`, initialised from `seed` (He-normal weights, zero biases,
    /// temperature 0.07 like CLIP).
    pub fn new(config: DualConfig, seed: u64) -> Result<DualTrainer> {
        DualTrainer::with_clip(config, seed, None)
    }

    /// Like [`new`](Self::new) for a CLIP tower, starting from the vision transformer and
    /// visual projection of the CLIP checkpoint in `clip_dir` (fine-tuning).
    pub fn from_clip(config: DualConfig, clip_dir: &Path, seed: u64) -> Result<DualTrainer> {
        DualTrainer::with_clip(config, seed, Some(clip_dir))
    }

    fn with_clip(config: DualConfig, seed: u64, clip_dir: Option<&Path>) -> Result<DualTrainer> {
        let config = config.validate()?;
        let device = Device::Cpu;
        let varmap = VarMap::new();
        {
            let mut vars = varmap.data().lock().map_err(|_| Error::Config("poisoned variable map".into()))?;
            let mut rng = Rng::new(seed);
            for (name, shape, std) in config.param_specs() {
                let len: usize = shape.iter().product();
                let values: Vec<f32> = if name == "logit_scale" {
                    vec![(1.0f32 / 0.07).ln()]
                } else {
                    (0..len).map(|_| rng.normal_f32() * std).collect()
                };
                vars.insert(name, Var::from_tensor(&Tensor::from_vec(values, shape, &device)?)?);
            }
            if config.tower == TowerKind::Clip {
                let dir =
                    clip_dir.ok_or_else(|| Error::Config("a CLIP tower needs a checkpoint to start from".into()))?;
                let weights = dir.join("model.safetensors");
                let tensors = candle_core::safetensors::load(&weights, &device)
                    .map_err(|e| Error::Checkpoint { path: weights.clone(), message: e.to_string() })?;
                for name in crate::clip::REQUIRED {
                    if !tensors.contains_key(*name) {
                        return Err(Error::Checkpoint { path: weights, message: format!("missing tensor {name}") });
                    }
                }
                for (name, t) in tensors {
                    if name.starts_with("vision_model.") || name.starts_with("visual_projection.") {
                        vars.insert(format!("clip.{name}"), Var::from_tensor(&t.to_dtype(DType::F32)?)?);
                    }
                }
            }
        }
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
        let model = DualModel::build(config, &vb)?;
        Ok(DualTrainer { model, varmap })
    }

    /// The model being trained.
    pub fn model(&self) -> &DualModel {
        &self.model
    }

    /// Writes `config.json` and `model.safetensors` into `dir`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let io = |path: &Path, e: String| Error::ModelFile { path: path.into(), message: e };
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e.to_string()))?;
        let cfg = dir.join("config.json");
        let text = serde_json::to_string_pretty(&self.model.config).map_err(|e| io(&cfg, e.to_string()))?;
        // whole files, renamed into place: a reader may have the old weights memory-mapped
        replace_file(&cfg, |tmp| std::fs::write(tmp, &text)).map_err(|e| io(&cfg, e.to_string()))?;
        let weights = dir.join("model.safetensors");
        replace_file(&weights, |tmp| self.varmap.save(tmp).map_err(std::io::Error::other))
            .map_err(|e| io(&weights, e.to_string()))
    }

    fn evaluate(&self, data: &PairSet, idx: &[usize]) -> Result<(f64, Retrieval)> {
        let cfg = &self.model.config;
        let img_len = cfg.image_height * cfg.image_width * 3;
        let (mut imgs, mut txts) = (Vec::new(), Vec::new());
        for chunk in idx.chunks(256) {
            let (px, tx) = data.gather(chunk, img_len, cfg.text_dim, None, cfg.image_width);
            imgs.extend(self.model.embed_pixels(&px, chunk.len())?.flatten_all()?.to_vec1::<f32>()?);
            txts.extend(self.model.embed_text_vectors(&tx, chunk.len())?.flatten_all()?.to_vec1::<f32>()?);
        }
        let n = idx.len();
        let d = cfg.dim;
        let img = Tensor::from_vec(imgs.clone(), (n, d), &self.model.device)?;
        let txt = Tensor::from_vec(txts.clone(), (n, d), &self.model.device)?;
        let loss = info_nce(&img, &txt, &self.model.logit_scale.clamp(0.0, MAX_LOGIT_SCALE)?)?.to_scalar::<f32>()?;
        Ok((loss as f64, Retrieval::of(&imgs, &txts, d)))
    }

    /// Trains on `data`, holding out `opts.held_out` pairs (chosen with the seed) for the
    /// retrieval scores after every epoch; `on_event` sees every step and epoch.
    pub fn train(
        &mut self,
        data: &PairSet,
        opts: TrainOptions,
        mut on_event: impl FnMut(&TrainEvent),
    ) -> Result<TrainReport> {
        let opts = opts.validate(data.n)?;
        let cfg = self.model.config.clone();
        let img_len = cfg.image_height * cfg.image_width * 3;
        if data.pixels.len() != data.n * img_len || data.text.len() != data.n * cfg.text_dim {
            return Err(Error::Config(format!(
                "pairs do not match the model: {} image bytes and {} text values for {} pairs of {}×{}×3 and {}",
                data.pixels.len(),
                data.text.len(),
                data.n,
                cfg.image_height,
                cfg.image_width,
                cfg.text_dim
            )));
        }
        let mut rng = Rng::new(opts.seed ^ 0x5eed);
        let mut order: Vec<usize> = (0..data.n).collect();
        rng.shuffle(&mut order);
        let held: Vec<usize> = order[..opts.held_out].to_vec();
        let mut train: Vec<usize> = order[opts.held_out..].to_vec();
        let (_, initial) = self.evaluate(data, &held)?;
        let steps_per_epoch = train.len().div_ceil(opts.batch);
        let total = steps_per_epoch * opts.epochs;
        let warmup = (total / 20).max(1);
        let mut opt = candle_nn::AdamW::new(
            self.varmap.all_vars(),
            candle_nn::ParamsAdamW { lr: opts.learning_rate, weight_decay: opts.weight_decay, ..Default::default() },
        )?;
        let mut report = TrainReport {
            train_pairs: train.len(),
            held_out_pairs: held.len(),
            step_losses: Vec::with_capacity(total),
            epochs: Vec::new(),
            initial,
            random: Retrieval::random(held.len()),
            pairs_per_second: 0.0,
        };
        let mut step = 0usize;
        let mut train_secs = 0.0;
        for epoch in 1..=opts.epochs {
            let started = std::time::Instant::now();
            rng.shuffle(&mut train);
            let mut sum = 0.0f64;
            let mut count = 0usize;
            for chunk in train.chunks(opts.batch) {
                if chunk.len() < 2 {
                    continue;
                }
                opt.set_learning_rate(warmstart_core::schedule::warmup_cosine(step, warmup, total, opts.learning_rate));
                let flips = opts.flip.then_some(&mut rng);
                let (px, tx) = data.gather(chunk, img_len, cfg.text_dim, flips, cfg.image_width);
                let loss = self.model.batch_loss(&px, &tx, chunk.len())?;
                opt.backward_step(&loss)?;
                let l = loss.to_scalar::<f32>()?;
                if !l.is_finite() {
                    return Err(Error::Config(format!("training diverged at step {step} (loss {l})")));
                }
                report.step_losses.push(l);
                sum += l as f64;
                count += 1;
                step += 1;
                on_event(&TrainEvent::Step { epoch, loss: l });
            }
            let seconds = started.elapsed().as_secs_f64();
            train_secs += seconds;
            let (held_out_loss, retrieval) = self.evaluate(data, &held)?;
            let e = EpochReport {
                epoch,
                train_loss: sum / count.max(1) as f64,
                held_out_loss,
                retrieval,
                temperature: self.model.temperature()?,
                seconds,
            };
            on_event(&TrainEvent::Epoch(e.clone()));
            report.epochs.push(e);
        }
        report.pairs_per_second = (report.train_pairs * opts.epochs) as f64 / train_secs.max(1e-9);
        Ok(report)
    }
}
