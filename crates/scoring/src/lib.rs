//! The pure scoring core shared by `warmstart recommend`, the HTTP service and (compiled to
//! WebAssembly) the browser extension: user profiles in a content space (weighted means per
//! site, several interests by spherical k-means), cosine / inner-product scoring, the
//! log-popularity prior, maximal marginal relevance and catalog filters.
//!
//! It depends only on `warmstart-core` (no candle, SQLite or C code), so the same functions
//! give the same rankings on a server and on a device.

pub mod filter;
pub mod mmr;
pub mod profile;
pub mod rank;
pub mod vector;
pub mod wire;

pub use filter::{ItemFilter, ItemFilterBuilder};
pub use mmr::mmr;
pub use profile::{interest_centroids, site_groups, ItemSpace, SliceSpace};
pub use rank::{best_k, item_score, target_queries};
pub use vector::{axpy, dot, normalize};
pub use warmstart_core::{top_k, top_k_by};
pub use wire::{NeighbourLists, SiteVectors};

/// Errors of the scoring core.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Error {
    /// A filter or parameter is out of range.
    #[error("invalid {name} = {value}: {rule}")]
    Invalid {
        /// Field name.
        name: &'static str,
        /// Given value.
        value: String,
        /// What is allowed.
        rule: &'static str,
    },
}

/// Result alias for the scoring core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Log-popularity prior in `[0, 1]`: `ln(1 + c) / ln(1 + max c)` for each count.
pub fn log_popularity(counts: &[f32]) -> Vec<f32> {
    let max = counts.iter().copied().fold(0.0f32, f32::max);
    let denom = (1.0 + max).ln().max(1e-6);
    counts.iter().map(|c| (1.0 + c.max(0.0)).ln() / denom).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn popularity_prior_is_monotone_and_bounded() {
        let p = super::log_popularity(&[0.0, 1.0, 10.0, 100.0]);
        assert_eq!(p[0], 0.0);
        assert!((p[3] - 1.0).abs() < 1e-6);
        assert!(p.windows(2).all(|w| w[0] < w[1]));
    }
}
