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
            return Err(Error::Copy(format!(
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
        let location = self.location.clone();
        let err = |e| Error::Postgres { location: location.clone(), source: e };
        let mut tx = self.conn_mut().transaction().map_err(err)?;
        tx.batch_execute(&format!("SET LOCAL hnsw.ef_search = {}", ef.clamp(1, 1000))).map_err(err)?;
        // the model is a literal so that the planner can match the partial index
        let sql = format!(
            "SELECT product_id, (vector::vector({dim}) <=> $1::vector({dim}))::real FROM embeddings
             WHERE model = {} AND dim = {dim} ORDER BY vector::vector({dim}) <=> $1::vector({dim}) LIMIT $2",
            literal(model)
        );
        let q = pgvector::Vector::from(query.to_vec());
        let rows = tx.query(&sql, &[&q, &(k as i64)]).map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
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
