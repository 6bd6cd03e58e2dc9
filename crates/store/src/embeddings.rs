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
    /// Image reference (`path`, or `archive#member`).
    pub image: Option<String>,
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
        "SELECT p.id, p.title, p.description, p.brand, p.category, p.attributes, p.content_hash, e.content_hash, p.image
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
            image: r.get(8)?,
            cached: cached.as_deref() == Some(hash.as_str()),
            content_hash: hash,
        })
    })?;
    rows.collect()
}

/// How vectors are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VectorDtype {
    /// 32-bit floats.
    #[default]
    F32,
    /// 16-bit floats (half the space; about 3 significant digits).
    F16,
}

impl VectorDtype {
    /// Name stored in the `dtype` column.
    pub fn as_str(self) -> &'static str {
        match self {
            VectorDtype::F32 => "f32",
            VectorDtype::F16 => "f16",
        }
    }
}

impl std::str::FromStr for VectorDtype {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "f32" => Ok(VectorDtype::F32),
            "f16" => Ok(VectorDtype::F16),
            other => Err(format!("unknown vector type `{other}` (f32 or f16)")),
        }
    }
}

fn encode(v: &[f32], dtype: VectorDtype) -> Vec<u8> {
    match dtype {
        VectorDtype::F32 => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        VectorDtype::F16 => v.iter().flat_map(|x| half::f16::from_f32(*x).to_le_bytes()).collect(),
    }
}

/// Decodes a stored vector; `None` when the blob does not hold `dim` values of `dtype`.
fn decode(blob: &[u8], dim: usize, dtype: &str, out: &mut Vec<f32>) -> bool {
    match dtype {
        "f32" if blob.len() == dim * 4 => {
            out.extend(blob.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])));
            true
        }
        "f16" if blob.len() == dim * 2 => {
            out.extend(blob.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()));
            true
        }
        _ => false,
    }
}

pub(crate) fn put(
    conn: &mut Connection,
    model: &str,
    rows: &[(i64, String, Vec<f32>)],
    dtype: VectorDtype,
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut ins = tx.prepare_cached(
            "INSERT INTO embeddings(product_id, model, content_hash, dim, dtype, vector) VALUES (?1, ?2, ?3, ?4, ?6, ?5)
             ON CONFLICT(product_id, model) DO UPDATE SET content_hash = excluded.content_hash, dim = excluded.dim,
             dtype = excluded.dtype, vector = excluded.vector",
        )?;
        for (id, hash, v) in rows {
            ins.execute(params![id, model, hash, v.len() as i64, encode(v, dtype), dtype.as_str()])?;
        }
    }
    tx.commit()
}

/// Loads vectors aligned with `Store::load_dataset(dataset)`'s item order (sites by id,
/// products by id). Vectors whose content hash is stale are treated as missing.
pub(crate) fn load(conn: &Connection, model: &str, dataset: Option<&str>) -> rusqlite::Result<ItemVectors> {
    let mut q = conn.prepare(
        "SELECT e.dim, e.vector, e.content_hash = p.content_hash, e.dtype FROM sites s JOIN products p ON p.site_id = s.id
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
                let dtype: String = r.get(3)?;
                if d as usize == out.dim && decode(&blob, out.dim, &dtype, &mut out.data) {
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
