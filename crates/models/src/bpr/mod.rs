//! BPR-MF (Rendle et al. 2009): matrix factorisation with item biases trained by SGD on
//! (user, positive, sampled negative) triples. A new user is folded in by the same SGD on
//! their vector alone, the item side fixed.

use std::ops::Range;

use warmstart_core::{CsrMatrix, ItemId, Rng};

use crate::artifact::{expect_len, ArtifactReader, ArtifactWriter};
use crate::linalg::{dot, dot_k};
use crate::simd;
use crate::{check, Fit, History, Recommender, Result, TrainData, VectorSpace};

/// Kind of a saved BPR model.
pub(crate) const KIND: &str = "bpr";

/// Hyper-parameters of [`Bpr`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BprConfig {
    /// Latent dimensions.
    pub factors: usize,
    /// SGD step.
    pub learning_rate: f32,
    /// L2 regularisation.
    pub regularization: f32,
    /// Passes over the observed pairs.
    pub epochs: usize,
    /// SGD samples per history item when folding in a user.
    pub fold_in_samples: usize,
    /// Seed.
    pub seed: u64,
    /// Training threads: 1 (the default, and what leaderboards use) is plain SGD; more train
    /// disjoint blocks of users and items in parallel (stratified SGD), deterministic for a
    /// seed and thread count (`bpr:threads=2`).
    #[serde(default = "one_thread")]
    pub threads: usize,
    /// How negatives are drawn (`bpr:negatives=popularity`).
    #[serde(default)]
    pub negatives: Negatives,
}

/// The distribution BPR draws its negative items from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Negatives {
    /// Every item alike (Rendle et al.; the default).
    #[default]
    Uniform,
    /// In proportion to the item's interactions: the item of a uniformly drawn observed pair,
    /// as implicit's BPR draws them. Popular items are then negatives as often as positives,
    /// so the model learns little popularity.
    Popularity,
}

fn one_thread() -> usize {
    1
}

/// Builder of [`BprConfig`].
#[derive(Debug, Clone)]
pub struct BprBuilder(BprConfig);

impl BprConfig {
    /// Starts a builder with defaults (64 factors, lr 0.01, λ 0.001, 30 epochs; chosen by
    /// `warmstart tune` on the Amazon Art/Office validation users).
    pub fn builder() -> BprBuilder {
        BprBuilder(BprConfig {
            factors: 64,
            learning_rate: 0.01,
            regularization: 0.001,
            epochs: 30,
            fold_in_samples: 200,
            seed: 42,
            threads: 1,
            negatives: Negatives::Uniform,
        })
    }
}

impl BprBuilder {
    /// Latent dimensions.
    pub fn factors(mut self, v: usize) -> Self {
        self.0.factors = v;
        self
    }
    /// SGD step.
    pub fn learning_rate(mut self, v: f32) -> Self {
        self.0.learning_rate = v;
        self
    }
    /// L2 regularisation.
    pub fn regularization(mut self, v: f32) -> Self {
        self.0.regularization = v;
        self
    }
    /// Epochs.
    pub fn epochs(mut self, v: usize) -> Self {
        self.0.epochs = v;
        self
    }
    /// Seed.
    pub fn seed(mut self, v: u64) -> Self {
        self.0.seed = v;
        self
    }
    /// One `key=value` of a model name (`bpr:threads=2:epochs=20`): factors, lr, reg,
    /// epochs, threads.
    pub fn set(self, key: &str, value: &str) -> Result<Self> {
        let bad = || crate::Error::ModelParameter(format!("bpr parameter `{key}`: `{value}` is not a number"));
        Ok(match key {
            "factors" => self.factors(value.parse().map_err(|_| bad())?),
            "lr" => self.learning_rate(value.parse().map_err(|_| bad())?),
            "reg" => self.regularization(value.parse().map_err(|_| bad())?),
            "epochs" => self.epochs(value.parse().map_err(|_| bad())?),
            "threads" => self.threads(value.parse().map_err(|_| bad())?),
            "negatives" => self.negatives(match value {
                "uniform" => Negatives::Uniform,
                "popularity" | "pop" => Negatives::Popularity,
                _ => {
                    return Err(crate::Error::ModelParameter(format!(
                        "bpr negatives `{value}` (uniform or popularity)"
                    )))
                }
            }),
            _ => return Err(crate::Error::ModelParameter(format!("bpr has no parameter `{key}`"))),
        })
    }
    /// Training threads (stratified parallel SGD above 1).
    pub fn threads(mut self, v: usize) -> Self {
        self.0.threads = v;
        self
    }
    /// How negatives are drawn.
    pub fn negatives(mut self, v: Negatives) -> Self {
        self.0.negatives = v;
        self
    }
    /// Validates.
    pub fn build(self) -> Result<BprConfig> {
        let c = self.0;
        check("factors", (1..=4096).contains(&c.factors), c.factors, "must be in 1..=4096")?;
        check("learning_rate", c.learning_rate > 0.0 && c.learning_rate < 10.0, c.learning_rate, "must be in (0, 10)")?;
        check(
            "regularization",
            c.regularization >= 0.0 && c.regularization.is_finite(),
            c.regularization,
            "must be >= 0",
        )?;
        check("epochs", c.epochs >= 1, c.epochs, "must be at least 1")?;
        check("fold_in_samples", c.fold_in_samples >= 1, c.fold_in_samples, "must be at least 1")?;
        check("threads", (1..=256).contains(&c.threads), c.threads, "must be in 1..=256")?;
        check(
            "threads",
            c.threads == 1 || c.negatives == Negatives::Uniform,
            c.threads,
            "must be 1 with popularity negatives (the parallel trainer draws them per item block)",
        )?;
        Ok(c)
    }
}

