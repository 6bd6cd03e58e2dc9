//! k-means with k-means++ seeding (Arthur & Vassilvitskii 2007) and Lloyd iterations; the
//! best of `n_init` seeded restarts by inertia.

use warmstart_core::Rng;

use crate::{rows, sq_dist, Error, Result};

/// Checked parameters of [`KMeans`].
#[derive(Debug, Clone, PartialEq)]
pub struct KMeansConfig {
    /// Number of clusters.
    pub k: usize,
    /// Lloyd iterations at most per restart.
    pub max_iterations: usize,
    /// Restarts (the lowest inertia wins).
    pub n_init: usize,
    /// Stop when no assignment changes or the inertia improves by less than this share.
    pub tolerance: f64,
    /// Seed of the seeding.
    pub seed: u64,
}

/// Builder of [`KMeansConfig`].
#[derive(Debug, Clone)]
pub struct KMeansConfigBuilder(KMeansConfig);

impl KMeansConfig {
    /// Defaults: k = 8, 100 iterations, 3 restarts, tolerance 1e-4, seed 42.
    pub fn builder() -> KMeansConfigBuilder {
        KMeansConfigBuilder(KMeansConfig { k: 8, max_iterations: 100, n_init: 3, tolerance: 1e-4, seed: 42 })
    }
}

impl KMeansConfigBuilder {
    /// Number of clusters.
    pub fn k(mut self, k: usize) -> Self {
        self.0.k = k;
        self
    }
    /// Lloyd iterations at most.
    pub fn max_iterations(mut self, n: usize) -> Self {
        self.0.max_iterations = n;
        self
    }
    /// Seeded restarts.
    pub fn n_init(mut self, n: usize) -> Self {
        self.0.n_init = n;
        self
    }
    /// Relative inertia improvement below which iterations stop.
    pub fn tolerance(mut self, t: f64) -> Self {
        self.0.tolerance = t;
        self
    }
    /// Seed.
    pub fn seed(mut self, s: u64) -> Self {
        self.0.seed = s;
        self
    }
    /// Validates.
    pub fn build(self) -> Result<KMeansConfig> {
        let c = self.0;
        let bad = |name, value: String, rule: &str| Err(Error::InvalidParameter { name, value, rule: rule.into() });
        if c.k == 0 {
            return bad("k", "0".into(), "must be at least 1");
        }
        if c.max_iterations == 0 || c.n_init == 0 {
            return bad("max_iterations/n_init", format!("{}/{}", c.max_iterations, c.n_init), "must be positive");
        }
        if !(c.tolerance >= 0.0 && c.tolerance.is_finite()) {
            return bad("tolerance", c.tolerance.to_string(), "must be finite and ≥ 0");
        }
        Ok(c)
    }
}

/// A fitted k-means clustering.
#[derive(Debug, Clone, PartialEq)]
pub struct KMeans {
    /// Cluster of each row.
    pub labels: Vec<usize>,
    /// Centroids (`k × dim`, row-major).
    pub centroids: Vec<f32>,
    /// Dimension.
    pub dim: usize,
    /// Sum of squared distances of rows to their centroid.
    pub inertia: f64,
    /// Lloyd iterations of the winning restart.
    pub iterations: usize,
}

impl KMeans {
    /// Clusters the rows of `data` (`n × dim`); `k` larger than `n` is an error.
    pub fn fit(config: &KMeansConfig, data: &[f32], dim: usize) -> Result<KMeans> {
        let n = rows(data, dim)?;
        if config.k > n {
            return Err(Error::InvalidParameter {
                name: "k",
                value: config.k.to_string(),
                rule: format!("at most the number of rows ({n})"),
            });
        }
        let mut rng = Rng::new(config.seed);
        let mut best: Option<KMeans> = None;
        for _ in 0..config.n_init {
            let run = lloyd(config, data, dim, n, seed_plus_plus(config.k, data, dim, n, &mut rng));
            if best.as_ref().is_none_or(|b| run.inertia < b.inertia) {
                best = Some(run);
            }
        }
        best.ok_or_else(|| Error::BadInput("no restart ran".into()))
    }

    /// Number of rows in each cluster.
    pub fn sizes(&self) -> Vec<usize> {
        let mut s = vec![0; self.centroids.len() / self.dim.max(1)];
        for &l in &self.labels {
            s[l] += 1;
        }
        s
    }
}

/// k-means++: the first centre uniformly, each next one with probability ∝ D(x)².
fn seed_plus_plus(k: usize, data: &[f32], dim: usize, n: usize, rng: &mut Rng) -> Vec<f32> {
    let row = |i: usize| &data[i * dim..(i + 1) * dim];
    let mut centres = Vec::with_capacity(k * dim);
    centres.extend_from_slice(row(rng.below(n)));
    let mut d2: Vec<f64> = (0..n).map(|i| sq_dist(row(i), &centres[..dim]) as f64).collect();
    while centres.len() < k * dim {
        let total: f64 = d2.iter().sum();
        let pick = if total <= 0.0 {
            rng.below(n) // all rows coincide with centres: any row
        } else {
            let mut r = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * total;
            let mut chosen = n - 1;
            for (i, w) in d2.iter().enumerate() {
                if r < *w {
                    chosen = i;
                    break;
                }
                r -= w;
            }
            chosen
        };
        let start = centres.len();
        centres.extend_from_slice(row(pick));
        let c = centres[start..].to_vec();
        for (i, d) in d2.iter_mut().enumerate() {
            *d = d.min(sq_dist(row(i), &c) as f64);
        }
    }
    centres
}

