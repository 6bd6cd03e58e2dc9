//! pgvector retrieval: an HNSW index over one model's vectors (cosine) and nearest-neighbour
//! queries against it. The index is partial (one per model) on an expression that gives the
//! untyped `vector` column its dimension, as HNSW needs.

use super::PgStore;
use crate::{Error, Result};

/// An SQL string literal.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn index_name(model: &str) -> String {
    let slug: String =
        model.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
    let mut h: u32 = 0x811c9dc5;
    for b in model.bytes() {
        h = (h ^ b as u32).wrapping_mul(0x01000193);
    }
    format!("embeddings_hnsw_{}_{h:08x}", &slug[..slug.len().min(30)])
}

impl PgStore {
    /// Builds (unless it exists) pgvector's HNSW index over `model`'s `dim`-dimensional
    /// vectors for cosine distance, with `m` links per node and `ef_construction` breadth.
    /// Returns whether it was built now.
    pub fn create_vector_index(&mut self, model: &str, dim: usize, m: usize, ef_construction: usize) -> Result<bool> {
        if dim == 0 || dim > 2000 || !(2..=100).contains(&m) || !(4..=1000).contains(&ef_construction) {
            return Err(Error::Invalid(format!(
                "pgvector HNSW: dim {dim} (1–2000), m {m} (2–100), ef_construction {ef_construction} (4–1000)"
            )));
        }
        let name = index_name(model);
        let location = self.location.clone();
        let err = |e| Error::Postgres { location: location.clone(), source: e };
        let c = self.conn_mut();
        let exists: bool =
            c.query_one("SELECT EXISTS(SELECT 1 FROM pg_indexes WHERE indexname = $1)", &[&name]).map_err(err)?.get(0);
        if exists {
            return Ok(false);
        }
        c.batch_execute(&format!(
            "SET maintenance_work_mem = '1GB';
             CREATE INDEX {name} ON embeddings USING hnsw ((vector::vector({dim})) vector_cosine_ops)
               WITH (m = {m}, ef_construction = {ef_construction}) WHERE model = {} AND dim = {dim};
             RESET maintenance_work_mem;",
            literal(model)
        ))
        .map_err(err)?;
        Ok(true)
    }

