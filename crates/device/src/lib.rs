//! The part of warmstart that runs on the shopper's device, compiled to WebAssembly for the
//! browser extension (and used natively by the tests that check it gives the server's
//! results):
//! - [`capture`]: a shop page's products with the rules of `warmstart ingest html`, and what
//!   the page is (a product page, an order confirmation, anything else);
//! - [`Device`]: shops' public catalog vectors (the `WSVEC001` download) and the ranking of a
//!   shop the user never used from their history on other shops, with the scoring core the
//!   server's content model uses (profiles, several interests, popularity prior, filters,
//!   MMR diversity), and the reason for each item.
//!
//! [`abi`] exposes both to JavaScript through a small JSON-over-linear-memory interface (no
//! wasm-bindgen glue to keep in step with a CLI version).

pub mod abi;
mod capture;
mod rank;

pub use capture::{capture, CapturedPage, CapturedProduct};
pub use rank::{Because, Device, HistoryItem, RankRequest, RankResponse, RankedItem};

/// Errors on the device.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request field is wrong.
    #[error("{field}: {reason}")]
    Bad {
        /// Field name.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// A downloaded payload is malformed.
    #[error("{0}")]
    Scoring(#[from] warmstart_scoring::Error),
    /// Malformed JSON.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

/// Result alias of the device crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn bad(field: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::Bad { field: field.into(), reason: reason.into() }
}
