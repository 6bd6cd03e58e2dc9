//! Core types of warmstart: shops, products, users and interactions, the compact-id
//! [`Dataset`] that models train on, and the sparse [`CsrMatrix`] it hands out.
//!
//! Every other crate depends on this one; it depends on nothing of the project.

pub mod dataset;
pub mod error;
pub mod matrix;
pub mod metrics;
pub mod npy;
pub mod paths;
pub mod record;
pub mod rng;
pub mod schedule;
pub mod topk;
pub mod url;
pub mod weights;

pub use dataset::{
    Dataset, DatasetBuilder, InteractionRow, ItemId, ItemVectors, ProductMeta, SiteId, SiteInfo, UserId, UserSites,
};
pub use error::{Error, Result};
pub use matrix::CsrMatrix;
pub use record::{EventTime, ImageRef, Interaction, InteractionKind, MissingFields, Price, Product, Site, Split};
pub use rng::Rng;
pub use topk::{top_k, top_k_by};
pub use weights::{HistoryWeights, HistoryWeightsBuilder};