/// Bayesian personalised ranking matrix factorisation.
#[derive(Debug, Clone)]
pub struct Bpr {
    config: BprConfig,
    item_factors: Vec<f32>,
    item_bias: Vec<f32>,
    /// With popularity negatives: running totals of the items' training interactions (item
    /// `i` is drawn when a uniform draw below the last total falls in `[cdf[i-1], cdf[i])`).
    negative_cdf: Option<Vec<u32>>,
    /// Mean BPR loss of each epoch.
    pub epoch_loss: Vec<f32>,
    /// Wall-clock seconds of each epoch (empty for a loaded model).
    pub epoch_seconds: Vec<f64>,
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

impl Bpr {
    fn item(&self, i: usize) -> &[f32] {
        let f = self.config.factors;
        &self.item_factors[i * f..(i + 1) * f]
    }

    pub(crate) fn load(r: &ArtifactReader) -> Result<Bpr> {
        let config: BprConfig = r.config()?;
        let (shape, item_factors) = r.f32("item_factors")?;
        let (_, item_bias) = r.f32("item_bias")?;
        let f = config.factors;
        if shape.len() != 2 || shape[1] != f {
            return Err(r.error(format!("item factors of shape {shape:?} for {f} factors")));
        }
        expect_len(r, "item_factors", item_factors.len(), shape[0] * f)?;
        expect_len(r, "item_bias", item_bias.len(), shape[0])?;
        let negative_cdf = match config.negatives {
            Negatives::Uniform => None,
            Negatives::Popularity => {
                let (_, cdf) = r.u32("negative_cdf")?;
                expect_len(r, "negative_cdf", cdf.len(), shape[0])?;
                if cdf.windows(2).any(|w| w[0] > w[1]) || cdf.last() == Some(&0) {
                    return Err(r.error("negative_cdf must be non-decreasing and end above 0"));
                }
                Some(cdf)
            }
        };
        Ok(Bpr { config, item_factors, item_bias, negative_cdf, epoch_loss: Vec::new(), epoch_seconds: Vec::new() })
    }
}

impl Fit for BprConfig {
    fn name(&self) -> String {
        "bpr".into()
    }
    fn fit(&self, data: &TrainData) -> Result<Box<dyn Recommender>> {
        Ok(Box::new(self.fit_matrix(data.matrix)?))
    }
}

impl BprConfig {
    /// Trains on a user × item matrix (any positive value is an observed pair).
    pub fn fit_matrix(&self, m: &CsrMatrix) -> Result<Bpr> {
        let f = self.factors;
        let n_items = m.n_cols();
        if m.nnz() == 0 || n_items < 2 {
            return Err(crate::Error::BadData("BPR needs at least one interaction and two items".into()));
        }
        let mut rng = Rng::new(self.seed);
        let x: Vec<f32> = (0..m.n_rows() * f).map(|_| rng.normal_f32() * 0.1).collect();
        let y: Vec<f32> = (0..n_items * f).map(|_| rng.normal_f32() * 0.1).collect();
        let row_of: Vec<u32> = (0..m.n_rows()).flat_map(|u| std::iter::repeat_n(u as u32, m.row_nnz(u))).collect();
        let sampler = Sampler { m, row_of: &row_of, n_items, negatives: self.negatives };
        let mut epoch_seconds = Vec::with_capacity(self.epochs);
        let (y, b, epoch_loss) = if self.threads <= 1 {
            self.sgd(&sampler, x, y, &mut rng, &mut epoch_seconds)
        } else {
            stratified::sgd(self, m, x, y, &mut epoch_seconds)
        };
        let negative_cdf = (self.negatives == Negatives::Popularity).then(|| {
            let mut counts = vec![0u32; n_items];
            for &i in m.indices() {
                counts[i as usize] += 1;
            }
            counts
                .iter()
                .scan(0u32, |total, &c| {
                    *total = total.saturating_add(c);
                    Some(*total)
                })
                .collect()
        });
        Ok(Bpr { config: self.clone(), item_factors: y, item_bias: b, negative_cdf, epoch_loss, epoch_seconds })
    }

