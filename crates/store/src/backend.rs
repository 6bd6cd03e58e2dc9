//! The store contract: what every backend (SQLite, PostgreSQL) provides, so that ingest,
//! training, evaluation and serving never ask which one they run on.

use std::path::PathBuf;

use warmstart_core::{Dataset, Interaction, ItemVectors, Product, ProductMeta, Site};

use crate::dump::{Row, Table};
use crate::events::{
    Engagement, Erased, EventKind, EventRow, FeedCursor, FeedEvent, PositionCounts, RecommendationRow, SessionCounts,
    Stored,
};
use crate::{EmbedCandidate, Result, StoreStats, VectorDtype, WriteSummary};

/// Which engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// One embedded SQLite file.
    Sqlite,
    /// A PostgreSQL database (with pgvector).
    Postgres,
}

/// A product whose catalog entry changed after a given catalog version: upserted, embedded,
/// taken off or put back. Replicas apply these to their in-memory catalogs.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogChange {
    /// Site key.
    pub site: String,
    /// Catalog metadata (its `site` field is 0: the caller maps the key).
    pub meta: ProductMeta,
    /// Whether the product is off the served catalog.
    pub removed: bool,
    /// Its up-to-date vector under the model asked for, when there is one.
    pub vector: Option<Vec<f32>>,
    /// Catalog version of the change.
    pub version: i64,
}

/// The store contract. Reads take `&self`, writes `&mut self`; each write is one
/// transaction. Implemented by [`SqliteStore`](crate::SqliteStore) and
/// [`PgStore`](crate::PgStore); the contract tests (`crates/store/tests/contract.rs`) run the
/// same assertions against both.
pub trait StoreBackend: Send {
    /// Which engine this is.
    fn kind(&self) -> BackendKind;
    /// Where the store is: a file path, or the connection URL without its password.
    fn location(&self) -> String;
    /// Directory for trained models, indexes and other large artefacts. SQLite: beside the
    /// file (`<store>.models/`); PostgreSQL: the directory named in the database, shared by
    /// every replica.
    fn models_dir(&self) -> PathBuf;
    /// The engine's own consistency check: `"ok"`, or what is wrong.
    fn integrity_check(&self) -> Result<String>;

    /// Writes sites, products and interactions in one transaction. Products are upserted by
    /// `(site, external id)`, users by key, interactions by `(user, product, kind, time)`, so
    /// writing the same import twice changes nothing. `log` (e.g. the import report as JSON)
    /// is kept in the import log.
    fn write(
        &mut self,
        source: &str,
        sites: &[Site],
        products: &[Product],
        interactions: &[Interaction],
        log: &str,
        progress: &dyn Fn(u64),
    ) -> Result<WriteSummary>;
    /// Dataset groups present, with their sites.
    fn datasets(&self) -> Result<Vec<(String, Vec<String>)>>;
    /// Loads one dataset group (or, with `None`, every site) into memory with compact ids:
    /// sites, products and interactions in the order they were first stored.
    fn load_dataset(&self, dataset: Option<&str>) -> Result<Dataset>;
    /// Counts for `warmstart stats`.
    fn stats(&self) -> Result<StoreStats>;
    /// Number of rows in sites, products, users, interactions and imports.
    fn row_counts(&self) -> Result<[i64; 5]>;
    /// Free attributes of every product, aligned with `load_dataset(dataset)`.
    fn product_attributes(&self, dataset: Option<&str>) -> Result<Vec<Vec<(String, String)>>>;

    /// Products of a dataset (or all) with their text and whether `model` already has an
    /// up-to-date vector for them.
    fn embed_candidates(&self, model: &str, dataset: Option<&str>) -> Result<Vec<EmbedCandidate>>;
    /// Stores vectors `(product id, content hash, vector)` for `model` in one transaction, as
    /// `dtype`.
    fn put_embeddings(&mut self, model: &str, rows: &[(i64, String, Vec<f32>)], dtype: VectorDtype) -> Result<()>;
    /// Vectors of `model` aligned with `load_dataset(dataset)`.
    fn load_item_vectors(&self, model: &str, dataset: Option<&str>) -> Result<ItemVectors>;

    /// Store ids and content hashes of products by site key and external id (`None` for
    /// unknown ones), in the order asked.
    fn product_rows(&self, site: &str, external_ids: &[String]) -> Result<Vec<Option<(i64, String)>>>;
    /// Takes products off the served catalog (they stay in the store, with their
    /// interactions); returns how many of `external_ids` exist. One transaction.
    fn remove_products(&mut self, site: &str, external_ids: &[String]) -> Result<usize>;
    /// Puts removed products back on the served catalog.
    fn restore_products(&mut self, site: &str, external_ids: &[String]) -> Result<()>;
    /// (site key, external id) of the removed products of a dataset group (all when `None`).
    fn removed_products(&self, dataset: Option<&str>) -> Result<Vec<(String, String)>>;

