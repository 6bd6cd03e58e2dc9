//! The PostgreSQL backend (with pgvector): the store for several stateless `warmstart serve`
//! replicas on one database. Same contract and results as SQLite; bulk imports go through
//! binary `COPY` into staging tables and one set-based upsert per table.

mod dump;
mod events;
mod schema;
pub mod scratch;
mod stats;
mod vectors;
pub use vectors::PgVectorSearch;
mod write;

use std::cell::RefCell;
use std::path::PathBuf;

use postgres::{Client, NoTls};
use warmstart_core::{Dataset, Interaction, ItemVectors, Product, Site};

use crate::backend::{BackendKind, CatalogChange, StoreBackend};
use crate::dump::{Row, Table};
use crate::embeddings::{decode, encode, VectorsBuilder};
use crate::events::{
    Engagement, Erased, EventKind, EventRow, FeedCursor, FeedEvent, PositionCounts, RecommendationRow, SessionCounts,
    Stored,
};
use crate::rows::{check_dataset, group_sites, parse_attributes, DatasetAssembler, InteractionDbRow, ProductRow};
use crate::{EmbedCandidate, Error, Result, StoreStats, VectorDtype, WriteSummary};

/// A store in a PostgreSQL database. One connection; reads borrow it too (the contract's
/// reads take `&self`), so a `PgStore` is used from one thread at a time, like SQLite's.
pub struct PgStore {
    /// `None` only while dropping.
    client: RefCell<Option<Client>>,
    location: String,
    models_dir: PathBuf,
}

/// The URL with its password replaced by `***` (for messages and logs).
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let (auth, host) = match rest.rsplit_once('@') {
        Some((a, h)) => (a, h),
        None => return url.to_string(),
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

/// Default directory for a database's trained models: `$WARMSTART_MODELS_DIR` when set when
/// the database is first used, else `<warmstart home>/postgres/<host_port_db>.models`.
fn default_models_dir(location: &str) -> PathBuf {
    if let Some(d) = std::env::var_os("WARMSTART_MODELS_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let tail = location.split_once("://").map(|x| x.1).unwrap_or(location);
    let tail = tail.rsplit_once('@').map(|x| x.1).unwrap_or(tail);
    let tail = tail.split('?').next().unwrap_or(tail);
    let slug: String = tail.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    crate::home_dir().join("postgres").join(format!("{slug}.models"))
}

impl PgStore {
    /// Connects to `url` and brings the schema up to date (creating the pgvector extension
    /// when it is missing).
    pub fn open(url: &str) -> Result<PgStore> {
        let location = redact_url(url);
        let mut client =
            Client::connect(url, NoTls).map_err(|e| Error::Postgres { location: location.clone(), source: e })?;
        let err = |e| Error::Postgres { location: location.clone(), source: e };
        let mut tx = client.transaction().map_err(err)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&schema::MIGRATE_LOCK]).map_err(err)?;
        let has_vector: bool = tx
            .query_one("SELECT EXISTS(SELECT 1 FROM pg_available_extensions WHERE name = 'vector')", &[])
            .map_err(err)?
            .get(0);
        if !has_vector {
            return Err(Error::Schema {
                path: location.clone().into(),
                message: "the pgvector extension is not installed on this server (warmstart keeps vectors in \
                          pgvector columns; install pgvector, or use the `pgserver` package's PostgreSQL)"
                    .into(),
            });
        }
        tx.batch_execute("CREATE EXTENSION IF NOT EXISTS vector").map_err(err)?;
        let exists: bool = tx
            .query_one(
                "SELECT EXISTS(SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'settings')",
                &[],
            )
            .map_err(err)?
            .get(0);
        let version: i64 = if exists {
            tx.query_opt("SELECT value::bigint FROM settings WHERE name = 'schema_version'", &[])
                .map_err(err)?
                .map(|r| r.get(0))
                .unwrap_or(0)
        } else {
            0
        };
        if version > schema::VERSION {
            return Err(Error::Schema {
                path: location.clone().into(),
                message: format!(
                    "schema version {version} is newer than this warmstart understands ({})",
                    schema::VERSION
                ),
            });
        }
        if version < 1 {
            tx.batch_execute(schema::V1).map_err(err)?;
            let dir = default_models_dir(&location);
            tx.execute(
                "INSERT INTO settings(name, value) VALUES ('models_dir', $1), ('schema_version', '1')",
                &[&dir.display().to_string()],
            )
            .map_err(err)?;
        }
        if version < 2 {
            tx.batch_execute(schema::V2).map_err(err)?;
        }
        if version < schema::VERSION {
            tx.execute("UPDATE settings SET value = $1 WHERE name = 'schema_version'", &[&schema::VERSION.to_string()])
                .map_err(err)?;
        }
        let models_dir: String =
            tx.query_one("SELECT value FROM settings WHERE name = 'models_dir'", &[]).map_err(err)?.get(0);
        tx.commit().map_err(err)?;
        Ok(PgStore { client: RefCell::new(Some(client)), location, models_dir: PathBuf::from(models_dir) })
    }

    fn conn(&self) -> std::cell::RefMut<'_, Client> {
        std::cell::RefMut::map(self.client.borrow_mut(), |c| c.as_mut().expect("the connection lives until drop"))
    }

    fn conn_mut(&mut self) -> &mut Client {
        self.client.get_mut().as_mut().expect("the connection lives until drop")
    }

    fn err(&self, e: postgres::Error) -> Error {
        Error::Postgres { location: self.location.clone(), source: e }
    }

    fn set_removed(&mut self, site: &str, external_ids: &[String], removed: bool) -> Result<usize> {
        let rows = self.product_rows(site, external_ids)?;
        let now = crate::now_secs();
        let location = self.location.clone();
        let err = |e| Error::Postgres { location: location.clone(), source: e };
        let client = self.conn_mut();
        let mut tx = client.transaction().map_err(err)?;
        let version = write::bump_catalog_version(&mut tx).map_err(err)?;
        let mut found = 0;
        for (id, _) in rows.iter().flatten() {
            if removed {
                tx.execute(
                    "INSERT INTO removed_products(product_id, at) VALUES ($1, $2)
                     ON CONFLICT (product_id) DO UPDATE SET at = excluded.at",
                    &[id, &now],
                )
                .map_err(err)?;
            } else {
                tx.execute("DELETE FROM removed_products WHERE product_id = $1", &[id]).map_err(err)?;
            }
            tx.execute("UPDATE products SET version = $2 WHERE id = $1", &[id, &version]).map_err(err)?;
            found += 1;
        }
        tx.commit().map_err(err)?;
        Ok(found)
    }
}