    /// Deterministic single-threaded SGD: `epochs × nnz` samples from one stream.
    fn sgd(
        &self,
        sampler: &Sampler<'_>,
        mut x: Vec<f32>,
        mut y: Vec<f32>,
        rng: &mut Rng,
        seconds: &mut Vec<f64>,
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let (f, lr, reg) = (self.factors, self.learning_rate, self.regularization);
        let mut b = vec![0f32; sampler.n_items];
        let (mut xu, mut yi, mut yj) = (vec![0f32; f], vec![0f32; f], vec![0f32; f]);
        let mut epoch_loss = Vec::new();
        for _ in 0..self.epochs {
            let started = std::time::Instant::now();
            let mut loss = SampledLoss::default();
            for s in 0..sampler.m.nnz() {
                let Some((u, i, j)) = sampler.draw(rng) else { continue };
                xu.copy_from_slice(&x[u * f..(u + 1) * f]);
                yi.copy_from_slice(&y[i * f..(i + 1) * f]);
                yj.copy_from_slice(&y[j * f..(j + 1) * f]);
                let step = SgdStep { lr, reg, bias_diff: b[i] - b[j] };
                let z = simd!(
                    step.apply::<true>(&mut xu, &mut yi, &mut yj),
                    step.apply::<false>(&mut xu, &mut yi, &mut yj)
                );
                loss.add(s, z);
                x[u * f..(u + 1) * f].copy_from_slice(&xu);
                y[i * f..(i + 1) * f].copy_from_slice(&yi);
                y[j * f..(j + 1) * f].copy_from_slice(&yj);
                b[i] += lr * (z - reg * b[i]);
                b[j] += lr * (-z - reg * b[j]);
            }
            epoch_loss.push(loss.mean());
            seconds.push(started.elapsed().as_secs_f64());
        }
        (y, b, epoch_loss)
    }
}

/// Draws (user, positive, negative) triples: a uniformly drawn observed pair and an item the
/// user has not interacted with (uniform, or the item of another drawn pair).
struct Sampler<'a> {
    m: &'a CsrMatrix,
    row_of: &'a [u32],
    n_items: usize,
    negatives: Negatives,
}

/// Draws a negative outside `own` (sorted): up to this many tries with popularity negatives
/// (a user may hold every item that has interactions).
const NEGATIVE_TRIES: usize = 64;

impl Sampler<'_> {
    #[inline]
    fn draw(&self, rng: &mut Rng) -> Option<(usize, usize, usize)> {
        let k = rng.below(self.m.nnz());
        let u = self.row_of[k] as usize;
        let i = self.m.indices()[k] as usize;
        let own = self.m.row_indices(u);
        if own.len() >= self.n_items {
            return None;
        }
        let j = match self.negatives {
            Negatives::Uniform => loop {
                let j = rng.below(self.n_items);
                if own.binary_search(&(j as u32)).is_err() {
                    break j;
                }
            },
            Negatives::Popularity => (0..NEGATIVE_TRIES)
                .map(|_| self.m.indices()[rng.below(self.m.nnz())] as usize)
                .find(|&j| own.binary_search(&(j as u32)).is_err())?,
        };
        Some((u, i, j))
    }
}

