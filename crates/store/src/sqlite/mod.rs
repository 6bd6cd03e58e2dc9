//! The embedded backend: one SQLite file (bundled library) in WAL mode; trained models live
//! in a directory beside it (`<store>.models/`).

mod dump;
mod embeddings;
mod events;
mod import;
mod schema;
mod stats;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use warmstart_core::{Dataset, Interaction, ItemVectors, Product, Site};

use crate::backend::{BackendKind, CatalogChange, StoreBackend};
use crate::dump::{Row, Table};
use crate::events::{
    Engagement, Erased, EventKind, EventRow, FeedCursor, FeedEvent, PositionCounts, RecommendationRow, SessionCounts,
    Stored,
};
use crate::rows::{
    check_dataset, group_sites, time_cols, DatasetAssembler, InteractionDbRow, ProductRow, StoredProduct,
};
use crate::{content_hash, now_secs, EmbedCandidate, Error, Result, StoreStats, VectorDtype, WriteSummary};

/// A store in one SQLite file.
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
}

/// Begins a writing transaction that takes SQLite's write lock at once (`BEGIN IMMEDIATE`):
/// a deferred one that reads first fails with `SQLITE_BUSY` at its first write, whatever the
/// busy timeout, when another connection (the service's event writer, another replica)
/// committed in between.
pub(crate) fn begin_write(conn: &mut Connection) -> rusqlite::Result<Transaction<'_>> {
    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
}

/// Takes the next catalog version (inside the writing transaction).
fn bump_catalog_version(tx: &Transaction<'_>) -> rusqlite::Result<i64> {
    tx.query_row(
        "UPDATE settings SET value = CAST(value AS INTEGER) + 1 WHERE name = 'catalog_version' RETURNING CAST(value AS INTEGER)",
        [],
        |r| r.get(0),
    )
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::Io { path: dir.into(), source: e })?;
        }
        let conn = Connection::open(path).map_err(|e| Error::Sqlite { path: path.into(), source: e })?;
        // the service writes catalog changes and feedback events on two connections
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(|e| Error::Sqlite { path: path.into(), source: e })?;
        let mut store = SqliteStore { conn, path: path.to_path_buf() };
        schema::migrate(&mut store.conn).map_err(|e| store.schema_err(e))?;
        Ok(store)
    }

    fn schema_err(&self, e: schema::MigrateError) -> Error {
        match e {
            schema::MigrateError::Sqlite(e) => self.err(e),
            schema::MigrateError::Version(v) => Error::Schema {
                path: self.path.clone(),
                message: format!("schema version {v} is newer than this warmstart understands ({})", schema::VERSION),
            },
        }
    }

    fn err(&self, e: rusqlite::Error) -> Error {
        let message = e.to_string();
        if message.contains("file is not a database") {
            return Error::Schema {
                path: self.path.clone(),
                message: "not a warmstart store (not an SQLite database)".into(),
            };
        }
        Error::Sqlite { path: self.path.clone(), source: e }
    }

    /// Path of the store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn set_removed(&mut self, site: &str, external_ids: &[String], removed: bool) -> Result<usize> {
        let rows = self.product_rows(site, external_ids)?;
        let now = now_secs();
        let path = self.path.clone();
        let err = |e| Error::Sqlite { path: path.clone(), source: e };
        let tx = begin_write(&mut self.conn).map_err(err)?;
        let version = bump_catalog_version(&tx).map_err(err)?;
        let mut found = 0;
        for (id, _) in rows.iter().flatten() {
            if removed {
                tx.execute("INSERT OR REPLACE INTO removed_products(product_id, at) VALUES (?1, ?2)", params![id, now])
                    .map_err(err)?;
            } else {
                tx.execute("DELETE FROM removed_products WHERE product_id = ?1", params![id]).map_err(err)?;
            }
            tx.execute("UPDATE products SET version = ?2 WHERE id = ?1", params![id, version]).map_err(err)?;
            found += 1;
        }
        tx.commit().map_err(err)?;
        Ok(found)
    }
}

