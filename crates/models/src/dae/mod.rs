//! A denoising autoencoder over whole histories with *shop dropout* (Mult-DAE, Liang et al.
//! 2018, trained for the cold start): a history goes in as an L2-normalised bag of items, one
//! tanh layer compresses it, and a softmax over every item reconstructs the whole history.
//! Training corrupts each input either by hiding one of the user's shops entirely (so the
//! network learns to fill a shop it never saw from the others, which is the cold-start
//! question) or by dropping items at random (the usual denoising). Early stopping on the
//! NDCG@10 of held-out cross-shop users, as the two-tower does.
//!
//! Training (`train`) writes the forward and backward passes out by hand around three
//! matrix products; scoring needs no tensor library either: `tanh(Σ wᵢ·W₁[i] / ‖w‖ + b₁)` and one row of `W₂` per
//! scored item.

use std::ops::Range;

use warmstart_core::{ItemId, Rng};

use crate::artifact::{expect_len, ArtifactReader, ArtifactWriter};
use crate::nn::EpochReport;
use crate::{check, cold_start_ndcg, Error, Fit, History, Recommender, Result, TrainData};

mod train;
use train::{Row, Trainer};

/// Kind of a saved autoencoder.
pub(crate) const KIND: &str = "dae";

/// Hyper-parameters of [`Dae`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DaeConfig {
    hidden: usize,
    epochs: usize,
    batch: usize,
    learning_rate: f64,
    dropout: f32,
    shop_dropout: f32,
    validation_share: f64,
    patience: usize,
    seed: u64,
}

/// Builder of [`DaeConfig`].
#[derive(Debug, Clone)]
pub struct DaeBuilder(DaeConfig);

impl DaeConfig {
    /// Starts a builder: 600 hidden units (Mult-DAE's), at most 20 epochs of batches of 256 at
    /// learning rate 0.001 (Adam), half the inputs hide one shop and the other half drop
    /// items with probability 0.5, 10% of the cross-shop users validate, patience 2.
    pub fn builder() -> DaeBuilder {
        DaeBuilder(DaeConfig {
            hidden: 600,
            epochs: 20,
            batch: 256,
            learning_rate: 1e-3,
            dropout: 0.5,
            shop_dropout: 0.5,
            validation_share: 0.1,
            patience: 2,
            seed: 42,
        })
    }

    /// The name `by_name` reads back.
    pub fn model_name(&self) -> String {
        let d = DaeConfig::builder().0;
        let mut name = "dae".to_string();
        let mut add = |key: &str, differs: bool, value: String| {
            if differs {
                name += &format!(":{key}={value}");
            }
        };
        add("hidden", self.hidden != d.hidden, self.hidden.to_string());
        add("epochs", self.epochs != d.epochs, self.epochs.to_string());
        add("batch", self.batch != d.batch, self.batch.to_string());
        add("lr", self.learning_rate != d.learning_rate, self.learning_rate.to_string());
        add("dropout", self.dropout != d.dropout, self.dropout.to_string());
        add("shop", self.shop_dropout != d.shop_dropout, self.shop_dropout.to_string());
        add("validation", self.validation_share != d.validation_share, self.validation_share.to_string());
        add("patience", self.patience != d.patience, self.patience.to_string());
        name
    }
}

