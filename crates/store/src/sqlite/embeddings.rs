//! Content vectors in SQLite: little-endian blobs keyed by (product, model) and the content
//! hash they were computed from.

use rusqlite::{params, Connection};
use warmstart_core::ItemVectors;

use crate::embeddings::{decode, encode, EmbedCandidate, VectorDtype, VectorsBuilder};
use crate::rows::parse_attributes;

pub(crate) fn candidates(
    conn: &Connection,
    model: &str,
    dataset: Option<&str>,
) -> rusqlite::Result<Vec<EmbedCandidate>> {
    let mut q = conn.prepare(
        "SELECT p.id, p.title, p.description, p.brand, p.category, p.attributes, p.content_hash, e.content_hash, p.image
         FROM products p JOIN sites s ON s.id = p.site_id
         LEFT JOIN embeddings e ON e.product_id = p.id AND e.model = ?1
         WHERE ?2 IS NULL OR s.dataset = ?2 ORDER BY p.id",
    )?;
    let rows = q.query_map(params![model, dataset], |r| {
        let attrs: String = r.get(5)?;
        let hash: String = r.get(6)?;
        let cached: Option<String> = r.get(7)?;
        Ok(EmbedCandidate {
            id: r.get(0)?,
            title: r.get(1)?,
            description: r.get(2)?,
            brand: r.get(3)?,
            category: r.get(4)?,
            attributes: parse_attributes(&attrs),
            image: r.get(8)?,
            cached: cached.as_deref() == Some(hash.as_str()),
            content_hash: hash,
        })
    })?;
    rows.collect()
}
pub(crate) fn put(
    conn: &mut Connection,
    model: &str,
    rows: &[(i64, String, Vec<f32>)],
    dtype: VectorDtype,
) -> rusqlite::Result<()> {
    let tx = super::begin_write(conn)?;
    let version = super::bump_catalog_version(&tx)?;
    {
        let mut ins = tx.prepare_cached(
            "INSERT INTO embeddings(product_id, model, content_hash, dim, dtype, vector) VALUES (?1, ?2, ?3, ?4, ?6, ?5)
             ON CONFLICT(product_id, model) DO UPDATE SET content_hash = excluded.content_hash, dim = excluded.dim,
             dtype = excluded.dtype, vector = excluded.vector",
        )?;
        let mut bump = tx.prepare_cached("UPDATE products SET version = ?2 WHERE id = ?1")?;
        for (id, hash, v) in rows {
            ins.execute(params![id, model, hash, v.len() as i64, encode(v, dtype), dtype.as_str()])?;
            bump.execute(params![id, version])?;
        }
    }
    tx.commit()
}

/// Vectors aligned with `load_dataset(dataset)`'s item order (sites by id, products by id);
/// vectors whose content hash is stale count as missing.
pub(crate) fn load(conn: &Connection, model: &str, dataset: Option<&str>) -> rusqlite::Result<ItemVectors> {
    let mut q = conn.prepare(
        "SELECT e.dim, e.vector, e.content_hash = p.content_hash, e.dtype FROM sites s JOIN products p ON p.site_id = s.id
         LEFT JOIN embeddings e ON e.product_id = p.id AND e.model = ?1
         WHERE ?2 IS NULL OR s.dataset = ?2 ORDER BY s.id, p.id",
    )?;
    let mut out = VectorsBuilder::default();
    let mut rows = q.query(params![model, dataset])?;
    while let Some(r) = rows.next()? {
        let dim: Option<i64> = r.get(0)?;
        let fresh: Option<bool> = r.get(2)?;
        match (dim, fresh) {
            (Some(d), Some(true)) => {
                let blob: Vec<u8> = r.get(1)?;
                let dtype: String = r.get(3)?;
                out.stored(d as usize, |data| decode(&blob, d as usize, &dtype, data));
            }
            _ => out.missing(),
        }
    }
    Ok(out.finish())
}
