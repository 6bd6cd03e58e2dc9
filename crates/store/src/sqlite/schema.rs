//! Schema and migrations.

use rusqlite::Connection;

/// Current schema version (`PRAGMA user_version`).
pub const VERSION: i64 = 5;

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

/// Version 3: the online loop. Every served recommendation (its shown items, model and
/// experiment variant — never the shopper's history), feedback events on them, the
/// idempotency keys of event batches, and store-wide secrets (the key that hashes session
/// ids: a raw session id is never stored).
const V3: &str = "
CREATE TABLE secrets(
  name TEXT PRIMARY KEY,
  value BLOB NOT NULL
);
CREATE TABLE recommendations(
  id TEXT PRIMARY KEY,
  session TEXT,                 -- keyed hash of the session id, when the request had one
  site TEXT NOT NULL,
  model TEXT NOT NULL,
  experiment TEXT,
  variant TEXT,
  items TEXT NOT NULL,          -- JSON array of the shown product ids, best first
  at INTEGER NOT NULL
);
CREATE INDEX recommendations_session ON recommendations(session) WHERE session IS NOT NULL;
CREATE INDEX recommendations_at ON recommendations(at);
CREATE INDEX recommendations_experiment ON recommendations(experiment, variant) WHERE experiment IS NOT NULL;
CREATE TABLE event_keys(
  key TEXT PRIMARY KEY,
  session TEXT NOT NULL,
  at INTEGER NOT NULL
);
CREATE INDEX event_keys_session ON event_keys(session);
CREATE INDEX event_keys_at ON event_keys(at);
CREATE TABLE events(
  id INTEGER PRIMARY KEY,
  key TEXT NOT NULL,
  session TEXT NOT NULL,
  kind INTEGER NOT NULL,        -- 0 impression, 1 click, 2 cart, 3 purchase
  recommendation TEXT,
  experiment TEXT,
  variant TEXT,
  site TEXT NOT NULL,
  product TEXT NOT NULL,
  position INTEGER,
  at INTEGER NOT NULL
);
-- an item of a recommendation is shown, clicked, carted and bought at most once
CREATE UNIQUE INDEX events_once ON events(recommendation, kind, product) WHERE recommendation IS NOT NULL;
CREATE INDEX events_session ON events(session);
CREATE INDEX events_at ON events(at);
CREATE INDEX events_experiment ON events(experiment, variant, session) WHERE experiment IS NOT NULL;
";

/// Version 4: replicas. A catalog version that every catalog-changing transaction bumps
/// (kept in `settings`), stamped on the products it changed, so that other `serve` processes
/// on the same store pick up exactly what changed.
const V4: &str = "
CREATE TABLE settings(
  name TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
INSERT INTO settings(name, value) VALUES ('catalog_version', '0');
ALTER TABLE products ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
CREATE INDEX products_version ON products(version);
";

/// Version 5: replicas follow each other's events. Erased sessions are recorded (hash only,
/// pruned after an hour) so that every process forgets them from memory too.
const V5: &str = "
CREATE TABLE erasures(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  session TEXT NOT NULL,        -- keyed hash of the erased session id
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
    if v < VERSION {
        let tx = super::begin_write(conn)?;
        // another process may have migrated while this one waited for the write lock
        let v: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if v < 1 {
            tx.execute_batch(V1)?;
        }
        if v < 2 {
            tx.execute_batch(V2)?;
        }
        if v < 3 {
            tx.execute_batch(V3)?;
        }
        if v < 4 {
            tx.execute_batch(V4)?;
        }
        if v < 5 {
            tx.execute_batch(V5)?;
        }
        tx.pragma_update(None, "user_version", VERSION)?;
        tx.commit()?;
    }
    Ok(())
}
