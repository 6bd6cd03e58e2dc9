//! Barnes–Hut t-SNE (van der Maaten 2014) to two dimensions, through the `bhtsne` crate,
//! with a seeded initial layout (the crate's own is not seeded) and checked parameters (the
//! crate panics on a perplexity too large for the data).

use warmstart_core::Rng;

use crate::{rows, Error, Result};

/// Checked parameters of [`Tsne`].
#[derive(Debug, Clone, PartialEq)]
pub struct TsneConfig {
    /// Perplexity (effective number of neighbours).
    pub perplexity: f32,
    /// Barnes–Hut accuracy θ (0 < θ; 0.5 is usual).
    pub theta: f32,
    /// Gradient-descent iterations.
    pub epochs: usize,
    /// Learning rate.
    pub learning_rate: f32,
    /// Seed of the initial layout.
    pub seed: u64,
}

/// Builder of [`TsneConfig`].
#[derive(Debug, Clone)]
pub struct TsneConfigBuilder(TsneConfig);

impl TsneConfig {
    /// Defaults: perplexity 30, θ 0.5, 1,000 iterations, learning rate 200, seed 42.
    pub fn builder() -> TsneConfigBuilder {
        TsneConfigBuilder(TsneConfig { perplexity: 30.0, theta: 0.5, epochs: 1000, learning_rate: 200.0, seed: 42 })
    }
}

impl TsneConfigBuilder {
    /// Perplexity.
    pub fn perplexity(mut self, p: f32) -> Self {
        self.0.perplexity = p;
        self
    }
    /// Barnes–Hut θ.
    pub fn theta(mut self, t: f32) -> Self {
        self.0.theta = t;
        self
    }
    /// Iterations.
    pub fn epochs(mut self, e: usize) -> Self {
        self.0.epochs = e;
        self
    }
    /// Learning rate.
    pub fn learning_rate(mut self, l: f32) -> Self {
        self.0.learning_rate = l;
        self
    }
    /// Seed.
    pub fn seed(mut self, s: u64) -> Self {
        self.0.seed = s;
        self
    }
    /// Validates.
    pub fn build(self) -> Result<TsneConfig> {
        let c = self.0;
        let bad = |name, value: String, rule: &str| Err(Error::InvalidParameter { name, value, rule: rule.into() });
        if !(c.perplexity >= 1.0 && c.perplexity.is_finite()) {
            return bad("perplexity", c.perplexity.to_string(), "must be at least 1");
        }
        if !(c.theta > 0.0 && c.theta.is_finite()) {
            return bad("theta", c.theta.to_string(), "must be positive (Barnes–Hut)");
        }
        if c.epochs < 250 {
            return bad("epochs", c.epochs.to_string(), "must be at least 250 (the early exaggeration phase)");
        }
        if !(c.learning_rate > 0.0 && c.learning_rate.is_finite()) {
            return bad("learning_rate", c.learning_rate.to_string(), "must be positive");
        }
        Ok(c)
    }
}

/// A 2-D t-SNE map.
#[derive(Debug, Clone, PartialEq)]
pub struct Tsne {
    /// One point per input row.
    pub points: Vec<[f32; 2]>,
    /// Final Kullback–Leibler divergence, when the library reports it.
    pub kl_divergence: Option<f32>,
}

