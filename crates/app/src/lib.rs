//! The application layer of warmstart, between the engine (store, models, encoders,
//! evaluation) and the programs people use (the `warmstart` CLI, the HTTP service, the
//! browser extension's glue).
//!
//! - [`artifact`]: trained models as versioned, atomically published artifacts with a
//!   manifest (dataset fingerprint, configuration, training metrics, the evaluation the very
//!   same fitted model scored).
//! - [`train`]: fit a named model once on a served hold-out, evaluate it, publish it.
//! - [`catalog`]: a live catalog per dataset group (external ↔ internal ids per site, product
//!   metadata, content vectors, upserts and removals without a restart).
//! - [`service`]: the [`Service`] that answers recommendation, similar-item, embedding and
//!   catalog requests from a store and its artifacts; it never refits.
//! - [`feedback`]: the online loop — recorded recommendations, feedback events stored once,
//!   session erasure, the retention window; [`live`]: popularity, trending and co-click
//!   signals and bandit posteriors learnt from events; [`experiment`]: A/B experiments
//!   (TOML), stable assignment, Thompson sampling and the report's statistics.
//! - [`migrate`]: a whole store copied to another backend (SQLite ⇄ PostgreSQL).
//! - [`request`]: typed requests and responses (serde, OpenAPI schemas).
//! - [`vectors`]: which content vectors a model reads (`minilm`, `TEXT+IMAGE[:w]`).
//!
//! Errors tell a client's mistake ([`Error::is_client_error`]) from an internal failure.

pub mod artifact;
pub mod catalog;
pub mod embedding;
pub mod experiment;
pub mod experiment_pages;
pub mod feedback;
pub mod gallery;
pub mod live;
pub mod migrate;
pub mod query;
pub mod recommend;
pub mod request;
pub mod service;
pub mod simulate;
pub mod train;
pub mod vectors;

pub use service::{Retrieval, Service, ServiceOptions};

/// Errors of the application layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request field is missing, malformed or out of range (the client's mistake).
    #[error("{field}: {reason}")]
    BadRequest {
        /// The field, e.g. `k` or `history[3].id`.
        field: String,
        /// What is wrong and what is allowed.
        reason: String,
    },
    /// Something a request names does not exist (the client's mistake).
    #[error("no {what} `{key}`")]
    NotFound {
        /// What kind of thing.
        what: &'static str,
        /// Its name.
        key: String,
    },
    /// A stored artifact cannot be used.
    #[error("artifact {path}: {reason}")]
    Artifact {
        /// Its directory or file.
        path: String,
        /// Why.
        reason: String,
    },
    /// An I/O error on a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] warmstart_store::Error),
    /// A model failed.
    #[error(transparent)]
    Model(#[from] warmstart_models::Error),
    /// An encoder failed.
    #[error(transparent)]
    Embed(#[from] warmstart_embed::Error),
    /// Evaluation failed.
    #[error(transparent)]
    Eval(#[from] warmstart_eval::Error),
    /// The ANN index failed.
    #[error(transparent)]
    Index(#[from] warmstart_index::Error),
    /// Core data error.
    #[error(transparent)]
    Core(#[from] warmstart_core::Error),
    /// Reading input files failed.
    #[error(transparent)]
    Ingest(#[from] warmstart_ingest::Error),
    /// Drawing or writing a picture or page failed.
    #[error(transparent)]
    Viz(#[from] warmstart_viz::Error),
}

impl Error {
    /// Whether the client caused it (a 4xx), rather than the service (a 5xx).
    pub fn is_client_error(&self) -> bool {
        matches!(self, Error::BadRequest { .. } | Error::NotFound { .. })
    }

    /// A [`Error::BadRequest`].
    pub fn bad(field: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::BadRequest { field: field.into(), reason: reason.into() }
    }

    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Error {
        Error::Io { path: path.display().to_string(), source }
    }
}

/// Result alias of the application layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;