/// `-ln σ(x_uij)` on every 16th sample.
#[derive(Default)]
struct SampledLoss {
    sum: f64,
    n: usize,
}

impl SampledLoss {
    #[inline]
    fn add(&mut self, s: usize, z: f32) {
        if s.is_multiple_of(16) {
            self.sum += -(1.0 - z as f64).max(1e-12).ln();
            self.n += 1;
        }
    }
    fn mean(&self) -> f32 {
        (self.sum / self.n.max(1) as f64) as f32
    }
}

mod stratified;

impl Bpr {
    /// SGD on the user vector alone, items fixed; deterministic for a given history.
    pub fn fold_in(&self, history: &History) -> Result<Vec<f32>> {
        let (f, lr, reg) = (self.config.factors, self.config.learning_rate, self.config.regularization);
        let n_items = self.item_bias.len();
        let pos: Vec<usize> = history.iter().map(|h| h.0 as usize).filter(|&i| i < n_items).collect();
        let mut xu = vec![0f32; f];
        if pos.is_empty() {
            return Ok(xu);
        }
        let mut sorted = pos.clone();
        sorted.sort_unstable();
        let seed = pos.iter().fold(self.config.seed, |h, &i| h.rotate_left(7) ^ i as u64);
        let mut rng = Rng::new(seed);
        for _ in 0..self.config.fold_in_samples * pos.len() {
            let i = pos[rng.below(pos.len())];
            let j = match &self.negative_cdf {
                None => rng.below(n_items),
                Some(cdf) => {
                    let total = cdf.last().copied().unwrap_or(0) as usize;
                    let x = rng.below(total.max(1)) as u32;
                    cdf.partition_point(|&c| c <= x).min(n_items - 1)
                }
            };
            if sorted.binary_search(&j).is_ok() {
                continue;
            }
            let (yi, yj) = (self.item(i), self.item(j));
            let z = sigmoid(-(self.item_bias[i] - self.item_bias[j] + dot(&xu, yi) - dot(&xu, yj)));
            for d in 0..f {
                xu[d] += lr * (z * (yi[d] - yj[d]) - reg * xu[d]);
            }
        }
        Ok(xu)
    }
}

/// One SGD step on a (user, positive, negative) triple; returns `z = σ(-x_uij)`.
struct SgdStep {
    lr: f32,
    reg: f32,
    bias_diff: f32,
}

impl SgdStep {
    #[inline(always)]
    fn apply<const FMA: bool>(&self, xu: &mut [f32], yi: &mut [f32], yj: &mut [f32]) -> f32 {
        let diff = self.bias_diff + dot_k::<FMA>(xu, yi) - dot_k::<FMA>(xu, yj);
        let z = sigmoid(-diff);
        let (lr, reg) = (self.lr, self.reg);
        for d in 0..xu.len() {
            let (x, a, b) = (xu[d], yi[d], yj[d]);
            xu[d] = x + lr * (z * (a - b) - reg * x);
            yi[d] = a + lr * (z * x - reg * a);
            yj[d] = b + lr * (-z * x - reg * b);
        }
        z
    }
}

impl Recommender for Bpr {
    fn name(&self) -> String {
        "bpr".into()
    }

    fn n_items(&self) -> usize {
        self.item_bias.len()
    }

    fn score_items(&self, history: &History, items: Range<ItemId>, out: &mut [f32]) -> Result<()> {
        let xu = self.fold_in(history)?;
        for (o, i) in out.iter_mut().zip(items) {
            *o = self.item_bias[i as usize] + dot(&xu, self.item(i as usize));
        }
        Ok(())
    }

    fn score_ids(&self, history: &History, ids: &[ItemId], out: &mut [f32]) -> Result<()> {
        crate::check_ids(self, history, ids, out)?;
        let xu = self.fold_in(history)?;
        for (o, &i) in out.iter_mut().zip(ids) {
            *o = self.item_bias[i as usize] + dot(&xu, self.item(i as usize));
        }
        Ok(())
    }

