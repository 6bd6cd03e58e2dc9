//! Implicit-feedback ALS (Hu, Koren & Volinsky 2008): confidence `c = 1 + alpha·r`,
//! preference 1 on observed pairs, solved per row with a few conjugate-gradient steps
//! warm-started from the previous iteration (as in Takács et al. 2011), in parallel.
//! A new user is folded in by solving their least-squares problem exactly.

use std::ops::Range;
use std::time::Instant;

use rayon::prelude::*;
use warmstart_core::{CsrMatrix, ItemId, Rng};

use crate::artifact::{expect_len, ArtifactReader, ArtifactWriter};
use crate::linalg::{axpy, axpy_k, cholesky_solve, dot, dot_k, gram, symv_k};
use crate::simd;
use crate::{check, Fit, History, Recommender, Result, TrainData, VectorSpace};

/// Kind of a saved ALS model.
pub(crate) const KIND: &str = "als";

/// Hyper-parameters of [`Als`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AlsConfig {
    /// Latent dimensions.
    pub factors: usize,
    /// L2 regularisation.
    pub regularization: f32,
    /// Confidence scale: `c = 1 + alpha·r`.
    pub alpha: f32,
    /// Alternating iterations.
    pub iterations: usize,
    /// Conjugate-gradient steps per row and iteration.
    pub cg_steps: usize,
    /// Worker threads (0 = all cores).
    pub threads: usize,
    /// Seed of the initial factors.
    pub seed: u64,
}

/// Builder of [`AlsConfig`].
#[derive(Debug, Clone)]
pub struct AlsBuilder(AlsConfig);

impl AlsConfig {
    /// The name `by_name` reads back: `als`, with `:factors=N`, `:reg=R`, `:alpha=A`,
    /// `:iterations=N` where they differ from the defaults.
    pub fn model_name(&self) -> String {
        let d = AlsConfig::builder().0;
        let mut name = String::from("als");
        if self.factors != d.factors {
            name += &format!(":factors={}", self.factors);
        }
        if self.regularization != d.regularization {
            name += &format!(":reg={}", self.regularization);
        }
        if self.alpha != d.alpha {
            name += &format!(":alpha={}", self.alpha);
        }
        if self.iterations != d.iterations {
            name += &format!(":iterations={}", self.iterations);
        }
        name
    }

    /// Starts a builder with defaults (64 factors, λ 1, α 10, 15 iterations, 3 CG steps;
    /// chosen by `warmstart tune` on the Amazon Art/Office validation users).
    pub fn builder() -> AlsBuilder {
        AlsBuilder(AlsConfig {
            factors: 64,
            regularization: 1.0,
            alpha: 10.0,
            iterations: 15,
            cg_steps: 3,
            threads: 0,
            seed: 42,
        })
    }
}

impl AlsBuilder {
    /// Latent dimensions.
    pub fn factors(mut self, v: usize) -> Self {
        self.0.factors = v;
        self
    }
    /// L2 regularisation.
    pub fn regularization(mut self, v: f32) -> Self {
        self.0.regularization = v;
        self
    }
    /// Confidence scale.
    pub fn alpha(mut self, v: f32) -> Self {
        self.0.alpha = v;
        self
    }
    /// Iterations.
    pub fn iterations(mut self, v: usize) -> Self {
        self.0.iterations = v;
        self
    }
    /// CG steps.
    pub fn cg_steps(mut self, v: usize) -> Self {
        self.0.cg_steps = v;
        self
    }
    /// Threads (0 = all).
    pub fn threads(mut self, v: usize) -> Self {
        self.0.threads = v;
        self
    }
    /// Seed.
    pub fn seed(mut self, v: u64) -> Self {
        self.0.seed = v;
        self
    }
    /// Validates.
    pub fn build(self) -> Result<AlsConfig> {
        let c = self.0;
        check("factors", (1..=4096).contains(&c.factors), c.factors, "must be in 1..=4096")?;
        check(
            "regularization",
            c.regularization > 0.0 && c.regularization.is_finite(),
            c.regularization,
            "must be > 0",
        )?;
        check("alpha", c.alpha >= 0.0 && c.alpha.is_finite(), c.alpha, "must be >= 0")?;
        check("iterations", c.iterations >= 1, c.iterations, "must be at least 1")?;
        check("cg_steps", c.cg_steps >= 1, c.cg_steps, "must be at least 1")?;
        Ok(c)
    }
}