/// The columns `id, external_id, title, brand, category, price_usd, image` from `at` on.
fn product_row(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<ProductRow> {
    Ok(ProductRow {
        id: r.get(at)?,
        external_id: r.get(at + 1)?,
        title: r.get(at + 2)?,
        brand: r.get(at + 3)?,
        category: r.get(at + 4)?,
        price_usd: r.get(at + 5)?,
        image: r.get(at + 6)?,
    })
}

impl StoreBackend for SqliteStore {
    fn kind(&self) -> BackendKind {
        BackendKind::Sqlite
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn models_dir(&self) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(".models");
        PathBuf::from(p)
    }

    fn integrity_check(&self) -> Result<String> {
        let rows: Vec<String> = self
            .conn
            .prepare("PRAGMA integrity_check")
            .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
            .map_err(|e| self.err(e))?;
        Ok(rows.join("; "))
    }

    fn write(
        &mut self,
        source: &str,
        sites: &[Site],
        products: &[Product],
        interactions: &[Interaction],
        log: &str,
        progress: &dyn Fn(u64),
    ) -> Result<WriteSummary> {
        import::write(self, source, sites, products, interactions, log, progress)
    }

    fn datasets(&self) -> Result<Vec<(String, Vec<String>)>> {
        let mut q =
            self.conn.prepare("SELECT dataset, key FROM sites ORDER BY dataset, id").map_err(|e| self.err(e))?;
        let rows = q
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .and_then(|it| it.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| self.err(e))?;
        Ok(group_sites(rows))
    }

    fn load_dataset(&self, dataset: Option<&str>) -> Result<Dataset> {
        let e = |x| self.err(x);
        check_dataset(&self.datasets()?, dataset)?;
        let mut b = DatasetAssembler::default();
        let mut sites = self
            .conn
            .prepare("SELECT id, key, name, dataset FROM sites WHERE ?1 IS NULL OR dataset = ?1 ORDER BY id")
            .map_err(e)?;
        let site_rows: Vec<(i64, String, String, String)> = sites
            .query_map([dataset], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .map_err(e)?
            .collect::<std::result::Result<_, _>>()
            .map_err(e)?;
        let mut pq = self
            .conn
            .prepare("SELECT id, external_id, title, brand, category, price_usd, image FROM products WHERE site_id = ?1 ORDER BY id")
            .map_err(e)?;
        for (sid, key, name, ds) in &site_rows {
            b.site(key, name, ds);
            let rows = pq.query_map([sid], |r| product_row(r, 0)).map_err(e)?;
            for row in rows {
                b.product(row.map_err(e)?);
            }
        }
        let mut iq = self
            .conn
            .prepare(
                "SELECT i.user_id, u.key, i.product_id, i.kind, i.value, i.time_kind, i.time, i.split
                 FROM interactions i JOIN users u ON u.id = i.user_id JOIN products p ON p.id = i.product_id JOIN sites s ON s.id = p.site_id
                 WHERE ?1 IS NULL OR s.dataset = ?1 ORDER BY i.id",
            )
            .map_err(e)?;
        let rows = iq
            .query_map([dataset], |r| {
                Ok(InteractionDbRow {
                    user_id: r.get(0)?,
                    user_key: r.get(1)?,
                    product_id: r.get(2)?,
                    kind: r.get(3)?,
                    value: r.get(4)?,
                    time_kind: r.get(5)?,
                    time: r.get(6)?,
                    split: r.get(7)?,
                })
            })
            .map_err(e)?;
        for row in rows {
            b.interaction(row.map_err(e)?);
        }
        b.finish()
    }

    fn stats(&self) -> Result<StoreStats> {
        stats::compute(&self.conn, &self.path).map_err(|e| self.err(e))
    }

    fn row_counts(&self) -> Result<[i64; 5]> {
        let mut out = [0i64; 5];
        for (i, t) in ["sites", "products", "users", "interactions", "imports"].iter().enumerate() {
            out[i] =
                self.conn.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0)).map_err(|e| self.err(e))?;
        }
        Ok(out)
    }

    fn product_attributes(&self, dataset: Option<&str>) -> Result<Vec<Vec<(String, String)>>> {
        let e = |x| self.err(x);
        let mut q = self
            .conn
            .prepare(
                "SELECT p.attributes FROM sites s JOIN products p ON p.site_id = s.id
                 WHERE ?1 IS NULL OR s.dataset = ?1 ORDER BY s.id, p.id",
            )
            .map_err(e)?;
        let rows = q.query_map([dataset], |r| Ok(crate::rows::parse_attributes(&r.get::<_, String>(0)?))).map_err(e)?;
        rows.collect::<std::result::Result<_, _>>().map_err(e)
    }

    fn embed_candidates(&self, model: &str, dataset: Option<&str>) -> Result<Vec<EmbedCandidate>> {
        embeddings::candidates(&self.conn, model, dataset).map_err(|e| self.err(e))
    }

    fn put_embeddings(&mut self, model: &str, rows: &[(i64, String, Vec<f32>)], dtype: VectorDtype) -> Result<()> {
        let path = self.path.clone();
        embeddings::put(&mut self.conn, model, rows, dtype).map_err(|e| Error::Sqlite { path, source: e })
    }

    fn load_item_vectors(&self, model: &str, dataset: Option<&str>) -> Result<ItemVectors> {
        embeddings::load(&self.conn, model, dataset).map_err(|e| self.err(e))
    }

    fn product_rows(&self, site: &str, external_ids: &[String]) -> Result<Vec<Option<(i64, String)>>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT p.id, p.content_hash FROM products p JOIN sites s ON s.id = p.site_id
                 WHERE s.key = ?1 AND p.external_id = ?2",
            )
            .map_err(|e| self.err(e))?;
        external_ids
            .iter()
            .map(|id| {
                stmt.query_row(params![site, id], |r| Ok((r.get(0)?, r.get(1)?))).optional().map_err(|e| self.err(e))
            })
            .collect()
    }

    fn remove_products(&mut self, site: &str, external_ids: &[String]) -> Result<usize> {
        self.set_removed(site, external_ids, true)
    }

    fn restore_products(&mut self, site: &str, external_ids: &[String]) -> Result<()> {
        self.set_removed(site, external_ids, false).map(|_| ())
    }

    fn removed_products(&self, dataset: Option<&str>) -> Result<Vec<(String, String)>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT s.key, p.external_id FROM removed_products r JOIN products p ON p.id = r.product_id
                 JOIN sites s ON s.id = p.site_id WHERE ?1 IS NULL OR s.dataset = ?1 ORDER BY s.key, p.external_id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt.query_map(params![dataset], |r| Ok((r.get(0)?, r.get(1)?))).map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(|e| self.err(e))
    }

    fn catalog_version(&self) -> Result<i64> {
        self.conn
            .query_row("SELECT CAST(value AS INTEGER) FROM settings WHERE name = 'catalog_version'", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    fn catalog_changes(&self, dataset: &str, after: i64, model: Option<&str>) -> Result<Vec<CatalogChange>> {
        let e = |x| self.err(x);
        let mut q = self
            .conn
            .prepare(
                "SELECT s.key, p.id, p.external_id, p.title, p.brand, p.category, p.price_usd, p.image,
                        r.product_id IS NOT NULL, e.dim, e.dtype, e.vector, p.version
                 FROM products p JOIN sites s ON s.id = p.site_id
                 LEFT JOIN removed_products r ON r.product_id = p.id
                 LEFT JOIN embeddings e ON e.product_id = p.id AND e.model = ?3 AND e.content_hash = p.content_hash
                 WHERE s.dataset = ?1 AND p.version > ?2 ORDER BY p.version, p.id",
            )
            .map_err(e)?;
        let rows = q
            .query_map(params![dataset, after, model], |r| {
                let dim: Option<i64> = r.get(9)?;
                let dtype: Option<String> = r.get(10)?;
                let blob: Option<Vec<u8>> = r.get(11)?;
                let vector = match (dim, dtype, blob) {
                    (Some(d), Some(t), Some(b)) => {
                        let mut v = Vec::with_capacity(d as usize);
                        crate::embeddings::decode(&b, d as usize, &t, &mut v).then_some(v)
                    }
                    _ => None,
                };
                Ok(CatalogChange {
                    site: r.get(0)?,
                    meta: product_row(r, 1)?.meta(0),
                    removed: r.get(8)?,
                    vector,
                    version: r.get(12)?,
                })
            })
            .map_err(e)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(e)
    }

    fn get_secret(&self, name: &str) -> Result<Option<[u8; 32]>> {
        events::get_secret(self, name)
    }

    fn secret_or_insert(&mut self, name: &str, fresh: [u8; 32]) -> Result<[u8; 32]> {
        events::secret_or_insert(self, name, fresh)
    }

    fn record_recommendations(&mut self, rows: &[RecommendationRow]) -> Result<()> {
        events::record_recommendations(self, rows)
    }

    fn recommendation(&self, id: &str) -> Result<Option<RecommendationRow>> {
        events::recommendation(self, id)
    }

    fn insert_events(&mut self, rows: &[EventRow]) -> Result<Vec<Stored>> {
        events::insert_events(self, rows)
    }

    fn has_event(&self, recommendation: &str, kind: EventKind, product: &str) -> Result<bool> {
        events::has_event(self, recommendation, kind, product)
    }

    fn has_event_key(&self, key: &str) -> Result<bool> {
        events::has_event_key(self, key)
    }

    fn delete_session(&mut self, session: &str) -> Result<Erased> {
        events::delete_session(self, session)
    }

    fn purge_events(&mut self, before: i64) -> Result<Erased> {
        events::purge_events(self, before)
    }

    fn session_rows(&self, session: &str) -> Result<Erased> {
        events::session_rows(self, session)
    }

    fn experiment_assignments(&self, experiment: &str) -> Result<Vec<(String, u64, u64)>> {
        events::experiment_assignments(self, experiment)
    }

    fn experiment_sessions(&self, experiment: &str) -> Result<Vec<SessionCounts>> {
        events::experiment_sessions(self, experiment)
    }

    fn experiment_positions(&self, experiment: &str) -> Result<Vec<PositionCounts>> {
        events::experiment_positions(self, experiment)
    }

    fn variant_event_counts(&self, up_to: i64) -> Result<Vec<(String, String, EventKind, u64)>> {
        events::variant_event_counts(self, up_to)
    }

    fn recent_engagement(&self, since: i64, up_to: i64) -> Result<Vec<Engagement>> {
        events::recent_engagement(self, since, up_to)
    }

    fn feed_cursor(&self) -> Result<FeedCursor> {
        events::feed_cursor(self)
    }

    fn events_after(&self, after: i64, limit: usize) -> Result<Vec<FeedEvent>> {
        events::events_after(self, after, limit)
    }

    fn erasures_after(&self, after: i64) -> Result<Vec<(i64, String)>> {
        events::erasures_after(self, after)
    }

    fn prune_erasures(&mut self, before: i64) -> Result<usize> {
        events::prune_erasures(self, before)
    }

    fn dump_table(&self, table: Table, sink: &mut dyn FnMut(Vec<Row>) -> Result<()>) -> Result<()> {
        dump::dump_table(self, table, sink)
    }

    fn is_empty(&self) -> Result<bool> {
        let counts = self.row_counts()?;
        let events: i64 = self
            .conn
            .query_row("SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM recommendations)", [], |r| {
                r.get(0)
            })
            .map_err(|e| self.err(e))?;
        Ok(counts.iter().all(|&n| n == 0) && events == 0)
    }

    fn load_rows(&mut self, table: Table, rows: &[Row]) -> Result<()> {
        dump::load_rows(self, table, rows)
    }

    fn finish_load(&mut self) -> Result<()> {
        dump::finish_load(self)
    }
}
