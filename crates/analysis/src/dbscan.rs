//! DBSCAN (Ester et al. 1996) as scikit-learn's `sklearn.cluster.DBSCAN(eps, min_samples,
//! metric)` computes it: a row is *core* when at least `min_samples` rows, itself included,
//! lie within distance `≤ eps`; clusters grow from core rows taken in index order and expand
//! only through core rows; a border row joins the first cluster that reaches it; the rest is
//! noise (`-1`). Neighbours are found by brute force, in parallel over rows.

use rayon::prelude::*;

use crate::{Error, Metric, Points, Result};

/// Checked parameters of [`Dbscan`].
#[derive(Debug, Clone, PartialEq)]
pub struct DbscanConfig {
    /// Neighbourhood radius (inclusive).
    pub eps: f32,
    /// Rows within `eps`, the row itself included, that make a row core.
    pub min_samples: usize,
    /// Distance between rows.
    pub metric: Metric,
}

/// Builder of [`DbscanConfig`].
#[derive(Debug, Clone)]
pub struct DbscanConfigBuilder(DbscanConfig);

impl DbscanConfig {
    /// Defaults (scikit-learn's): eps = 0.5, min_samples = 5, euclidean.
    pub fn builder() -> DbscanConfigBuilder {
        DbscanConfigBuilder(DbscanConfig { eps: 0.5, min_samples: 5, metric: Metric::Euclidean })
    }
}

impl DbscanConfigBuilder {
    /// Neighbourhood radius.
    pub fn eps(mut self, eps: f32) -> Self {
        self.0.eps = eps;
        self
    }
    /// Neighbours (the row included) that make a row core.
    pub fn min_samples(mut self, n: usize) -> Self {
        self.0.min_samples = n;
        self
    }
    /// Distance between rows.
    pub fn metric(mut self, m: Metric) -> Self {
        self.0.metric = m;
        self
    }
    /// Validates.
    pub fn build(self) -> Result<DbscanConfig> {
        let c = self.0;
        let bad = |name, value: String, rule: &str| Err(Error::InvalidParameter { name, value, rule: rule.into() });
        if !(c.eps > 0.0 && c.eps.is_finite()) {
            return bad("eps", c.eps.to_string(), "must be finite and > 0");
        }
        if c.min_samples == 0 {
            return bad("min_samples", "0".into(), "must be at least 1");
        }
        Ok(c)
    }
}

/// A DBSCAN clustering.
#[derive(Debug, Clone, PartialEq)]
pub struct Dbscan {
    /// Cluster of each row, `0..n_clusters` in order of discovery; `-1` is noise.
    pub labels: Vec<i32>,
    /// Whether each row is a core row.
    pub core: Vec<bool>,
    /// Number of clusters.
    pub n_clusters: usize,
}