impl Tsne {
    /// Maps the rows of `data` (`n × dim`) to 2-D with euclidean input distances. Needs more
    /// than `3 × perplexity` rows; `on_epoch(epoch)` is called after each iteration.
    pub fn fit(config: &TsneConfig, data: &[f32], dim: usize, on_epoch: impl FnMut(usize) + Send) -> Result<Tsne> {
        let n = rows(data, dim)?;
        let needed = (3.0 * config.perplexity) as usize + 1;
        if n < needed {
            return Err(Error::InvalidParameter {
                name: "perplexity",
                value: config.perplexity.to_string(),
                rule: format!("needs more than 3 × perplexity rows ({n} rows given, at least {needed} needed)"),
            });
        }
        let vectors: Vec<&[f32]> = data.chunks(dim).collect();
        let mut rng = Rng::new(config.seed);
        let init: Vec<f32> = (0..n * 2).map(|_| rng.normal_f32() * 1e-4).collect();
        // exact neighbours in a fixed order (distance, then index): the library's own search
        // starts from random vantage points, and the order of equal or near-equal neighbours
        // changes float sums that t-SNE's dynamics then amplify
        let k = (3.0 * config.perplexity) as usize;
        let neighbours: Vec<Vec<bhtsne::Neighbor<f32>>> = {
            use rayon::prelude::*;
            (0..n)
                .into_par_iter()
                .map(|i| {
                    let row = &data[i * dim..(i + 1) * dim];
                    let mut d: Vec<(f32, usize)> = (0..n)
                        .filter(|&j| j != i)
                        .map(|j| (crate::sq_dist(row, &data[j * dim..(j + 1) * dim]).sqrt(), j))
                        .collect();
                    d.select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                    d.truncate(k);
                    d.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                    d.into_iter().map(|(distance, index)| bhtsne::Neighbor { index, distance }).collect()
                })
                .collect()
        };
        // one worker: the library's parallel sums would otherwise change with thread timing
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .map_err(|e| Error::BadInput(format!("thread pool: {e}")))?;
        let mut on_epoch = on_epoch;
        let (y, kl) = pool.install(|| {
            let mut t: bhtsne::tSNE<f32, &[f32]> = bhtsne::tSNE::new(&vectors);
            t.embedding_dim(2)
                .perplexity(config.perplexity)
                .epochs(config.epochs)
                .learning_rate(config.learning_rate)
                .initial_embedding(init)
                .epoch_callback(|e, _| on_epoch(e))
                .barnes_hut_with_neighbors(config.theta, &neighbours);
            (t.embedding(), t.kl_divergence())
        });
        if y.len() != n * 2 || y.iter().any(|v| !v.is_finite()) {
            return Err(Error::BadInput("t-SNE produced no finite layout".into()));
        }
        Ok(Tsne { points: y.chunks(2).map(|p| [p[0], p[1]]).collect(), kl_divergence: kl })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separates_clusters_and_is_deterministic() {
        // two groups in 10-D, far apart
        let mut rng = Rng::new(5);
        let mut data = Vec::new();
        for i in 0..120 {
            let centre = if i < 60 { 0.0 } else { 8.0 };
            data.extend((0..10).map(|_| centre + rng.normal_f32()));
        }
        let c = TsneConfig::builder().perplexity(10.0).epochs(1000).build().unwrap();
        let mut calls = 0;
        let a = Tsne::fit(&c, &data, 10, |_| calls += 1).unwrap();
        assert_eq!(a.points.len(), 120);
        assert!(calls >= 999, "{calls}");
        // each point's nearest neighbour on the map is from its own group
        let d2 =
            |i: usize, j: usize| (a.points[i][0] - a.points[j][0]).powi(2) + (a.points[i][1] - a.points[j][1]).powi(2);
        let same = (0..120)
            .filter(|&i| {
                let nn = (0..120).filter(|&j| j != i).min_by(|&x, &y| d2(i, x).total_cmp(&d2(i, y))).unwrap();
                (nn < 60) == (i < 60)
            })
            .count();
        assert!(same >= 118, "{same} of 120 points next to their own group");
        assert_eq!(a, Tsne::fit(&c, &data, 10, |_| {}).unwrap(), "same seed, same map");
    }

    #[test]
    fn too_few_rows_is_an_error_not_a_panic() {
        let c = TsneConfig::builder().perplexity(30.0).build().unwrap();
        let err = Tsne::fit(&c, &[0.0; 40], 2, |_| {}).unwrap_err();
        assert!(err.to_string().contains("3 × perplexity"), "{err}");
        assert!(TsneConfig::builder().theta(0.0).build().is_err());
    }
}
