//! Schema and migrations.

use rusqlite::Connection;

/// Current schema version (`PRAGMA user_version`).
pub const VERSION: i64 = 2;

pub(crate) enum MigrateError {
    Sqlite(rusqlite::Error),
    Version(i64),
}

impl From<rusqlite::Error> for MigrateError {
    fn from(e: rusqlite::Error) -> Self {
        MigrateError::Sqlite(e)
    }
}

const V1: &str = "
CREATE TABLE sites(
  id INTEGER PRIMARY KEY,
  key TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  dataset TEXT NOT NULL
);
CREATE TABLE products(
  id INTEGER PRIMARY KEY,
  site_id INTEGER NOT NULL REFERENCES sites(id),
  external_id TEXT NOT NULL,
  title TEXT NOT NULL,
  description TEXT,
  brand TEXT,
  category TEXT,
  price REAL,
  currency TEXT,
  price_usd REAL,
  image TEXT,
  attributes TEXT NOT NULL DEFAULT '{}',
  missing INTEGER NOT NULL,
  content_hash TEXT NOT NULL,
  UNIQUE(site_id, external_id)
);
CREATE TABLE users(
  id INTEGER PRIMARY KEY,
  key TEXT NOT NULL UNIQUE
);
CREATE TABLE interactions(
  id INTEGER PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users(id),
  product_id INTEGER NOT NULL REFERENCES products(id),
  kind INTEGER NOT NULL,
  value REAL,
  text TEXT,
  time_kind INTEGER NOT NULL,   -- 0 none, 1 unix seconds, 2 sequence position
  time INTEGER NOT NULL,
  split INTEGER NOT NULL,       -- 0 train, 1 valid, 2 test
  UNIQUE(user_id, product_id, kind, time_kind, time)
);
CREATE INDEX interactions_product ON interactions(product_id);
CREATE TABLE imports(
  id INTEGER PRIMARY KEY,
  source TEXT NOT NULL,
  at INTEGER NOT NULL,
  summary TEXT NOT NULL,
  report TEXT NOT NULL
);
-- Content vectors, keyed by model and the product content hash they were computed from,
-- so that re-embedding only touches changed products.
CREATE TABLE embeddings(
  product_id INTEGER NOT NULL REFERENCES products(id),
  model TEXT NOT NULL,
  content_hash TEXT NOT NULL,
  dim INTEGER NOT NULL,
  dtype TEXT NOT NULL,          -- f32 or f16, little endian
  vector BLOB NOT NULL,
  PRIMARY KEY(product_id, model)
);
";

/// Version 2: products taken off a live catalog (`DELETE /v1/sites/{site}/products`) stay in
/// the store (their interactions still train models) but are never served.
const V2: &str = "
CREATE TABLE removed_products(
  product_id INTEGER PRIMARY KEY REFERENCES products(id),
  at INTEGER NOT NULL
);
";

pub(crate) fn migrate(conn: &mut Connection) -> Result<(), MigrateError> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if v > VERSION {
        return Err(MigrateError::Version(v));
    }
    if v < 2 {
        let tx = conn.transaction()?;
        if v < 1 {
            tx.execute_batch(V1)?;
        }
        tx.execute_batch(V2)?;
        tx.pragma_update(None, "user_version", VERSION)?;
        tx.commit()?;
    }
    Ok(())
}
