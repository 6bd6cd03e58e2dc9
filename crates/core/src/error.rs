//! Errors of the core crate.

/// Errors raised by core types (bad ids, inconsistent datasets).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A value could not be parsed into a core enum.
    #[error("unknown {what} `{value}` (expected one of: {expected})")]
    UnknownValue {
        /// What was being parsed (e.g. "interaction kind").
        what: &'static str,
        /// The offending text.
        value: String,
        /// The accepted spellings.
        expected: &'static str,
    },
    /// A reference to a site, product or user that the dataset does not hold.
    #[error("dataset has no {what} `{key}`")]
    Missing {
        /// Kind of thing looked up.
        what: &'static str,
        /// Its key.
        key: String,
    },
    /// The dataset is inconsistent (e.g. an interaction names an unknown product).
    #[error("inconsistent dataset: {0}")]
    Inconsistent(String),
}

/// Result alias for the core crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