    fn save(&self, dir: &std::path::Path) -> Result<()> {
        let f = self.config.factors;
        let mut w = ArtifactWriter::new(KIND, &self.config)?
            .f32("item_factors", &[self.item_bias.len(), f], &self.item_factors)
            .f32("item_bias", &[self.item_bias.len()], &self.item_bias);
        if let Some(cdf) = &self.negative_cdf {
            w = w.u32("negative_cdf", &[cdf.len()], cdf);
        }
        w.write(dir)
    }

    fn space(&self) -> Option<&dyn VectorSpace> {
        Some(self)
    }
}

/// Inner-product space of BPR with the bias folded in: items `[y_i, b_i]`, users `[x_u, 1]`.
impl VectorSpace for Bpr {
    fn dim(&self) -> usize {
        self.config.factors + 1
    }
    fn cosine(&self) -> bool {
        false
    }
    fn item_vector(&self, item: ItemId) -> Option<Vec<f32>> {
        let i = item as usize;
        (i < self.item_bias.len()).then(|| {
            let mut v = self.item(i).to_vec();
            v.push(self.item_bias[i]);
            v
        })
    }
    fn queries(&self, history: &History, _target: warmstart_core::SiteId) -> Result<Vec<Vec<f32>>> {
        let mut q = self.fold_in(history)?;
        q.push(1.0);
        Ok(vec![q])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_decreases_and_blocks_are_separated() {
        let m = crate::two_block_matrix(60);
        for threads in [1, 2, 3] {
            let c = BprConfig::builder().factors(8).epochs(40).threads(threads).build().unwrap();
            let bpr = c.fit_matrix(&m).unwrap();
            assert!(bpr.epoch_loss.last().unwrap() < &(bpr.epoch_loss[0] * 0.8), "{threads}: {:?}", bpr.epoch_loss);
            let mut s = vec![0f32; 20];
            bpr.score(&[(11, 1.0), (12, 1.0), (14, 1.0)], 0..20, &mut s).unwrap();
            let own: f32 = s[10..].iter().sum();
            let other: f32 = s[..10].iter().sum();
            assert!(own > other, "{threads} threads: own {own} other {other}");
        }
        // a seed and a thread count give one model
        for threads in [1, 2] {
            let c = BprConfig::builder().factors(8).epochs(5).threads(threads).build().unwrap();
            assert_eq!(c.fit_matrix(&m).unwrap().item_factors, c.fit_matrix(&m).unwrap().item_factors);
        }
        assert!(BprConfig::builder().threads(0).build().is_err());
        assert!(crate::by_name("bpr:threads=2:epochs=3", 1, 42).is_ok());
        assert!(crate::by_name("bpr:threads=0", 1, 42).is_err());
        assert!(crate::by_name("bpr:speed=9", 1, 42).is_err());
    }

    #[test]
    fn popularity_negatives_learn_less_popularity() {
        // item 0 in two users of three, items 1..40 spread thinly
        let mut rng = Rng::new(3);
        let mut t = Vec::new();
        for u in 0..300u32 {
            if u % 3 != 0 {
                t.push((u, 0, 1.0));
            }
            for _ in 0..4 {
                t.push((u, 1 + rng.below(39) as u32, 1.0));
            }
        }
        let m = CsrMatrix::from_triplets(300, 40, &t);
        let lead = |negatives| {
            let c = BprConfig::builder().factors(4).epochs(20).negatives(negatives).build().unwrap();
            let b = c.fit_matrix(&m).unwrap().item_bias;
            b[0] - b[1..].iter().sum::<f32>() / 39.0
        };
        let (uniform, popularity) = (lead(Negatives::Uniform), lead(Negatives::Popularity));
        assert!(uniform > 0.0 && popularity < 0.5 * uniform, "bias lead: uniform {uniform}, popularity {popularity}");
        assert!(crate::by_name("bpr:negatives=popularity:threads=2", 1, 42).is_err());
        assert!(crate::by_name("bpr:negatives=often", 1, 42).is_err());
    }
}