fn lloyd(config: &KMeansConfig, data: &[f32], dim: usize, n: usize, mut centroids: Vec<f32>) -> KMeans {
    let k = config.k;
    let mut labels = vec![usize::MAX; n];
    let mut inertia = f64::MAX;
    let mut iterations = 0;
    for _ in 0..config.max_iterations {
        iterations += 1;
        // assignment
        let mut changed = 0usize;
        let mut total = 0.0f64;
        for (i, label) in labels.iter_mut().enumerate() {
            let x = &data[i * dim..(i + 1) * dim];
            let (mut best, mut best_d) = (0, f32::MAX);
            for c in 0..k {
                let d = sq_dist(x, &centroids[c * dim..(c + 1) * dim]);
                if d < best_d {
                    (best, best_d) = (c, d);
                }
            }
            if *label != best {
                changed += 1;
                *label = best;
            }
            total += best_d as f64;
        }
        // update; an empty cluster takes the row farthest from its centroid
        let mut sums = vec![0f64; k * dim];
        let mut counts = vec![0usize; k];
        for (i, &l) in labels.iter().enumerate() {
            counts[l] += 1;
            for (s, x) in sums[l * dim..(l + 1) * dim].iter_mut().zip(&data[i * dim..(i + 1) * dim]) {
                *s += *x as f64;
            }
        }
        for c in 0..k {
            if counts[c] == 0 {
                let far = (0..n)
                    .max_by(|&a, &b| {
                        let da =
                            sq_dist(&data[a * dim..(a + 1) * dim], &centroids[labels[a] * dim..(labels[a] + 1) * dim]);
                        let db =
                            sq_dist(&data[b * dim..(b + 1) * dim], &centroids[labels[b] * dim..(labels[b] + 1) * dim]);
                        da.total_cmp(&db)
                    })
                    .unwrap_or(0);
                centroids[c * dim..(c + 1) * dim].copy_from_slice(&data[far * dim..(far + 1) * dim]);
            } else {
                for (dst, s) in centroids[c * dim..(c + 1) * dim].iter_mut().zip(&sums[c * dim..(c + 1) * dim]) {
                    *dst = (*s / counts[c] as f64) as f32;
                }
            }
        }
        let improved = inertia - total;
        inertia = total;
        if changed == 0 || (improved >= 0.0 && improved <= config.tolerance * total.max(f64::MIN_POSITIVE)) {
            break;
        }
    }
    // final inertia against the final centroids
    let inertia_final: f64 = labels
        .iter()
        .enumerate()
        .map(|(i, &l)| sq_dist(&data[i * dim..(i + 1) * dim], &centroids[l * dim..(l + 1) * dim]) as f64)
        .sum();
    KMeans { labels, centroids, dim, inertia: inertia_final, iterations }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three tight blobs in 2-D.
    fn blobs() -> Vec<f32> {
        let mut rng = Rng::new(3);
        let centres = [(0.0, 0.0), (10.0, 0.0), (0.0, 10.0)];
        let mut out = Vec::new();
        for i in 0..90 {
            let (x, y) = centres[i % 3];
            out.push(x + rng.normal_f32() * 0.3);
            out.push(y + rng.normal_f32() * 0.3);
        }
        out
    }

    #[test]
    fn finds_three_blobs_deterministically() {
        let data = blobs();
        let c = KMeansConfig::builder().k(3).seed(7).build().unwrap();
        let a = KMeans::fit(&c, &data, 2).unwrap();
        // rows i, i+3, i+6 ... share a blob: they must share a label, and blobs differ
        for i in 0..90 {
            assert_eq!(a.labels[i], a.labels[i % 3], "row {i}");
        }
        assert!(a.labels[0] != a.labels[1] && a.labels[1] != a.labels[2] && a.labels[0] != a.labels[2]);
        assert_eq!(a.sizes(), vec![30, 30, 30]);
        assert!(a.inertia < 90.0 * 0.3 * 0.3 * 2.0 * 1.5, "{}", a.inertia);
        assert_eq!(a, KMeans::fit(&c, &data, 2).unwrap());
    }

    #[test]
    fn rejects_bad_input() {
        assert!(KMeansConfig::builder().k(0).build().is_err());
        let c = KMeansConfig::builder().k(5).build().unwrap();
        assert!(KMeans::fit(&c, &[0.0, 1.0, 2.0], 2).is_err(), "ragged rows");
        assert!(KMeans::fit(&c, &[0.0, 1.0, 2.0, 3.0], 2).is_err(), "k > n");
        assert!(KMeans::fit(&KMeansConfig::builder().k(1).build().unwrap(), &[f32::NAN, 1.0], 2).is_err());
        // identical rows: k-means++ still seeds, inertia 0
        let same = KMeans::fit(&KMeansConfig::builder().k(2).build().unwrap(), &[1.0; 8], 2).unwrap();
        assert_eq!(same.inertia, 0.0);
    }
}
