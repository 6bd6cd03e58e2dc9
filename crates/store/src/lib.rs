//! The embedded store: one SQLite file (bundled library) holding sites, products, users,
//! interactions, an import log, and the place for embedding vectors; trained models live in
//! a directory beside it. Every import is one transaction: it lands whole or not at all.

mod embeddings;
pub mod events;
mod schema;
mod stats;

pub use embeddings::{EmbedCandidate, VectorDtype};
pub use stats::{DatasetStats, SiteStats, StoreStats};

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};
use warmstart_core::{
    Dataset, DatasetBuilder, EventTime, Interaction, InteractionKind, InteractionRow, Product, ProductMeta, Site, Split,
};

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database reported an error.
    #[error("store {path}: {source}")]
    Sqlite {
        /// Store file.
        path: PathBuf,
        /// Cause.
        source: rusqlite::Error,
    },
    /// The store directory could not be created.
    #[error("store {path}: {source}")]
    Io {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is not a warmstart store or has a newer schema.
    #[error("store {path}: {message}")]
    Schema {
        /// Store file.
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

/// An open store.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

/// Default store location: `$WARMSTART_HOME/store.sqlite`, else
/// `$XDG_DATA_HOME/warmstart/store.sqlite`, else `~/.local/share/warmstart/store.sqlite`.
pub fn default_store_path() -> PathBuf {
    home_dir().join("store.sqlite")
}

pub use warmstart_core::paths::home_dir;

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

fn time_cols(t: Option<EventTime>) -> (i64, i64) {
    match t {
        None => (0, 0),
        Some(EventTime::Timestamp(v)) => (1, v),
        Some(EventTime::Sequence(v)) => (2, v),
    }
}

fn time_from_cols(kind: i64, v: i64) -> Option<EventTime> {
    match kind {
        1 => Some(EventTime::Timestamp(v)),
        2 => Some(EventTime::Sequence(v)),
        _ => None,
    }
}

impl Store {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::Io { path: dir.into(), source: e })?;
        }
        let conn = Connection::open(path).map_err(|e| Error::Sqlite { path: path.into(), source: e })?;
        // the service writes catalog changes and feedback events on two connections
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(|e| Error::Sqlite { path: path.into(), source: e })?;
        let mut store = Store { conn, path: path.to_path_buf() };
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

    /// SQLite's own consistency check of the whole file: `"ok"`, or what is wrong.
    pub fn integrity_check(&self) -> Result<String> {
        let rows: Vec<String> = self
            .conn
            .prepare("PRAGMA integrity_check")
            .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
            .map_err(|e| self.err(e))?;
        Ok(rows.join("; "))
    }

    /// Path of the store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Directory for trained models and other large artefacts beside the store
    /// (`<store>.models/`).
    pub fn models_dir(&self) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(".models");
        PathBuf::from(p)
    }

    /// Writes sites, products and interactions in one transaction. Products are upserted by
    /// `(site, external id)`, users by key, interactions by `(user, product, kind, time)`, so
    /// writing the same import twice changes nothing. `log` (e.g. the import report as JSON)
    /// is kept in the import log.
    pub fn write(
        &mut self,
        source: &str,
        sites: &[Site],
        products: &[Product],
        interactions: &[Interaction],
        log: &str,
        progress: &dyn Fn(u64),
    ) -> Result<WriteSummary> {
        let path = self.path.clone();
        let e = |source| Error::Sqlite { path: path.clone(), source };
        let tx = self.conn.transaction().map_err(e)?;
        let mut s = WriteSummary::default();
        let mut site_ids: HashMap<String, i64> = HashMap::new();
        {
            let mut find_site = tx.prepare_cached("SELECT id, dataset FROM sites WHERE key = ?1").map_err(e)?;
            let mut ins_site =
                tx.prepare_cached("INSERT INTO sites(key, name, dataset) VALUES (?1, ?2, ?3)").map_err(e)?;
            let mut all_sites: Vec<Site> = sites.to_vec();
            for p in products {
                if !all_sites.iter().any(|x| x.key == p.site) {
                    all_sites.push(Site { key: p.site.clone(), name: p.site.clone(), dataset: source.to_string() });
                }
            }
            for site in &all_sites {
                let found: Option<(i64, String)> =
                    find_site.query_row([&site.key], |r| Ok((r.get(0)?, r.get(1)?))).optional().map_err(e)?;
                let id = match found {
                    // site keys are global: a source may not add to another dataset group's site
                    Some((_, stored)) if stored != site.dataset => {
                        return Err(Error::SiteConflict {
                            site: site.key.clone(),
                            stored,
                            import: site.dataset.clone(),
                        });
                    }
                    Some((id, _)) => id,
                    None => {
                        ins_site.execute(params![site.key, site.name, site.dataset]).map_err(e)?;
                        s.sites_created += 1;
                        tx.last_insert_rowid()
                    }
                };
                site_ids.insert(site.key.clone(), id);
            }
        }
        {
            let mut find = tx
                .prepare_cached("SELECT id, content_hash FROM products WHERE site_id = ?1 AND external_id = ?2")
                .map_err(e)?;
            let mut ins = tx
                .prepare_cached(
                    "INSERT INTO products(site_id, external_id, title, description, brand, category, price, currency, price_usd, image, attributes, missing, content_hash)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                )
                .map_err(e)?;
            let mut upd = tx
                .prepare_cached(
                    "UPDATE products SET title=?2, description=?3, brand=?4, category=?5, price=?6, currency=?7, price_usd=?8, image=?9, attributes=?10, missing=?11, content_hash=?12 WHERE id=?1",
                )
                .map_err(e)?;
            for (n, p) in products.iter().enumerate() {
                let site = site_ids[&p.site];
                let hash = content_hash(p);
                let attrs = serde_json::to_string(&p.attributes).unwrap_or_else(|_| "{}".into());
                let (price, cur, usd) = match p.price {
                    Some(pr) => (Some(pr.amount), Some(pr.currency_code().to_string()), pr.approx_usd()),
                    None => (None, None, None),
                };
                let image = p.image.as_ref().map(|i| i.0.clone());
                let cat = (!p.category.is_empty()).then(|| p.category_path());
                let existing: Option<(i64, String)> = find
                    .query_row(params![site, p.external_id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
                    .map_err(e)?;
                match existing {
                    None => {
                        ins.execute(params![
                            site,
                            p.external_id,
                            p.title,
                            p.description,
                            p.brand,
                            cat,
                            price,
                            cur,
                            usd,
                            image,
                            attrs,
                            p.missing.0,
                            hash
                        ])
                        .map_err(e)?;
                        s.products_inserted += 1;
                    }
                    Some((_, old)) if old == hash => s.products_unchanged += 1,
                    Some((id, _)) => {
                        upd.execute(params![
                            id,
                            p.title,
                            p.description,
                            p.brand,
                            cat,
                            price,
                            cur,
                            usd,
                            image,
                            attrs,
                            p.missing.0,
                            hash
                        ])
                        .map_err(e)?;
                        s.products_updated += 1;
                    }
                }
                if n % 4096 == 0 {
                    progress(n as u64);
                }
            }
        }
        if !interactions.is_empty() {
            // product lookup for the sites the interactions touch
            let mut pid: HashMap<(i64, String), i64> = HashMap::new();
            let mut touched: Vec<&str> = interactions.iter().map(|i| i.site.as_str()).collect();
            touched.sort_unstable();
            touched.dedup();
            {
                let mut find_site = tx.prepare_cached("SELECT id, dataset FROM sites WHERE key = ?1").map_err(e)?;
                let mut q = tx.prepare_cached("SELECT id, external_id FROM products WHERE site_id = ?1").map_err(e)?;
                for key in touched {
                    let sid: Option<i64> = match site_ids.get(key) {
                        Some(id) => Some(*id),
                        None => find_site.query_row([key], |r| r.get(0)).optional().map_err(e)?,
                    };
                    let Some(sid) = sid else { continue };
                    site_ids.insert(key.to_string(), sid);
                    let rows = q.query_map([sid], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))).map_err(e)?;
                    for row in rows {
                        let (id, ext) = row.map_err(e)?;
                        pid.insert((sid, ext), id);
                    }
                }
            }
            let mut uid: HashMap<&str, i64> = HashMap::new();
            let mut find_user = tx.prepare_cached("SELECT id FROM users WHERE key = ?1").map_err(e)?;
            let mut ins_user = tx.prepare_cached("INSERT INTO users(key) VALUES (?1)").map_err(e)?;
            let mut ins = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO interactions(user_id, product_id, kind, value, text, time_kind, time, split)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(e)?;
            for (n, it) in interactions.iter().enumerate() {
                let product = site_ids.get(&it.site).and_then(|sid| pid.get(&(*sid, it.product.clone())));
                let Some(&product) = product else {
                    s.interactions_unknown_product += 1;
                    if s.unknown_product_examples.len() < 10 {
                        s.unknown_product_examples.push(format!("{}/{}", it.site, it.product));
                    }
                    continue;
                };
                let user = match uid.get(it.user.as_str()) {
                    Some(u) => *u,
                    None => {
                        let u: Option<i64> = find_user.query_row([&it.user], |r| r.get(0)).optional().map_err(e)?;
                        let u = match u {
                            Some(u) => u,
                            None => {
                                ins_user.execute([&it.user]).map_err(e)?;
                                s.users_created += 1;
                                tx.last_insert_rowid()
                            }
                        };
                        uid.insert(&it.user, u);
                        u
                    }
                };
                let (tk, tv) = time_cols(it.time);
                let changed = ins
                    .execute(params![user, product, it.kind.code(), it.value, it.text, tk, tv, it.split.code()])
                    .map_err(e)?;
                if changed == 1 {
                    s.interactions_inserted += 1;
                } else {
                    s.interactions_existing += 1;
                }
                if n % 4096 == 0 {
                    progress((products.len() + n) as u64);
                }
            }
        }
        tx.execute(
            "INSERT INTO imports(source, at, summary, report) VALUES (?1, strftime('%s','now'), ?2, ?3)",
            params![source, serde_json::to_string(&s).unwrap_or_default(), log],
        )
        .map_err(e)?;
        tx.commit().map_err(e)?;
        Ok(s)
    }

    /// Dataset groups present, with their sites.
    pub fn datasets(&self) -> Result<Vec<(String, Vec<String>)>> {
        let mut q =
            self.conn.prepare("SELECT dataset, key FROM sites ORDER BY dataset, id").map_err(|e| self.err(e))?;
        let rows =
            q.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))).map_err(|e| self.err(e))?;
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for row in rows {
            let (d, k) = row.map_err(|e| self.err(e))?;
            match out.last_mut() {
                Some((ld, ks)) if *ld == d => ks.push(k),
                _ => out.push((d, vec![k])),
            }
        }
        Ok(out)
    }

    /// Loads one dataset group (or, with `None`, every site) into memory with compact ids.
    pub fn load_dataset(&self, dataset: Option<&str>) -> Result<Dataset> {
        let e = |x| self.err(x);
        let groups = self.datasets()?;
        if let Some(d) = dataset {
            if !groups.iter().any(|g| g.0 == d) {
                return Err(Error::NotFound {
                    what: "dataset",
                    name: d.to_string(),
                    have: groups.iter().map(|g| g.0.clone()).collect::<Vec<_>>().join(", "),
                });
            }
        }
        let mut b = DatasetBuilder::default();
        let mut sites = self
            .conn
            .prepare("SELECT id, key, name, dataset FROM sites WHERE ?1 IS NULL OR dataset = ?1 ORDER BY id")
            .map_err(e)?;
        let site_rows: Vec<(i64, String, String, String)> = sites
            .query_map([dataset], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .map_err(e)?
            .collect::<std::result::Result<_, _>>()
            .map_err(e)?;
        let mut item_of: HashMap<i64, u32> = HashMap::new();
        let mut pq = self
            .conn
            .prepare("SELECT id, external_id, title, brand, category, price_usd, image FROM products WHERE site_id = ?1 ORDER BY id")
            .map_err(e)?;
        for (sid, key, name, ds) in &site_rows {
            let s = b.push_site(key, name, ds);
            let rows = pq
                .query_map([sid], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, Option<f64>>(5)?,
                        r.get::<_, Option<String>>(6)?,
                    ))
                })
                .map_err(e)?;
            for row in rows {
                let (id, ext, title, brand, cat, usd, image) = row.map_err(e)?;
                let category = cat.map(|c| c.split(" > ").map(str::to_string).collect()).unwrap_or_default();
                let item = b.push_product(ProductMeta {
                    site: s,
                    external_id: ext,
                    title,
                    brand,
                    category,
                    price_usd: usd,
                    image,
                });
                item_of.insert(id, item);
            }
        }
        let mut user_of: HashMap<i64, u32> = HashMap::new();
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
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, u8>(3)?,
                    r.get::<_, Option<f64>>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, u8>(7)?,
                ))
            })
            .map_err(e)?;
        for row in rows {
            let (uid, ukey, pid, kind, value, tk, tv, split) = row.map_err(e)?;
            let user = *user_of.entry(uid).or_insert_with(|| b.push_user(ukey));
            let Some(&item) = item_of.get(&pid) else { continue };
            b.interactions.push(InteractionRow {
                user,
                item,
                kind: InteractionKind::from_code(kind).unwrap_or(InteractionKind::View),
                value: value.map(|v| v as f32),
                time: time_from_cols(tk, tv),
                split: Split::from_code(split).unwrap_or_default(),
            });
        }
        Ok(b.finish()?)
    }

    /// Counts for `warmstart stats`.
    pub fn stats(&self) -> Result<StoreStats> {
        stats::compute(&self.conn, &self.path).map_err(|e| self.err(e))
    }

    /// Products of a dataset (or all) with their text and whether `model` already has an
    /// up-to-date vector for them.
    pub fn embed_candidates(&self, model: &str, dataset: Option<&str>) -> Result<Vec<EmbedCandidate>> {
        embeddings::candidates(&self.conn, model, dataset).map_err(|e| self.err(e))
    }

    /// Stores vectors `(product id, content hash, vector)` for `model` in one transaction,
    /// as `dtype`.
    pub fn put_embeddings(&mut self, model: &str, rows: &[(i64, String, Vec<f32>)], dtype: VectorDtype) -> Result<()> {
        let path = self.path.clone();
        embeddings::put(&mut self.conn, model, rows, dtype).map_err(|e| Error::Sqlite { path, source: e })
    }

    /// Store ids and content hashes of products by site key and external id (`None` for
    /// unknown ones), in the order asked.
    pub fn product_rows(&self, site: &str, external_ids: &[String]) -> Result<Vec<Option<(i64, String)>>> {
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

    /// Takes products off the served catalog (they stay in the store, with their
    /// interactions); returns how many of `external_ids` exist. One transaction.
    pub fn remove_products(&mut self, site: &str, external_ids: &[String]) -> Result<usize> {
        let rows = self.product_rows(site, external_ids)?;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let path = self.path.clone();
        let err = |e| Error::Sqlite { path: path.clone(), source: e };
        let tx = self.conn.transaction().map_err(err)?;
        let mut found = 0;
        for (id, _) in rows.iter().flatten() {
            tx.execute(
                "INSERT OR REPLACE INTO removed_products(product_id, at) VALUES (?1, ?2)",
                params![id, now as i64],
            )
            .map_err(err)?;
            found += 1;
        }
        tx.commit().map_err(err)?;
        Ok(found)
    }

    /// Puts removed products back on the served catalog (an upsert of a removed product).
    pub fn restore_products(&mut self, site: &str, external_ids: &[String]) -> Result<()> {
        let rows = self.product_rows(site, external_ids)?;
        let path = self.path.clone();
        let err = |e| Error::Sqlite { path: path.clone(), source: e };
        let tx = self.conn.transaction().map_err(err)?;
        for (id, _) in rows.iter().flatten() {
            tx.execute("DELETE FROM removed_products WHERE product_id = ?1", params![id]).map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// (site key, external id) of the removed products of a dataset group (all when `None`).
    pub fn removed_products(&self, dataset: Option<&str>) -> Result<Vec<(String, String)>> {
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

    /// Vectors of `model` aligned with [`load_dataset`](Self::load_dataset)`(dataset)`.
    pub fn load_item_vectors(&self, model: &str, dataset: Option<&str>) -> Result<warmstart_core::ItemVectors> {
        embeddings::load(&self.conn, model, dataset).map_err(|e| self.err(e))
    }

    /// Free attributes of every product, aligned with [`load_dataset`](Self::load_dataset)`(dataset)`.
    pub fn product_attributes(&self, dataset: Option<&str>) -> Result<Vec<Vec<(String, String)>>> {
        let e = |x| self.err(x);
        let mut q = self
            .conn
            .prepare(
                "SELECT p.attributes FROM sites s JOIN products p ON p.site_id = s.id
                 WHERE ?1 IS NULL OR s.dataset = ?1 ORDER BY s.id, p.id",
            )
            .map_err(e)?;
        let rows = q
            .query_map([dataset], |r| {
                let text: String = r.get(0)?;
                let map: std::collections::BTreeMap<String, String> = serde_json::from_str(&text).unwrap_or_default();
                Ok(map.into_iter().collect::<Vec<_>>())
            })
            .map_err(e)?;
        rows.collect::<std::result::Result<_, _>>().map_err(e)
    }

    /// Number of rows in each table (for checks that nothing changed).
    pub fn row_counts(&self) -> Result<[i64; 5]> {
        let mut out = [0i64; 5];
        for (i, t) in ["sites", "products", "users", "interactions", "imports"].iter().enumerate() {
            out[i] =
                self.conn.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0)).map_err(|e| self.err(e))?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
