//! Errors of the ingest crate. Row-level problems are not errors: they are counted skips in
//! the [`ImportReport`](crate::ImportReport). Errors stop the whole import.

use std::path::PathBuf;

/// An import that cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file holds no data.
    #[error("{path}: file is empty")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// A required column is absent from the header.
    #[error("{path}: header has no column `{column}` (found: {found})")]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The column looked for.
        column: String,
        /// The columns present.
        found: String,
    },
    /// A file is malformed beyond one row (unterminated quote, truncated archive, ...).
    #[error("{path}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// Line, when known.
        line: Option<u64>,
        /// What is wrong.
        message: String,
    },
    /// An HTML page without schema.org, microdata or OpenGraph product markup.
    #[error("{path}: no product markup (schema.org JSON-LD, microdata or OpenGraph) found")]
    NoProductMarkup {
        /// The page.
        path: PathBuf,
    },
    /// A row was rejected and `--strict` asked to stop at the first one.
    #[error("{path}:{line}: {reason} (strict mode)")]
    Strict {
        /// The file.
        path: PathBuf,
        /// The line.
        line: u64,
        /// Why it was rejected.
        reason: String,
    },
    /// Bad importer options.
    #[error("invalid option: {0}")]
    Options(String),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
    pub(crate) fn malformed(path: impl Into<PathBuf>, line: Option<u64>, message: impl Into<String>) -> Self {
        Error::Malformed { path: path.into(), line, message: message.into() }
    }
}

/// Result alias for the ingest crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
