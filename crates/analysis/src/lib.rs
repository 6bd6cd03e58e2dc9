//! Analysis of embedding sets: clustering (k-means++, DBSCAN, HDBSCAN), cluster quality
//! scores, reductions (PCA, UMAP-style) and 2-D maps (Barnes–Hut t-SNE).
//!
//! Inputs are row-major `f32` matrices (`n × dim`), as the store and the models hold them.
//! Every random choice is seeded, so the same input and seed give the same result.

pub mod dbscan;
pub mod hdbscan;
pub mod kmeans;
pub mod pca;
pub mod scores;
pub mod tsne;
pub mod umap;

pub use dbscan::{Dbscan, DbscanConfig, DbscanConfigBuilder};
pub use hdbscan::{Hdbscan, HdbscanConfig, HdbscanConfigBuilder};
pub use kmeans::{KMeans, KMeansConfig, KMeansConfigBuilder};
pub use pca::Pca;
pub use scores::{
    adjusted_rand_index, cluster_purity, n_clusters, noise_fraction, normalized_mutual_info, purity, silhouette,
};
pub use tsne::{Tsne, TsneConfig, TsneConfigBuilder};
pub use umap::{Umap, UmapConfig, UmapConfigBuilder};

/// Errors of the analysis crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A hyper-parameter is out of its valid range.
    #[error("invalid parameter {name} = {value}: {rule}")]
    InvalidParameter {
        /// Parameter name.
        name: &'static str,
        /// Given value.
        value: String,
        /// What is allowed.
        rule: String,
    },
    /// The data cannot be analysed as given.
    #[error("bad input: {0}")]
    BadInput(String),
}

/// Result alias for the analysis crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Checks that `data` is a non-empty `n × dim` matrix of finite values; returns `n`.
pub(crate) fn rows(data: &[f32], dim: usize) -> Result<usize> {
    if dim == 0 || data.is_empty() || !data.len().is_multiple_of(dim) {
        return Err(Error::BadInput(format!("{} values do not form rows of dimension {dim}", data.len())));
    }
    if let Some(i) = data.iter().position(|x| !x.is_finite()) {
        return Err(Error::BadInput(format!("row {} has a value that is not finite", i / dim)));
    }
    Ok(data.len() / dim)
}

/// Squared euclidean distance.
pub(crate) fn sq_dist(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Distance between rows, for the density clusterings and the silhouette.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Metric {
    /// Euclidean distance.
    #[default]
    Euclidean,
    /// Cosine distance `1 − cos(a, b)`, in `[0, 2]`. A zero row is at distance 1 from every
    /// other row (and 0 from itself), as in scikit-learn.
    Cosine,
}

/// Rows prepared for one metric, in `f64` as scikit-learn computes distances: plain copies for
/// euclidean, unit rows for cosine (a row of norm below `10 ε` stays zero).
pub(crate) struct Points {
    x: Vec<f64>,
    dim: usize,
    /// Number of rows.
    pub(crate) n: usize,
    metric: Metric,
}

impl Points {
    /// Checks `data` (as `rows` does) and prepares it.
    pub(crate) fn new(data: &[f32], dim: usize, metric: Metric) -> Result<Points> {
        let n = rows(data, dim)?;
        let mut x: Vec<f64> = data.iter().map(|&v| v as f64).collect();
        if metric == Metric::Cosine {
            for row in x.chunks_mut(dim) {
                let norm = row.iter().map(|v| v * v).sum::<f64>().sqrt();
                if norm < 10.0 * f64::EPSILON {
                    row.fill(0.0);
                } else {
                    row.iter_mut().for_each(|v| *v /= norm);
                }
            }
        }
        Ok(Points { x, dim, n, metric })
    }

    /// Distance between rows `i` and `j` (0 when `i == j`).
    pub(crate) fn dist(&self, i: usize, j: usize) -> f64 {
        if i == j {
            return 0.0;
        }
        let a = &self.x[i * self.dim..(i + 1) * self.dim];
        let b = &self.x[j * self.dim..(j + 1) * self.dim];
        match self.metric {
            Metric::Euclidean => a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>().sqrt(),
            Metric::Cosine => (1.0 - a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>()).clamp(0.0, 2.0),
        }
    }
}