/// Alternating least squares for implicit feedback.
#[derive(Debug, Clone)]
pub struct Als {
    config: AlsConfig,
    item_factors: Vec<f32>,
    /// `YᵀY + λI` of the final item factors (for fold-in).
    yty: Vec<f32>,
    /// Wall-clock seconds of each training iteration.
    pub iteration_seconds: Vec<f64>,
}

impl Als {
    /// The item's factor vector.
    pub fn item_vector(&self, i: ItemId) -> &[f32] {
        let f = self.config.factors;
        &self.item_factors[i as usize * f..(i as usize + 1) * f]
    }

    pub(crate) fn load(r: &ArtifactReader) -> Result<Als> {
        let config: AlsConfig = r.config()?;
        let (shape, item_factors) = r.f32("item_factors")?;
        let (_, yty) = r.f32("yty")?;
        let f = config.factors;
        if shape.len() != 2 || shape[1] != f {
            return Err(r.error(format!("item factors of shape {shape:?} for {f} factors")));
        }
        expect_len(r, "item_factors", item_factors.len(), shape[0] * f)?;
        expect_len(r, "yty", yty.len(), f * f)?;
        Ok(Als { config, item_factors, yty, iteration_seconds: Vec::new() })
    }

    /// Solves the new user's least-squares problem exactly (Cholesky) with the items fixed;
    /// history items beyond the fitted ones are ignored.
    pub fn fold_in(&self, history: &History) -> Result<Vec<f32>> {
        let f = self.config.factors;
        let mut a = self.yty.clone();
        let mut b = vec![0f32; f];
        for &(i, w) in history {
            if (i as usize) * f >= self.item_factors.len() {
                continue;
            }
            let yi = self.item_vector(i);
            let c = 1.0 + self.config.alpha * w;
            axpy(c, yi, &mut b);
            for r in 0..f {
                axpy((c - 1.0) * yi[r], yi, &mut a[r * f..(r + 1) * f]);
            }
        }
        Ok(cholesky_solve(&a, &b).unwrap_or_else(|| vec![0.0; f]))
    }
}

impl AlsConfig {
    /// Trains on a user × item confidence matrix.
    pub fn fit_matrix(&self, m: &CsrMatrix) -> Result<Als> {
        let f = self.factors;
        let mut rng = Rng::new(self.seed);
        let mut init = |n: usize| -> Vec<f32> { (0..n * f).map(|_| rng.normal_f32() * 0.01).collect() };
        let mut x = init(m.n_rows());
        let mut y = init(m.n_cols());
        let mt = m.transpose();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(self.threads)
            .build()
            .map_err(|e| crate::Error::BadData(format!("thread pool: {e}")))?;
        let mut iteration_seconds = Vec::new();
        pool.install(|| {
            for _ in 0..self.iterations {
                let t = Instant::now();
                self.half_step(m, &mut x, &y);
                self.half_step(&mt, &mut y, &x);
                iteration_seconds.push(t.elapsed().as_secs_f64());
            }
        });
        let yty = self.regularized_gram(&y);
        drop(x);
        Ok(Als { config: self.clone(), item_factors: y, yty, iteration_seconds })
    }

    /// `YᵀY + λI`.
    fn regularized_gram(&self, y: &[f32]) -> Vec<f32> {
        let f = self.factors;
        let mut g = gram(y, f);
        for i in 0..f {
            g[i * f + i] += self.regularization;
        }
        g
    }

    /// Solves every row of `x` given `y` (users given items, or items given users).
    fn half_step(&self, m: &CsrMatrix, x: &mut [f32], y: &[f32]) {
        let f = self.factors;
        let yty = self.regularized_gram(y);
        let (alpha, steps) = (self.alpha, self.cg_steps);
        x.par_chunks_mut(f).enumerate().for_each_init(
            || vec![0f32; 3 * f],
            |scratch, (u, xu)| {
                let row = CgRow { yty: &yty, y, idx: m.row_indices(u), val: m.row_values(u), alpha, steps };
                simd!(row.solve::<true>(xu, scratch), row.solve::<false>(xu, scratch))
            },
        );
    }
}

impl Fit for AlsConfig {
    fn name(&self) -> String {
        self.model_name()
    }
    fn fit(&self, data: &TrainData) -> Result<Box<dyn Recommender>> {
        Ok(Box::new(self.fit_matrix(data.matrix)?))
    }
}

struct CgRow<'a> {
    yty: &'a [f32],
    y: &'a [f32],
    idx: &'a [u32],
    val: &'a [f32],
    alpha: f32,
    steps: usize,
}