impl Drop for PgStore {
    /// The synchronous client closes its connection by blocking on its own runtime, which
    /// panics inside another (a server dropping its state on shutdown): close it on a thread
    /// of its own.
    fn drop(&mut self) {
        if let Some(client) = self.client.get_mut().take() {
            let _ = std::thread::Builder::new().name("pg-close".into()).spawn(move || drop(client)).map(|t| t.join());
        }
    }
}

/// A vector as pgvector stores it: the values `dtype` keeps (f16 rounding applied).
fn stored_vector(v: &[f32], dtype: VectorDtype) -> pgvector::Vector {
    match dtype {
        VectorDtype::F32 => pgvector::Vector::from(v.to_vec()),
        VectorDtype::F16 => {
            let mut out = Vec::with_capacity(v.len());
            decode(&encode(v, dtype), v.len(), dtype.as_str(), &mut out);
            pgvector::Vector::from(out)
        }
    }
}

/// The columns `id, external_id, title, brand, category, price_usd, image` from `at` on.
fn product_row(r: &postgres::Row, at: usize) -> ProductRow {
    ProductRow {
        id: r.get(at),
        external_id: r.get(at + 1),
        title: r.get(at + 2),
        brand: r.get(at + 3),
        category: r.get(at + 4),
        price_usd: r.get(at + 5),
        image: r.get(at + 6),
    }
}

impl StoreBackend for PgStore {
    fn kind(&self) -> BackendKind {
        BackendKind::Postgres
    }

    fn location(&self) -> String {
        self.location.clone()
    }

    fn models_dir(&self) -> PathBuf {
        self.models_dir.clone()
    }

    fn integrity_check(&self) -> Result<String> {
        let n: i64 = self
            .conn()
            .query_one(
                "SELECT count(*) FROM interactions i LEFT JOIN products p ON p.id = i.product_id WHERE p.id IS NULL",
                &[],
            )
            .map_err(|e| self.err(e))?
            .get(0);
        Ok(if n == 0 { "ok".into() } else { format!("{n} interactions without their product") })
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
        let location = self.location.clone();
        write::write(self.conn_mut(), &location, source, sites, products, interactions, log, progress)
    }

    fn datasets(&self) -> Result<Vec<(String, Vec<String>)>> {
        let rows = self
            .conn()
            .query("SELECT dataset, key FROM sites ORDER BY dataset COLLATE \"C\", id", &[])
            .map_err(|e| self.err(e))?;
        Ok(group_sites(rows.iter().map(|r| (r.get(0), r.get(1)))))
    }

