//! Which content vectors content models read: the application layer's [`VectorSpec`]
//! (`minilm`, `TEXT+IMAGE[:w]`), loaded with fusion counts printed to stderr.

use warmstart_core::{Dataset, ItemVectors};
use warmstart_store::Store;

pub use warmstart_app::vectors::{VectorSpec, CONTENT_ENCODER};

/// One stored vector set, failing clearly when it was never computed.
pub(crate) fn load_one(store: &Store, model: &str, dataset: &str, d: &Dataset) -> anyhow::Result<ItemVectors> {
    Ok(warmstart_app::vectors::load_one(store, model, dataset, d)?)
}

/// Loads (and fuses) the dataset's item vectors.
pub(crate) fn load_vectors(
    store: &Store,
    dataset: &str,
    d: &Dataset,
    spec: &VectorSpec,
) -> anyhow::Result<ItemVectors> {
    Ok(warmstart_app::vectors::load_vectors(store, dataset, d, spec, &mut |line| eprintln!("{line}"))?)
}