impl CgRow<'_> {
    #[inline(always)]
    fn solve<const FMA: bool>(&self, xu: &mut [f32], scratch: &mut [f32]) {
        let f = xu.len();
        let (r, rest) = scratch.split_at_mut(f);
        let (p, ap) = rest.split_at_mut(f);
        let yrow = |i: u32| &self.y[i as usize * f..(i as usize + 1) * f];
        // r = b - A x
        symv_k::<FMA>(self.yty, xu, r);
        for v in r.iter_mut() {
            *v = -*v;
        }
        for (&i, &v) in self.idx.iter().zip(self.val) {
            let yi = yrow(i);
            let c = 1.0 + self.alpha * v;
            axpy_k::<FMA>(c - (c - 1.0) * dot_k::<FMA>(yi, xu), yi, r);
        }
        p.copy_from_slice(r);
        let mut rsold = dot_k::<FMA>(r, r);
        if rsold < 1e-20 {
            return;
        }
        for _ in 0..self.steps {
            symv_k::<FMA>(self.yty, p, ap);
            for (&i, &v) in self.idx.iter().zip(self.val) {
                let yi = yrow(i);
                axpy_k::<FMA>(self.alpha * v * dot_k::<FMA>(yi, p), yi, ap);
            }
            let a = rsold / dot_k::<FMA>(p, ap);
            axpy_k::<FMA>(a, p, xu);
            axpy_k::<FMA>(-a, ap, r);
            let rsnew = dot_k::<FMA>(r, r);
            if rsnew < 1e-20 {
                break;
            }
            let beta = rsnew / rsold;
            for (pi, ri) in p.iter_mut().zip(r.iter()) {
                *pi = ri + beta * *pi;
            }
            rsold = rsnew;
        }
    }
}

impl Recommender for Als {
    fn name(&self) -> String {
        self.config.model_name()
    }

    fn n_items(&self) -> usize {
        self.item_factors.len() / self.config.factors
    }

    fn score_items(&self, history: &History, items: Range<ItemId>, out: &mut [f32]) -> Result<()> {
        let xu = self.fold_in(history)?;
        for (o, i) in out.iter_mut().zip(items) {
            *o = dot(&xu, self.item_vector(i));
        }
        Ok(())
    }

    fn score_ids(&self, history: &History, ids: &[ItemId], out: &mut [f32]) -> Result<()> {
        crate::check_ids(self, history, ids, out)?;
        let xu = self.fold_in(history)?;
        for (o, &i) in out.iter_mut().zip(ids) {
            *o = dot(&xu, self.item_vector(i));
        }
        Ok(())
    }

    fn save(&self, dir: &std::path::Path) -> Result<()> {
        let f = self.config.factors;
        ArtifactWriter::new(KIND, &self.config)?
            .f32("item_factors", &[self.item_factors.len() / f, f], &self.item_factors)
            .f32("yty", &[f, f], &self.yty)
            .write(dir)
    }

    fn space(&self) -> Option<&dyn VectorSpace> {
        Some(self)
    }
}

impl VectorSpace for Als {
    fn dim(&self) -> usize {
        self.config.factors
    }
    fn cosine(&self) -> bool {
        false
    }
    fn item_vector(&self, item: ItemId) -> Option<Vec<f32>> {
        ((item as usize) < self.n_items()).then(|| Als::item_vector(self, item).to_vec())
    }
    fn queries(&self, history: &History, _target: warmstart_core::SiteId) -> Result<Vec<Vec<f32>>> {
        Ok(vec![self.fold_in(history)?])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two blocks of users/items: ALS must rank a user's own block first, and fold-in must
    /// agree with the trained user vector's ranking.
    #[test]
    fn recovers_block_structure_and_folds_in() {
        let m = crate::two_block_matrix(40);
        let als = AlsConfig::builder().factors(4).iterations(10).regularization(0.1).threads(1).build().unwrap();
        let als = als.fit_matrix(&m).unwrap();
        assert_eq!(als.iteration_seconds.len(), 10);
        let hist: Vec<(ItemId, f32)> = vec![(1, 1.0), (2, 1.0), (4, 1.0)];
        let mut s = vec![0f32; 20];
        als.score(&hist, 0..20, &mut s).unwrap();
        let own: f32 = s[..10].iter().sum::<f32>() / 10.0;
        let other: f32 = s[10..].iter().sum::<f32>() / 10.0;
        assert!(own > other + 0.2, "own {own} other {other}");
        assert!(AlsConfig::builder().factors(0).build().is_err());
    }
}
