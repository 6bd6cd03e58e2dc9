//! Content vectors beside the catalog: one row per (product, model), keyed by the product's
//! content hash so that re-embedding only touches products whose content changed.

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

pub(crate) fn encode(v: &[f32], dtype: VectorDtype) -> Vec<u8> {
    match dtype {
        VectorDtype::F32 => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        VectorDtype::F16 => v.iter().flat_map(|x| half::f16::from_f32(*x).to_le_bytes()).collect(),
    }
}

/// Decodes a stored vector; `None` when the blob does not hold `dim` values of `dtype`.
pub(crate) fn decode(blob: &[u8], dim: usize, dtype: &str, out: &mut Vec<f32>) -> bool {
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

/// Builds [`ItemVectors`] row by row in `load_dataset` item order. A missing or stale vector
/// (or one of another dimension) is zeros with `present = false`; the dimension is the first
/// stored vector's.
#[derive(Default)]
pub(crate) struct VectorsBuilder {
    out: ItemVectors,
    pending_zero: usize,
}

impl VectorsBuilder {
    /// An item without an up-to-date vector.
    pub fn missing(&mut self) {
        if self.out.dim == 0 {
            self.pending_zero += 1;
        } else {
            self.out.data.extend(std::iter::repeat_n(0.0, self.out.dim));
        }
        self.out.present.push(false);
    }

    /// An item with a stored vector: `decode` appends its `dim` values (or nothing, returning
    /// false, when the stored bytes are not a vector of that size).
    pub fn stored(&mut self, dim: usize, decode: impl FnOnce(&mut Vec<f32>) -> bool) {
        if self.out.dim == 0 {
            self.out.dim = dim;
            self.out.data.resize(self.pending_zero * dim, 0.0);
        }
        if dim == self.out.dim && decode(&mut self.out.data) {
            self.out.present.push(true);
        } else {
            self.out.data.truncate(self.out.present.len() * self.out.dim);
            self.out.data.extend(std::iter::repeat_n(0.0, self.out.dim));
            self.out.present.push(false);
        }
    }

    pub fn finish(self) -> ItemVectors {
        self.out
    }
}
