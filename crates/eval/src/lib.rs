//! Offline evaluation: cold-start protocols, ranking metrics, cross-validation with
//! confidence intervals and paired tests, segments, leaderboards and grid search. Every
//! model is evaluated through the [`warmstart_models::Recommender`] trait.

pub mod grid;
pub mod metrics;
pub mod online;
pub mod personas;
pub mod protocol;
pub mod report;
pub mod run;
pub mod runner;
pub mod stats;

pub use protocol::{Protocol, ProtocolOptions, Task};
pub use runner::{EvalConfig, TaskResult};

/// Errors of the eval crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad evaluation settings.
    #[error("{0}")]
    Config(String),
    /// A model failed.
    #[error(transparent)]
    Model(#[from] warmstart_models::Error),
    /// Writing results failed.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: std::path::PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

/// Result alias for the eval crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