impl Dbscan {
    /// Clusters the rows of `data` (`n × dim`).
    pub fn fit(config: &DbscanConfig, data: &[f32], dim: usize) -> Result<Dbscan> {
        let points = Points::new(data, dim, config.metric)?;
        let n = points.n;
        let eps = config.eps as f64;
        let min_samples = config.min_samples;
        // core rows: stop counting once min_samples neighbours are found
        let core: Vec<bool> = (0..n)
            .into_par_iter()
            .map(|i| (0..n).filter(|&j| points.dist(i, j) <= eps).take(min_samples).count() >= min_samples)
            .collect();
        let neighbours =
            |i: usize| -> Vec<usize> { (0..n).into_par_iter().filter(|&j| points.dist(i, j) <= eps).collect() };
        // scikit-learn's dbscan_inner: a depth-first search from each unlabelled core row
        let mut labels = vec![-1i32; n];
        let mut next = 0i32;
        let mut stack: Vec<usize> = Vec::new();
        for start in 0..n {
            if labels[start] != -1 || !core[start] {
                continue;
            }
            let mut i = start;
            loop {
                if labels[i] == -1 {
                    labels[i] = next;
                    if core[i] {
                        stack.extend(neighbours(i).into_iter().filter(|&v| labels[v] == -1));
                    }
                }
                match stack.pop() {
                    Some(v) => i = v,
                    None => break,
                }
            }
            next += 1;
        }
        Ok(Dbscan { labels, core, n_clusters: next as usize })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fit(xs: &[f32], dim: usize, eps: f32, min_samples: usize, metric: Metric) -> Dbscan {
        let c = DbscanConfig::builder().eps(eps).min_samples(min_samples).metric(metric).build().unwrap();
        Dbscan::fit(&c, xs, dim).unwrap()
    }

    #[test]
    fn core_border_noise_and_first_cluster_wins() {
        // on a line: group A (0, .3, .6, .9), border 1.8, group C (2.7 .. 3.6), noise at 10;
        // eps .95, min_samples 4: 1.8 has only 3 rows within eps (0.9, itself, 2.7) so it is a
        // border row of both groups
        let a = [0.0, 0.3, 0.6, 0.9];
        let c = [2.7, 3.0, 3.3, 3.6];
        let c_first: Vec<f32> = c.iter().chain(&[1.8]).chain(&a).chain(&[10.0]).copied().collect();
        let d = fit(&c_first, 1, 0.95, 4, Metric::Euclidean);
        assert_eq!(d.labels, vec![0, 0, 0, 0, 0, 1, 1, 1, 1, -1]);
        assert_eq!(d.core, vec![true, true, true, true, false, true, true, true, true, false]);
        assert_eq!(d.n_clusters, 2);
        // the same rows with group A first: the border row now goes to A
        let a_first: Vec<f32> = a.iter().chain(&[1.8]).chain(&c).chain(&[10.0]).copied().collect();
        let d = fit(&a_first, 1, 0.95, 4, Metric::Euclidean);
        assert_eq!(d.labels, vec![0, 0, 0, 0, 0, 1, 1, 1, 1, -1]);
        assert_eq!(d.core, vec![true, true, true, true, false, true, true, true, true, false]);
        // a border row first in index order is not a seed: the cluster ids stay in core order
        let border_first: Vec<f32> = [1.8].iter().chain(&c).chain(&a).copied().collect();
        assert_eq!(fit(&border_first, 1, 0.95, 4, Metric::Euclidean).labels, vec![0, 0, 0, 0, 0, 1, 1, 1, 1]);
        // min_samples 1: every row is core, the lone row is a cluster of its own
        let d = fit(&c_first, 1, 0.95, 1, Metric::Euclidean);
        assert_eq!(d.labels, vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        // eps is inclusive: three rows exactly 1 apart
        assert_eq!(fit(&[0.0, 1.0, 2.0, 10.0], 1, 1.0, 3, Metric::Euclidean).labels, vec![0, 0, 0, -1]);
        assert_eq!(fit(&[0.0, 1.0, 2.0, 10.0], 1, 0.999, 2, Metric::Euclidean).labels, vec![-1, -1, -1, -1]);
    }

    #[test]
    fn cosine_ignores_length() {
        #[rustfmt::skip]
        let xs = [
            1.0, 0.0,   20.0, 1.0,   0.5, 0.02,  // towards +x
            0.0, 1.0,   0.0, 30.0,   0.05, 1.0,  // towards +y
            -1.0, -1.0,                          // alone
            0.0, 0.0,                            // zero row: distance 1 to all others
        ];
        let d = fit(&xs, 2, 0.01, 2, Metric::Cosine);
        assert_eq!(d.labels, vec![0, 0, 0, 1, 1, 1, -1, -1]);
        // euclidean sees lengths instead
        assert_eq!(fit(&xs, 2, 0.01, 2, Metric::Euclidean).labels, vec![-1; 8]);
        // the zero row is exactly 1 from everything: within eps = 1 it is core and links all
        assert_eq!(fit(&xs, 2, 1.0, 8, Metric::Cosine).labels[7], 0);
        assert_eq!(fit(&xs, 2, 0.999, 2, Metric::Cosine).labels[7], -1);
    }

    #[test]
    fn rejects_bad_parameters() {
        assert!(DbscanConfig::builder().eps(0.0).build().is_err());
        assert!(DbscanConfig::builder().eps(f32::NAN).build().is_err());
        assert!(DbscanConfig::builder().eps(f32::INFINITY).build().is_err());
        assert!(DbscanConfig::builder().min_samples(0).build().is_err());
        let c = DbscanConfig::builder().build().unwrap();
        assert!(Dbscan::fit(&c, &[0.0, 1.0, 2.0], 2).is_err(), "ragged rows");
        assert!(Dbscan::fit(&c, &[], 2).is_err(), "no rows");
    }
}