impl DaeBuilder {
    /// Hidden units.
    pub fn hidden(mut self, n: usize) -> Self {
        self.0.hidden = n;
        self
    }
    /// Most epochs (early stopping may end sooner).
    pub fn epochs(mut self, n: usize) -> Self {
        self.0.epochs = n;
        self
    }
    /// Users per step.
    pub fn batch(mut self, n: usize) -> Self {
        self.0.batch = n;
        self
    }
    /// Adam's learning rate.
    pub fn learning_rate(mut self, lr: f64) -> Self {
        self.0.learning_rate = lr;
        self
    }
    /// Probability of dropping each input item (inputs that do not hide a shop).
    pub fn dropout(mut self, p: f32) -> Self {
        self.0.dropout = p;
        self
    }
    /// Share of inputs that hide one of the user's shops entirely.
    pub fn shop_dropout(mut self, p: f32) -> Self {
        self.0.shop_dropout = p;
        self
    }
    /// Share of the cross-shop users held out for early stopping (0: none, all epochs run).
    pub fn validation_share(mut self, s: f64) -> Self {
        self.0.validation_share = s;
        self
    }
    /// Epochs without a better validation score before training stops.
    pub fn patience(mut self, n: usize) -> Self {
        self.0.patience = n;
        self
    }
    /// Seed of the initial weights, the corruption and the order of users.
    pub fn seed(mut self, s: u64) -> Self {
        self.0.seed = s;
        self
    }
    /// Sets a parameter by its name in a model name (`dae:hidden=200`).
    pub fn set(self, key: &str, value: &str) -> Result<Self> {
        fn num<T: std::str::FromStr>(key: &str, value: &str) -> Result<T> {
            value.parse().map_err(|_| Error::ModelParameter(format!("dae {key} `{value}` is not a number")))
        }
        Ok(match key {
            "hidden" => self.hidden(num(key, value)?),
            "epochs" => self.epochs(num(key, value)?),
            "batch" => self.batch(num(key, value)?),
            "lr" => self.learning_rate(num(key, value)?),
            "dropout" => self.dropout(num(key, value)?),
            "shop" => self.shop_dropout(num(key, value)?),
            "validation" => self.validation_share(num(key, value)?),
            "patience" => self.patience(num(key, value)?),
            "seed" => self.seed(num(key, value)?),
            other => return Err(Error::ModelParameter(format!("dae has no parameter `{other}`"))),
        })
    }
    /// Validates.
    pub fn build(self) -> Result<DaeConfig> {
        let c = self.0;
        check("hidden", (1..=4096).contains(&c.hidden), c.hidden, "must be 1 to 4096")?;
        check("epochs", (1..=1000).contains(&c.epochs), c.epochs, "must be 1 to 1000")?;
        check("batch", (1..=65_536).contains(&c.batch), c.batch, "must be 1 to 65536")?;
        check("learning_rate", c.learning_rate > 0.0 && c.learning_rate < 1.0, c.learning_rate, "must be in (0, 1)")?;
        check("dropout", (0.0..1.0).contains(&c.dropout), c.dropout, "must be in [0, 1)")?;
        check("shop_dropout", (0.0..=1.0).contains(&c.shop_dropout), c.shop_dropout, "must be in [0, 1]")?;
        check("validation_share", (0.0..0.5).contains(&c.validation_share), c.validation_share, "must be in [0, 0.5)")?;
        Ok(c)
    }
}

/// Fitted autoencoder: the encoder's item rows and the decoder's, as plain arrays.
#[derive(Debug, Clone)]
pub struct Dae {
    config: DaeConfig,
    n_items: usize,
    /// `n_items × hidden`: item `i`'s encoder row.
    encoder: Vec<f32>,
    encoder_bias: Vec<f32>,
    /// `hidden × n_items`: unit `k`'s weight on every item.
    decoder: Vec<f32>,
    decoder_bias: Vec<f32>,
    epochs: Vec<EpochReport>,
}

/// A history's input: items and their L2-normalised weights.
fn normalised(items: impl Iterator<Item = (u32, f32)>) -> Vec<(u32, f32)> {
    let v: Vec<(u32, f32)> = items.filter(|x| x.1 > 0.0).collect();
    let norm = v.iter().map(|x| x.1 * x.1).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.into_iter().map(|(i, w)| (i, w / norm)).collect()
    } else {
        v
    }
}

