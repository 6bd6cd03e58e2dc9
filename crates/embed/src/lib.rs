//! Content embeddings: sentence encoders (BERT family in Hugging Face format, e.g.
//! all-MiniLM-L6-v2) on `candle`, the product text they read, and fetching the model.

pub mod fetch;
pub mod text;

pub use text::{product_text, EncodeStats, SentenceEncoder};

use std::path::PathBuf;

/// Errors of the embed crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A model file is missing or unreadable.
    #[error("model file {path}: {message}")]
    ModelFile {
        /// File.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The checkpoint lacks a tensor or has one of the wrong shape.
    #[error("checkpoint {path}: {message}")]
    Checkpoint {
        /// Weights file.
        path: PathBuf,
        /// Which tensor and why.
        message: String,
    },
    /// Tokenisation failed.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// The tensor library failed.
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    /// Fetching a model failed.
    #[error("fetching {model}: {message}")]
    Fetch {
        /// Model name.
        model: String,
        /// What went wrong.
        message: String,
    },
    /// Unknown model name.
    #[error("unknown model `{0}` (known: minilm)")]
    UnknownModel(String),
}

/// Result alias for the embed crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