    fn load_dataset(&self, dataset: Option<&str>) -> Result<Dataset> {
        check_dataset(&self.datasets()?, dataset)?;
        let mut c = self.conn();
        let e = |x| Error::Postgres { location: self.location.clone(), source: x };
        let mut b = DatasetAssembler::default();
        let site_rows = c
            .query(
                "SELECT id, key, name, dataset FROM sites WHERE $1::text IS NULL OR dataset = $1 ORDER BY id",
                &[&dataset],
            )
            .map_err(e)?;
        let pq = c
            .prepare(
                "SELECT id, external_id, title, brand, category, price_usd, image FROM products WHERE site_id = $1 ORDER BY id",
            )
            .map_err(e)?;
        for s in &site_rows {
            let sid: i64 = s.get(0);
            b.site(s.get(1), s.get(2), s.get(3));
            for r in c.query(&pq, &[&sid]).map_err(e)? {
                b.product(product_row(&r, 0));
            }
        }
        let rows = c
            .query(
                "SELECT i.user_id, u.key, i.product_id, i.kind, i.value, i.time_kind, i.time, i.split
                 FROM interactions i JOIN users u ON u.id = i.user_id JOIN products p ON p.id = i.product_id JOIN sites s ON s.id = p.site_id
                 WHERE $1::text IS NULL OR s.dataset = $1 ORDER BY i.id",
                &[&dataset],
            )
            .map_err(e)?;
        for r in rows {
            b.interaction(InteractionDbRow {
                user_id: r.get(0),
                user_key: r.get(1),
                product_id: r.get(2),
                kind: r.get(3),
                value: r.get(4),
                time_kind: r.get(5),
                time: r.get(6),
                split: r.get(7),
            });
        }
        b.finish()
    }

    fn stats(&self) -> Result<StoreStats> {
        stats::compute(&mut self.conn(), &self.location).map_err(|e| self.err(e))
    }

    fn row_counts(&self) -> Result<[i64; 5]> {
        let mut out = [0i64; 5];
        let mut c = self.conn();
        for (i, t) in ["sites", "products", "users", "interactions", "imports"].iter().enumerate() {
            out[i] = c.query_one(&format!("SELECT count(*) FROM {t}"), &[]).map_err(|e| self.err(e))?.get(0);
        }
        Ok(out)
    }

    fn product_attributes(&self, dataset: Option<&str>) -> Result<Vec<Vec<(String, String)>>> {
        let rows = self
            .conn()
            .query(
                "SELECT p.attributes FROM sites s JOIN products p ON p.site_id = s.id
                 WHERE $1::text IS NULL OR s.dataset = $1 ORDER BY s.id, p.id",
                &[&dataset],
            )
            .map_err(|e| self.err(e))?;
        Ok(rows.iter().map(|r| parse_attributes(r.get(0))).collect())
    }

    fn embed_candidates(&self, model: &str, dataset: Option<&str>) -> Result<Vec<EmbedCandidate>> {
        let rows = self
            .conn()
            .query(
                "SELECT p.id, p.title, p.description, p.brand, p.category, p.attributes, p.content_hash, e.content_hash, p.image
                 FROM products p JOIN sites s ON s.id = p.site_id
                 LEFT JOIN embeddings e ON e.product_id = p.id AND e.model = $1
                 WHERE $2::text IS NULL OR s.dataset = $2 ORDER BY p.id",
                &[&model, &dataset],
            )
            .map_err(|e| self.err(e))?;
        Ok(rows
            .iter()
            .map(|r| {
                let hash: String = r.get(6);
                let cached: Option<String> = r.get(7);
                EmbedCandidate {
                    id: r.get(0),
                    title: r.get(1),
                    description: r.get(2),
                    brand: r.get(3),
                    category: r.get(4),
                    attributes: parse_attributes(r.get(5)),
                    image: r.get(8),
                    cached: cached.as_deref() == Some(hash.as_str()),
                    content_hash: hash,
                }
            })
            .collect())
    }