impl DaeConfig {
    /// Trains, calling `on_epoch` after every epoch.
    pub fn fit_with(&self, data: &TrainData, on_epoch: &mut dyn FnMut(&EpochReport)) -> Result<Dae> {
        let c = self;
        let d = data.dataset;
        let m = data.matrix;
        let n = m.n_cols();
        if n == 0 || m.nnz() == 0 {
            return Err(Error::BadData("the autoencoder needs interactions to train on".into()));
        }
        // items the dataset does not describe count as one shop (a bare matrix: no shop dropout)
        let site_of = |i: u32| if (i as usize) < d.products.len() { d.site_of(i) } else { 0 };
        let shops_of = |u: usize| {
            let mut s: Vec<u32> = m.row_indices(u).iter().map(|&i| site_of(i)).collect();
            s.sort_unstable();
            s.dedup();
            s
        };
        let mut rng = Rng::new(c.seed ^ 0xDAE);
        let mut cross: Vec<usize> = (0..m.n_rows()).filter(|&u| shops_of(u).len() >= 2).collect();
        rng.shuffle(&mut cross);
        let validation: Vec<usize> = cross[..((cross.len() as f64) * c.validation_share).round() as usize].to_vec();
        let held: std::collections::HashSet<usize> = validation.iter().copied().collect();
        let train: Vec<usize> = (0..m.n_rows()).filter(|u| !held.contains(u) && m.row_nnz(*u) > 0).collect();

        // PyTorch's default initialisation of a linear layer (uniform, ±1/√fan-in), seeded
        let h = c.hidden;
        let mut init = Rng::new(c.seed);
        let mut uniform = |len: usize, fan_in: usize| -> Vec<f32> {
            let bound = 1.0 / (fan_in as f32).sqrt();
            (0..len).map(|_| (2.0 * init.unit_f32() - 1.0) * bound).collect()
        };
        let params = [uniform(n * h, n), uniform(h, n), uniform(h * n, h), uniform(n, h)];
        let mut trainer = Trainer::new(params, n, h, c.learning_rate as f32);
        let mut history: Vec<EpochReport> = Vec::new();
        // the best validated epoch's model (its weights copied once, when it is validated)
        let mut best: Option<(f64, Dae)> = None;
        let mut since_best = 0;
        for epoch in 0..c.epochs {
            let mut users = train.clone();
            rng.shuffle(&mut users);
            let started = std::time::Instant::now();
            let (mut sum, mut steps) = (0.0f64, 0usize);
            for batch in users.chunks(c.batch) {
                let rows: Vec<Row> = batch
                    .iter()
                    .map(|&u| {
                        let items: Vec<(u32, f32)> =
                            m.row_indices(u).iter().zip(m.row_values(u)).map(|(&i, &v)| (i, v.max(0.0))).collect();
                        let shops = shops_of(u);
                        let hide = (shops.len() >= 2 && rng.unit_f32() < c.shop_dropout)
                            .then(|| shops[rng.below(shops.len())]);
                        let kept: Vec<(u32, f32)> = items
                            .iter()
                            .copied()
                            .filter(|&(i, _)| match hide {
                                Some(s) => site_of(i) != s,
                                None => rng.unit_f32() >= c.dropout,
                            })
                            .collect();
                        (normalised(kept.into_iter()), items)
                    })
                    .collect();
                let l = trainer.step(&rows);
                if !l.is_finite() {
                    return Err(Error::BadData(format!("autoencoder training diverged in epoch {}", epoch + 1)));
                }
                sum += l;
                steps += 1;
            }
            let train_seconds = started.elapsed().as_secs_f64();
            let mut stop = false;
            let validation_ndcg = if validation.is_empty() {
                None
            } else {
                let candidate = Dae::from_params(c.clone(), n, trainer.params.clone());
                let v = cold_start_ndcg(&candidate, data, &validation, c.seed)?;
                if best.as_ref().is_none_or(|b| v > b.0) {
                    best = Some((v, candidate));
                    since_best = 0;
                } else {
                    since_best += 1;
                    stop = since_best > c.patience;
                }
                Some(v)
            };
            let report = EpochReport {
                epoch: epoch + 1,
                loss: sum / steps.max(1) as f64,
                validation_ndcg,
                train_seconds,
                examples: users.len(),
            };
            on_epoch(&report);
            history.push(report);
            if stop {
                break;
            }
        }
        let mut model = match best {
            Some((_, model)) => model,
            None => Dae::from_params(c.clone(), n, trainer.params),
        };
        model.epochs = history;
        Ok(model)
    }
}

impl Fit for DaeConfig {
    fn name(&self) -> String {
        self.model_name()
    }

    fn fit(&self, data: &TrainData) -> Result<Box<dyn Recommender>> {
        Ok(Box::new(self.fit_with(data, &mut |_| {})?))
    }
}

impl Dae {
    fn from_params(config: DaeConfig, n_items: usize, params: [Vec<f32>; 4]) -> Dae {
        let [encoder, encoder_bias, decoder, decoder_bias] = params;
        Dae { config, n_items, encoder, encoder_bias, decoder, decoder_bias, epochs: Vec::new() }
    }

    /// The epochs training ran (loss, validation NDCG@10, seconds).
    pub fn epochs(&self) -> &[EpochReport] {
        &self.epochs
    }

    /// The hidden layer for a history.
    fn encode(&self, history: &History) -> Vec<f32> {
        let h = self.encoder_bias.len();
        let mut out = self.encoder_bias.clone();
        for (i, w) in normalised(history.iter().copied()) {
            let row = &self.encoder[i as usize * h..(i as usize + 1) * h];
            for (o, x) in out.iter_mut().zip(row) {
                *o += w * x;
            }
        }
        out.iter_mut().for_each(|x| *x = x.tanh());
        out
    }

    pub(crate) fn load(r: &ArtifactReader) -> Result<Dae> {
        let config: DaeConfig = r.config()?;
        let (_, encoder) = r.f32("encoder")?;
        let (_, encoder_bias) = r.f32("encoder_bias")?;
        let (_, decoder) = r.f32("decoder")?;
        let (_, decoder_bias) = r.f32("decoder_bias")?;
        let (n, h) = (decoder_bias.len(), encoder_bias.len());
        expect_len(r, "encoder", encoder.len(), n * h)?;
        expect_len(r, "decoder", decoder.len(), n * h)?;
        if [&encoder, &encoder_bias, &decoder, &decoder_bias].iter().any(|v| v.iter().any(|x| !x.is_finite())) {
            return Err(r.error("a weight is not finite"));
        }
        Ok(Dae { config, n_items: n, encoder, encoder_bias, decoder, decoder_bias, epochs: Vec::new() })
    }
}