    /// The `k` products nearest to `query` among `model`'s vectors, by cosine distance
    /// (product id, distance), searched with breadth `ef` through the HNSW index when one
    /// exists (exactly otherwise).
    pub fn nearest(&mut self, model: &str, query: &[f32], k: usize, ef: usize) -> Result<Vec<(i64, f32)>> {
        let dim = query.len();
        // the model is a literal so that the planner can match the partial index
        let sql = format!(
            "SELECT product_id, (vector::vector({dim}) <=> $1::vector({dim}))::real FROM embeddings
             WHERE model = {} AND dim = {dim} ORDER BY vector::vector({dim}) <=> $1::vector({dim}) LIMIT $2",
            literal(model)
        );
        let q = pgvector::Vector::from(query.to_vec());
        let rows = self.search(&sql, &[&q, &(k as i64)], ef)?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Runs a nearest-neighbour query with HNSW search breadth `ef` (one transaction).
    fn search(
        &mut self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
        ef: usize,
    ) -> Result<Vec<postgres::Row>> {
        let location = self.location.clone();
        let err = |e| Error::Postgres { location: location.clone(), source: e };
        let mut tx = self.conn_mut().transaction().map_err(err)?;
        tx.batch_execute(&format!("SET LOCAL hnsw.ef_search = {}", ef.clamp(1, 1000))).map_err(err)?;
        let rows = tx.query(sql, params).map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(rows)
    }
}

impl PgStore {
    /// The `k` products of site `site` nearest to `query` among `model`'s vectors, by cosine
    /// distance: (external id, distance). pgvector filters the site after its index scan, so
    /// `ef` must cover the other sites' share of the index (see [`PgVectorSearch`]).
    pub fn nearest_in_site(
        &mut self,
        model: &str,
        site: &str,
        query: &[f32],
        k: usize,
        ef: usize,
    ) -> Result<Vec<(String, f32)>> {
        let dim = query.len();
        let sql = format!(
            "SELECT p.external_id, (e.vector::vector({dim}) <=> $1::vector({dim}))::real
             FROM embeddings e JOIN products p ON p.id = e.product_id
             WHERE e.model = {} AND e.dim = {dim} AND p.site_id = (SELECT id FROM sites WHERE key = $3)
             ORDER BY e.vector::vector({dim}) <=> $1::vector({dim}) LIMIT $2",
            literal(model)
        );
        let q = pgvector::Vector::from(query.to_vec());
        let rows = self.search(&sql, &[&q, &(k as i64), &site], ef)?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// How many `dim`-dimensional vectors `model` has, per site key.
    pub fn vector_counts(&mut self, model: &str, dim: usize) -> Result<Vec<(String, i64)>> {
        let rows = self
            .conn_mut()
            .query(
                "SELECT s.key, count(*) FROM embeddings e JOIN products p ON p.id = e.product_id
                 JOIN sites s ON s.id = p.site_id WHERE e.model = $1 AND e.dim = $2 GROUP BY s.key",
                &[&model, &(dim as i64)],
            )
            .map_err(|e| self.err(e))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }
}

/// pgvector retrieval for a server: a few connections (requests search concurrently), one
/// model's HNSW index (built when missing), and the search breadth scaled to each site's share
/// of the index, because pgvector 0.6 filters the site after scanning the index.
pub struct PgVectorSearch {
    conns: Vec<std::sync::Mutex<PgStore>>,
    next: std::sync::atomic::AtomicUsize,
    model: String,
    dim: usize,
    total: i64,
    per_site: std::collections::HashMap<String, i64>,
}

impl PgVectorSearch {
    /// Opens `connections` connections to `url` and makes sure `model`'s index exists (M 16,
    /// efConstruction 200).
    pub fn open(url: &str, connections: usize, model: &str, dim: usize) -> Result<PgVectorSearch> {
        let mut first = PgStore::open(url)?;
        first.create_vector_index(model, dim, 16, 200)?;
        let counts = first.vector_counts(model, dim)?;
        let mut conns = vec![std::sync::Mutex::new(first)];
        for _ in 1..connections.max(1) {
            conns.push(std::sync::Mutex::new(PgStore::open(url)?));
        }
        Ok(PgVectorSearch {
            conns,
            next: std::sync::atomic::AtomicUsize::new(0),
            model: model.to_string(),
            dim,
            total: counts.iter().map(|c| c.1).sum(),
            per_site: counts.into_iter().collect(),
        })
    }

    /// The model searched.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The `k` products of `site` nearest to `query` (external id, cosine distance), with
    /// search breadth at least `ef` and enough to find `k` of this site's vectors among the
    /// others.
    pub fn nearest_in_site(&self, site: &str, query: &[f32], k: usize, ef: usize) -> Result<Vec<(String, f32)>> {
        if query.len() != self.dim {
            return Err(Error::Invalid(format!("a {}-d query for {}-d vectors", query.len(), self.dim)));
        }
        let share = self.per_site.get(site).copied().unwrap_or(0).max(1) as f64 / self.total.max(1) as f64;
        let ef = ef.max(((2 * k) as f64 / share).ceil() as usize).min(1000);
        let start = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let n = self.conns.len();
        // a free connection if there is one, else wait for ours in turn
        let mut guard = (0..n).find_map(|i| self.conns[(start + i) % n].try_lock().ok());
        if guard.is_none() {
            guard = self.conns[start % n].lock().ok();
        }
        let mut store = guard.ok_or_else(|| Error::Invalid("a pgvector connection was poisoned".into()))?;
        store.nearest_in_site(&self.model, site, query, k, ef)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn index_names_are_safe_identifiers_and_distinct() {
        let a = super::index_name("minilm");
        let b = super::index_name("MiniLM");
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && a != b);
        assert!(super::index_name(&"x'; DROP TABLE products; --".repeat(5)).len() < 64);
        assert_eq!(super::literal("it's"), "'it''s'");
    }
}