    /// The catalog version: it grows with every transaction that changes what a product
    /// serves as (its content, its vectors, whether it is removed).
    fn catalog_version(&self) -> Result<i64>;
    /// Products of `dataset` changed after catalog version `after`, oldest change first, with
    /// their vectors under `model`.
    fn catalog_changes(&self, dataset: &str, after: i64, model: Option<&str>) -> Result<Vec<CatalogChange>>;

    /// The secret `name` when it exists.
    fn get_secret(&self, name: &str) -> Result<Option<[u8; 32]>>;
    /// Stores `fresh` as secret `name` unless one exists (another process may have won the
    /// race) and returns the stored one.
    fn secret_or_insert(&mut self, name: &str, fresh: [u8; 32]) -> Result<[u8; 32]>;
    /// Records served lists (ids already unique; a repeated id is ignored).
    fn record_recommendations(&mut self, rows: &[RecommendationRow]) -> Result<()>;
    /// A served list by id.
    fn recommendation(&self, id: &str) -> Result<Option<RecommendationRow>>;
    /// Stores events in one transaction, each counted once: a repeated idempotency key, or
    /// an item of a list already shown/clicked/carted/bought, is a duplicate.
    fn insert_events(&mut self, rows: &[EventRow]) -> Result<Vec<Stored>>;
    /// Whether item `product` of list `recommendation` has an event of `kind`.
    fn has_event(&self, recommendation: &str, kind: EventKind, product: &str) -> Result<bool>;
    /// Whether an event with this idempotency key was stored.
    fn has_event_key(&self, key: &str) -> Result<bool>;
    /// Erases everything stored under a (hashed) session: events, lists and keys.
    fn delete_session(&mut self, session: &str) -> Result<Erased>;
    /// Erases events, lists and keys older than `before` (unix seconds).
    fn purge_events(&mut self, before: i64) -> Result<Erased>;
    /// How many rows each table holds for a (hashed) session.
    fn session_rows(&self, session: &str) -> Result<Erased>;
    /// (variant, sessions, lists) served in an experiment.
    fn experiment_assignments(&self, experiment: &str) -> Result<Vec<(String, u64, u64)>>;
    /// Per-session event counts of an experiment, by variant.
    fn experiment_sessions(&self, experiment: &str) -> Result<Vec<SessionCounts>>;
    /// Impressions and clicks by variant and position.
    fn experiment_positions(&self, experiment: &str) -> Result<Vec<PositionCounts>>;
    /// (experiment, variant, kind, count) over the event rows with ids up to `up_to`.
    fn variant_event_counts(&self, up_to: i64) -> Result<Vec<(String, String, EventKind, u64)>>;
    /// Clicks, carts and purchases since `since` (unix seconds) with row ids up to `up_to`,
    /// oldest first.
    fn recent_engagement(&self, since: i64, up_to: i64) -> Result<Vec<Engagement>>;
    /// The end of the event feed now: the last event row and the last erasure. Event rows and
    /// erasures get increasing ids in commit order (writers serialise), so everything at or
    /// before the cursor is committed and everything after it is new.
    fn feed_cursor(&self) -> Result<FeedCursor>;
    /// Up to `limit` event rows after row id `after`, in id order.
    fn events_after(&self, after: i64, limit: usize) -> Result<Vec<FeedEvent>>;
    /// Sessions erased after erasure id `after`: (erasure id, hashed session), in id order.
    fn erasures_after(&self, after: i64) -> Result<Vec<(i64, String)>>;
    /// Forgets erasure records older than `before` (unix seconds): once every replica has
    /// read them they only hold a hash that names nothing.
    fn prune_erasures(&mut self, before: i64) -> Result<usize>;

    /// Streams every row of `table` in key order, in chunks, to `sink`.
    fn dump_table(&self, table: Table, sink: &mut dyn FnMut(Vec<Row>) -> Result<()>) -> Result<()>;
    /// Whether the store holds nothing (a copy's destination must be empty).
    fn is_empty(&self) -> Result<bool>;
    /// Appends rows dumped from another store, keeping their ids (one transaction per call).
    fn load_rows(&mut self, table: Table, rows: &[Row]) -> Result<()>;
    /// After loading: moves id sequences and the catalog version past the loaded rows.
    fn finish_load(&mut self) -> Result<()>;
}