impl Recommender for Dae {
    fn name(&self) -> String {
        self.config.model_name()
    }

    fn n_items(&self) -> usize {
        self.n_items
    }

    fn score_items(&self, history: &History, items: Range<ItemId>, out: &mut [f32]) -> Result<()> {
        let (s, e) = (items.start as usize, items.end as usize);
        out.copy_from_slice(&self.decoder_bias[s..e]);
        for (k, hk) in self.encode(history).into_iter().enumerate() {
            let row = &self.decoder[k * self.n_items + s..k * self.n_items + e];
            for (o, x) in out.iter_mut().zip(row) {
                *o += hk * x;
            }
        }
        Ok(())
    }

    fn fit_notes(&self) -> Vec<String> {
        let best = self
            .epochs
            .iter()
            .filter_map(|e| e.validation_ndcg.map(|v| (e.epoch, v)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        match best {
            Some((epoch, v)) => {
                vec![format!("kept epoch {epoch} of {} (validation NDCG@10 {v:.4})", self.epochs.len())]
            }
            None => Vec::new(),
        }
    }

    fn save(&self, dir: &std::path::Path) -> Result<()> {
        let (n, h) = (self.n_items, self.encoder_bias.len());
        ArtifactWriter::new(KIND, &self.config)?
            .f32("encoder", &[n, h], &self.encoder)
            .f32("encoder_bias", &[h], &self.encoder_bias)
            .f32("decoder", &[h, n], &self.decoder)
            .f32("decoder_bias", &[n], &self.decoder_bias)
            .write(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warmstart_core::{CsrMatrix, Dataset, DatasetBuilder, ProductMeta};

    /// Two shops of 4 items (0–3, 4–7); half the users buy items 0 and 4, the other half 1
    /// and 6: the autoencoder must learn which item of shop b goes with which of shop a.
    fn data() -> (Dataset, CsrMatrix) {
        let mut b = DatasetBuilder::default();
        for shop in ["a", "b"] {
            let s = b.push_site(shop, shop, "d");
            for i in 0..4 {
                b.push_product(ProductMeta {
                    site: s,
                    external_id: format!("{shop}{i}"),
                    title: format!("{shop}{i}"),
                    brand: None,
                    category: vec![],
                    price_usd: None,
                    image: None,
                });
            }
        }
        for u in 0..200 {
            b.push_user(format!("u{u}"));
        }
        let d = b.finish().unwrap();
        let mut t = Vec::new();
        for u in 0..200u32 {
            if u % 2 == 0 {
                t.extend([(u, 0, 1.0), (u, 4, 1.0)]);
            } else {
                t.extend([(u, 1, 1.0), (u, 6, 1.0)]);
            }
        }
        (d, CsrMatrix::from_triplets(200, 8, &t))
    }

    #[test]
    fn learns_the_other_shop_and_round_trips() {
        let (d, m) = data();
        let config = DaeConfig::builder().hidden(8).epochs(60).batch(32).learning_rate(0.01).build().unwrap();
        let fitted = config.fit_with(&TrainData { dataset: &d, matrix: &m, item_vectors: None }, &mut |_| {}).unwrap();
        let mut out = vec![0f32; 4];
        fitted.score(&[(0, 1.0)], 4..8, &mut out).unwrap();
        assert!(out[0] > out[2] && out[0] > out[1] && out[0] > out[3], "item 4 goes with item 0: {out:?}");
        fitted.score(&[(1, 1.0)], 4..8, &mut out).unwrap();
        assert!(out[2] > out[0] && out[2] > out[1] && out[2] > out[3], "item 6 goes with item 1: {out:?}");
        assert!(fitted.epochs().iter().all(|e| e.validation_ndcg.is_some()));
        assert!(fitted.epochs().len() <= 60 && !fitted.fit_notes().is_empty());
        // saved and loaded: the same scores and name
        let dir = tempfile::tempdir().unwrap();
        fitted.save(dir.path()).unwrap();
        let back = crate::load(dir.path(), None).unwrap();
        let mut again = vec![0f32; 4];
        back.score(&[(1, 1.0)], 4..8, &mut again).unwrap();
        assert_eq!(again, out);
        assert_eq!(back.name(), "dae:hidden=8:epochs=60:batch=32:lr=0.01");
        // an unknown item is an error; bad parameters are refused
        assert!(fitted.score(&[(9, 1.0)], 4..8, &mut out).is_err());
        assert!(DaeConfig::builder().dropout(1.0).build().is_err());
        assert!(DaeConfig::builder().set("depth", "2").is_err());
    }
}
