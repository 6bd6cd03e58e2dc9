//! Content vectors beside the catalog: one row per (product, model), keyed by the product's
//! content hash so that re-embedding only touches products whose content changed.

use rusqlite::{params, Connection};
use warmstart_core::ItemVectors;

/// A product that may need a vector.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbedCandidate {
    /// Store id.
    pub id: i64,
    /// Title.
    pub title: String,
    /// Description.
    pub description: Option<String>,
    /// Brand.
    pub brand: Option<String>,
    /// Category path.
    pub category: Option<String>,
    /// Free attributes.
    pub attributes: Vec<(String, String)>,
    /// Content hash now.
    pub content_hash: String,
    /// Whether a vector for this model and content hash is already stored.
    pub cached: bool,
}

pub(crate) fn candidates(
    conn: &Connection,
    model: &str,
    dataset: Option<&str>,
) -> rusqlite::Result<Vec<EmbedCandidate>> {
    let mut q = conn.prepare(
        "SELECT p.id, p.title, p.description, p.brand, p.category, p.attributes, p.content_hash, e.content_hash
         FROM products p JOIN sites s ON s.id = p.site_id
         LEFT JOIN embeddings e ON e.product_id = p.id AND e.model = ?1
         WHERE ?2 IS NULL OR s.dataset = ?2 ORDER BY p.id",
    )?;
    let rows = q.query_map(params![model, dataset], |r| {
        let attrs: String = r.get(5)?;
        let map: std::collections::BTreeMap<String, String> = serde_json::from_str(&attrs).unwrap_or_default();
        let hash: String = r.get(6)?;
        let cached: Option<String> = r.get(7)?;
        Ok(EmbedCandidate {
            id: r.get(0)?,
            title: r.get(1)?,
            description: r.get(2)?,
            brand: r.get(3)?,
            category: r.get(4)?,
            attributes: map.into_iter().collect(),
            cached: cached.as_deref() == Some(hash.as_str()),
            content_hash: hash,
        })
    })?;
    rows.collect()
}

pub(crate) fn put(conn: &mut Connection, model: &str, rows: &[(i64, String, Vec<f32>)]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut ins = tx.prepare_cached(
            "INSERT INTO embeddings(product_id, model, content_hash, dim, dtype, vector) VALUES (?1, ?2, ?3, ?4, 'f32', ?5)
             ON CONFLICT(product_id, model) DO UPDATE SET content_hash = excluded.content_hash, dim = excluded.dim,
             dtype = excluded.dtype, vector = excluded.vector",
        )?;
        for (id, hash, v) in rows {
            let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
            ins.execute(params![id, model, hash, v.len() as i64, bytes])?;
        }
    }
    tx.commit()
}

/// Loads vectors aligned with `Store::load_dataset(dataset)`'s item order (sites by id,
/// products by id). Vectors whose content hash is stale are treated as missing.
pub(crate) fn load(conn: &Connection, model: &str, dataset: Option<&str>) -> rusqlite::Result<ItemVectors> {
    let mut q = conn.prepare(
        "SELECT e.dim, e.vector, e.content_hash = p.content_hash FROM sites s JOIN products p ON p.site_id = s.id
         LEFT JOIN embeddings e ON e.product_id = p.id AND e.model = ?1
         WHERE ?2 IS NULL OR s.dataset = ?2 ORDER BY s.id, p.id",
    )?;
    let mut out = ItemVectors::default();
    let mut rows = q.query(params![model, dataset])?;
    let mut pending_zero = 0usize; // items before the first vector tells us the dimension
    while let Some(r) = rows.next()? {
        let dim: Option<i64> = r.get(0)?;
        let fresh: Option<bool> = r.get(2)?;
        match (dim, fresh) {
            (Some(d), Some(true)) => {
                let blob: Vec<u8> = r.get(1)?;
                if out.dim == 0 {
                    out.dim = d as usize;
                    out.data.resize(pending_zero * out.dim, 0.0);
                }
                if d as usize == out.dim && blob.len() == out.dim * 4 {
                    out.data.extend(blob.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])));
                    out.present.push(true);
                    continue;
                }
                out.data.extend(std::iter::repeat_n(0.0, out.dim));
                out.present.push(false);
            }
            _ => {
                if out.dim == 0 {
                    pending_zero += 1;
                } else {
                    out.data.extend(std::iter::repeat_n(0.0, out.dim));
                }
                out.present.push(false);
            }
        }
    }
    Ok(out)
}