    fn put_embeddings(&mut self, model: &str, rows: &[(i64, String, Vec<f32>)], dtype: VectorDtype) -> Result<()> {
        let location = self.location.clone();
        let err = |e| Error::Postgres { location: location.clone(), source: e };
        let mut tx = self.conn_mut().transaction().map_err(err)?;
        let version = write::bump_catalog_version(&mut tx).map_err(err)?;
        let ins = tx
            .prepare(
                "INSERT INTO embeddings(product_id, model, content_hash, dim, dtype, vector) VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (product_id, model) DO UPDATE SET content_hash = excluded.content_hash, dim = excluded.dim,
                 dtype = excluded.dtype, vector = excluded.vector",
            )
            .map_err(err)?;
        let bump = tx.prepare("UPDATE products SET version = $2 WHERE id = $1").map_err(err)?;
        for (id, hash, v) in rows {
            let vector = stored_vector(v, dtype);
            tx.execute(&ins, &[id, &model, hash, &(v.len() as i64), &dtype.as_str(), &vector]).map_err(err)?;
            tx.execute(&bump, &[id, &version]).map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    fn load_item_vectors(&self, model: &str, dataset: Option<&str>) -> Result<ItemVectors> {
        let rows = self
            .conn()
            .query(
                "SELECT e.dim, e.vector, e.content_hash = p.content_hash FROM sites s JOIN products p ON p.site_id = s.id
                 LEFT JOIN embeddings e ON e.product_id = p.id AND e.model = $1
                 WHERE $2::text IS NULL OR s.dataset = $2 ORDER BY s.id, p.id",
                &[&model, &dataset],
            )
            .map_err(|e| self.err(e))?;
        let mut out = VectorsBuilder::default();
        for r in rows {
            let dim: Option<i64> = r.get(0);
            let fresh: Option<bool> = r.get(2);
            match (dim, fresh) {
                (Some(d), Some(true)) => {
                    let v: pgvector::Vector = r.get(1);
                    out.stored(d as usize, |data| {
                        let ok = v.as_slice().len() == d as usize;
                        if ok {
                            data.extend_from_slice(v.as_slice());
                        }
                        ok
                    });
                }
                _ => out.missing(),
            }
        }
        Ok(out.finish())
    }

    fn product_rows(&self, site: &str, external_ids: &[String]) -> Result<Vec<Option<(i64, String)>>> {
        let rows = self
            .conn()
            .query(
                "SELECT x.n, p.id, p.content_hash FROM unnest($2::text[]) WITH ORDINALITY AS x(external_id, n)
                 JOIN sites s ON s.key = $1 JOIN products p ON p.site_id = s.id AND p.external_id = x.external_id",
                &[&site, &external_ids],
            )
            .map_err(|e| self.err(e))?;
        let mut out = vec![None; external_ids.len()];
        for r in rows {
            let n: i64 = r.get(0);
            out[n as usize - 1] = Some((r.get(1), r.get(2)));
        }
        Ok(out)
    }

    fn remove_products(&mut self, site: &str, external_ids: &[String]) -> Result<usize> {
        self.set_removed(site, external_ids, true)
    }

    fn restore_products(&mut self, site: &str, external_ids: &[String]) -> Result<()> {
        self.set_removed(site, external_ids, false).map(|_| ())
    }

    fn removed_products(&self, dataset: Option<&str>) -> Result<Vec<(String, String)>> {
        let rows = self
            .conn()
            .query(
                "SELECT s.key, p.external_id FROM removed_products r JOIN products p ON p.id = r.product_id
                 JOIN sites s ON s.id = p.site_id WHERE $1::text IS NULL OR s.dataset = $1
                 ORDER BY s.key COLLATE \"C\", p.external_id COLLATE \"C\"",
                &[&dataset],
            )
            .map_err(|e| self.err(e))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    fn catalog_version(&self) -> Result<i64> {
        Ok(self
            .conn()
            .query_one("SELECT value::bigint FROM settings WHERE name = 'catalog_version'", &[])
            .map_err(|e| self.err(e))?
            .get(0))
    }

    fn catalog_changes(&self, dataset: &str, after: i64, model: Option<&str>) -> Result<Vec<CatalogChange>> {
        let rows = self
            .conn()
            .query(
                "SELECT s.key, p.id, p.external_id, p.title, p.brand, p.category, p.price_usd, p.image,
                        r.product_id IS NOT NULL, e.vector, p.version
                 FROM products p JOIN sites s ON s.id = p.site_id
                 LEFT JOIN removed_products r ON r.product_id = p.id
                 LEFT JOIN embeddings e ON e.product_id = p.id AND e.model = $3 AND e.content_hash = p.content_hash
                 WHERE s.dataset = $1 AND p.version > $2 ORDER BY p.version, p.id",
                &[&dataset, &after, &model],
            )
            .map_err(|e| self.err(e))?;
        Ok(rows
            .iter()
            .map(|r| CatalogChange {
                site: r.get(0),
                meta: product_row(r, 1).meta(0),
                removed: r.get(8),
                vector: r.get::<_, Option<pgvector::Vector>>(9).map(|v| v.to_vec()),
                version: r.get(10),
            })
            .collect())
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
        events::erase(self, "session = $1", &session, Some(session))
    }

    fn purge_events(&mut self, before: i64) -> Result<Erased> {
        events::erase(self, "at < $1", &before, None)
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
        let n: i64 = self
            .conn()
            .query_one("SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM recommendations)", &[])
            .map_err(|e| self.err(e))?
            .get(0);
        Ok(counts.iter().all(|&c| c == 0) && n == 0)
    }

    fn load_rows(&mut self, table: Table, rows: &[Row]) -> Result<()> {
        dump::load_rows(self, table, rows)
    }

    fn finish_load(&mut self) -> Result<()> {
        dump::finish_load(self)
    }
}
