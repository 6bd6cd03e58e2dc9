//! Analysis of embedding sets: clustering (k-means++) and 2-D maps (Barnes–Hut t-SNE).
//!
//! Inputs are row-major `f32` matrices (`n × dim`), as the store and the models hold them.
//! Every random choice is seeded, so the same input and seed give the same result.

pub mod kmeans;
pub mod tsne;

pub use kmeans::{KMeans, KMeansConfig, KMeansConfigBuilder};
pub use tsne::{Tsne, TsneConfig, TsneConfigBuilder};

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
