//! Where warmstart keeps everything: sites, products, users, interactions, an import log,
//! content vectors, and the online loop's served lists and events. Two backends implement one
//! contract, [`StoreBackend`]: an embedded SQLite file (the default) and PostgreSQL with
//! pgvector (for several stateless `warmstart serve` replicas on one database). Trained
//! models live in a directory the store names ([`StoreBackend::models_dir`]).
//!
//! Every import is one transaction: it lands whole or not at all.

mod backend;
pub mod dump;
mod embeddings;
pub mod events;
mod postgres;
mod rows;
mod sqlite;
mod stats;

pub use backend::{BackendKind, CatalogChange, StoreBackend};
pub use embeddings::{EmbedCandidate, VectorDtype};
pub use postgres::scratch::{test_server, TempDatabase};
pub use postgres::{redact_url, PgStore, PgVectorSearch};
pub use sqlite::SqliteStore;
pub use stats::{DatasetStats, SiteStats, StoreStats};

use std::path::{Path, PathBuf};

use warmstart_core::Product;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The SQLite database reported an error.
    #[error("store {path}: {source}")]
    Sqlite {
        /// Store file.
        path: PathBuf,
        /// Cause.
        source: rusqlite::Error,
    },
    /// The PostgreSQL database reported an error.
    #[error("store {location}: {source}")]
    Postgres {
        /// Connection string without its password.
        location: String,
        /// Cause.
        source: ::postgres::Error,
    },
    /// The store directory could not be created.
    #[error("store {path}: {source}")]
    Io {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The database is not a warmstart store or has a newer schema.
    #[error("store {path}: {message}")]
    Schema {
        /// Store file or connection string.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A dataset or site named by the caller is not in the store.
    #[error("store has no {what} `{name}` (have: {have})")]
    NotFound {
        /// Kind of thing.
        what: &'static str,
        /// Name asked for.
        name: String,
        /// Names present.
        have: String,
    },
    /// An import names a site that belongs to another dataset group (nothing was written).
    #[error(
        "site `{site}` belongs to dataset `{stored}`, not `{import}`: nothing was written \
         (import into `{stored}` with --dataset {stored}, or use another site key)"
    )]
    SiteConflict {
        /// Site key.
        site: String,
        /// Dataset group the store has it in.
        stored: String,
        /// Dataset group of the import.
        import: String,
    },
    /// An argument is out of range (nothing was done).
    #[error("{0}")]
    Invalid(String),
    /// A copy between stores was refused (nothing was written).
    #[error("copy refused: {0}")]
    Copy(String),
    /// Stored data failed the core checks.
    #[error(transparent)]
    Core(#[from] warmstart_core::Error),
}

/// Result alias for the store crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What writing an import changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct WriteSummary {
    /// Sites created.
    pub sites_created: u64,
    /// Products inserted.
    pub products_inserted: u64,
    /// Products whose content changed and was updated.
    pub products_updated: u64,
    /// Products already stored as they are.
    pub products_unchanged: u64,
    /// Users created.
    pub users_created: u64,
    /// Interactions inserted.
    pub interactions_inserted: u64,
    /// Interactions already stored.
    pub interactions_existing: u64,
    /// Interactions skipped because their product is in neither the import nor the store.
    pub interactions_unknown_product: u64,
    /// First few unknown products, `site/id`.
    pub unknown_product_examples: Vec<String>,
}

/// An open store: one of the backends behind the [`StoreBackend`] contract. Every method of
/// the contract is called on it directly (`store.load_dataset(..)`).
pub struct Store {
    inner: Box<dyn StoreBackend>,
}

/// Default store location: `$WARMSTART_STORE` (a path or a `postgres://` URL) when set,
/// else `$WARMSTART_HOME/store.sqlite`, else `$XDG_DATA_HOME/warmstart/store.sqlite`, else
/// `~/.local/share/warmstart/store.sqlite`.
pub fn default_store_path() -> PathBuf {
    match std::env::var_os("WARMSTART_STORE") {
        Some(s) if !s.is_empty() => PathBuf::from(s),
        _ => home_dir().join("store.sqlite"),
    }
}

pub use warmstart_core::paths::home_dir;

/// Whether a store location is a PostgreSQL connection URL rather than a file path.
pub fn is_postgres_url(location: &str) -> bool {
    location.starts_with("postgres://") || location.starts_with("postgresql://")
}

/// Hex FNV-1a hash of the product content that embeddings depend on.
pub fn content_hash(p: &Product) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    let mut feed = |s: &str| {
        for b in s.bytes().chain(std::iter::once(0xff)) {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
    };
    feed(&p.title);
    feed(p.description.as_deref().unwrap_or(""));
    feed(p.brand.as_deref().unwrap_or(""));
    feed(&p.category_path());
    feed(p.image.as_ref().map(|i| i.0.as_str()).unwrap_or(""));
    if let Some(pr) = p.price {
        feed(&format!("{}{}", pr.amount, pr.currency_code()));
    }
    for (k, v) in &p.attributes {
        feed(k);
        feed(v);
    }
    format!("{h:016x}")
}

impl Store {
    /// Opens (creating if needed) the store at `location`: a `postgres://` or
    /// `postgresql://` URL opens PostgreSQL (migrating its schema), anything else is the path
    /// of an SQLite file.
    pub fn open(location: &Path) -> Result<Store> {
        match location.to_str() {
            Some(url) if is_postgres_url(url) => Ok(Store { inner: Box::new(PgStore::open(url)?) }),
            _ => Ok(Store { inner: Box::new(SqliteStore::open(location)?) }),
        }
    }

    /// The store-wide secret `name`, created from `fresh` the first time it is asked for (and
    /// then the same for every process on this store).
    pub fn secret(&mut self, name: &str, fresh: impl FnOnce() -> [u8; 32]) -> Result<[u8; 32]> {
        if let Some(v) = self.inner.get_secret(name)? {
            return Ok(v);
        }
        self.inner.secret_or_insert(name, fresh())
    }
}

impl std::ops::Deref for Store {
    type Target = dyn StoreBackend;
    fn deref(&self) -> &Self::Target {
        &*self.inner
    }
}

impl std::ops::DerefMut for Store {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut *self.inner
    }
}

/// Copies every table of `from` into the empty store `to`, keeping ids, then moves `to`'s id
/// sequences and catalog version past the copied rows. `progress(table, rows so far)` is
/// called after each chunk. Returns the number of rows copied. The copy is not one
/// transaction: when it fails part way, empty the destination and run it again.
pub fn copy_store(from: &Store, to: &mut Store, progress: &dyn Fn(dump::Table, u64)) -> Result<u64> {
    if !to.is_empty()? {
        return Err(Error::Copy(format!(
            "{} is not empty: a copy goes into a new store (drop and recreate the database, or pick a new file)",
            to.location()
        )));
    }
    let mut total = 0u64;
    for table in dump::Table::ALL {
        let mut n = 0u64;
        from.dump_table(table, &mut |rows| {
            to.load_rows(table, &rows)?;
            n += rows.len() as u64;
            progress(table, n);
            Ok(())
        })?;
        total += n;
    }
    to.finish_load()?;
    Ok(total)
}

fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests;
