//! Importers: turn heterogeneous catalogs and interaction logs into normalised
//! [`Product`]s and [`Interaction`]s. Importers never touch the store; the caller writes an
//! [`Import`] in one transaction, so a failed import leaves nothing behind.

pub mod amazon;
pub mod cdrib;
pub mod error;
pub mod fashion;
pub mod generic;
pub mod html;
pub mod idx;
pub mod images;
pub mod movielens;
pub mod normalize;
pub mod progress;
pub mod report;
mod util;

pub use error::{Error, Result};
pub use report::{ImportReport, Skip};

use warmstart_core::{Interaction, Product, Site};

/// Everything one import produced, ready to be written to the store.
#[derive(Debug, Clone, Default)]
pub struct Import {
    /// Sites created or updated.
    pub sites: Vec<Site>,
    /// Products.
    pub products: Vec<Product>,
    /// Interactions.
    pub interactions: Vec<Interaction>,
    /// What was read and skipped.
    pub report: ImportReport,
}

/// The built-in sources, as named on the command line.
pub const SOURCES: &[&str] =
    &["fashion-products", "amazon-art-office", "cdrib", "movielens-100k", "jsonl", "csv", "html"];
