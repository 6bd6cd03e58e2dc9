//! The `WSVEC001` layout of a shop's public catalog vectors, as `GET /v1/sites/{site}/vectors`
//! sends them and the browser extension reads them (one encoder, one decoder):
//!
//! ```text
//! "WSVEC001"  u32 dim  u32 n  u32 dtype (0 f32, 1 f16)  u32 ids_len
//! ids: ids_len bytes of UTF-8, one id per line; zero padding to 4 bytes
//! n × dim vectors (little endian); zero padding to 4 bytes; n f32 popularity priors in [0, 1]
//! ```

use crate::{Error, Result};

const MAGIC: &[u8; 8] = b"WSVEC001";

/// A shop's product ids, unit content vectors and popularity priors.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteVectors {
    /// Vector dimension.
    pub dim: usize,
    /// Product ids (the shop's own), in row order.
    pub ids: Vec<String>,
    /// Row-major vectors, `ids.len() × dim`.
    pub data: Vec<f32>,
    /// Log-popularity prior of every row.
    pub prior: Vec<f32>,
}

fn invalid(rule: &'static str, value: impl ToString) -> Error {
    Error::Invalid { name: "vectors", value: value.to_string(), rule }
}

impl SiteVectors {
    /// Number of products.
    pub fn len(&self) -> usize {
        self.ids.len()
    }
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
    /// Vector of row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// Encodes (ids must not contain a newline: it is replaced by a space).
    pub fn encode(&self, f16: bool) -> Vec<u8> {
        let ids: String = self.ids.iter().map(|i| i.replace('\n', " ")).collect::<Vec<_>>().join("\n");
        let width = if f16 { 2 } else { 4 };
        let mut out = Vec::with_capacity(24 + ids.len() + 3 + self.data.len() * width + self.prior.len() * 4);
        out.extend_from_slice(MAGIC);
        for x in [self.dim as u32, self.ids.len() as u32, f16 as u32, ids.len() as u32] {
            out.extend_from_slice(&x.to_le_bytes());
        }
        out.extend_from_slice(ids.as_bytes());
        pad4(&mut out);
        for &x in &self.data {
            if f16 {
                out.extend_from_slice(&half::f16::from_f32(x).to_le_bytes());
            } else {
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
        pad4(&mut out);
        for p in &self.prior {
            out.extend_from_slice(&p.to_le_bytes());
        }
        out
    }

    /// Decodes, checking every length and that values are finite.
    pub fn decode(bytes: &[u8]) -> Result<SiteVectors> {
        if bytes.len() < 24 || &bytes[..8] != MAGIC {
            return Err(invalid("must start with WSVEC001 and a 16-byte header", bytes.len()));
        }
        let word = |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
        let (dim, n, dtype, ids_len) = (word(8), word(12), word(16), word(20));
        let width = match dtype {
            0 => 4,
            1 => 2,
            other => return Err(invalid("dtype must be 0 (f32) or 1 (f16)", other)),
        };
        let ids_end = 24usize.checked_add(ids_len).ok_or_else(|| invalid("ids length overflows", ids_len))?;
        let vec_start = ids_end.div_ceil(4) * 4;
        let vec_bytes =
            n.checked_mul(dim).and_then(|x| x.checked_mul(width)).ok_or_else(|| invalid("n × dim overflows", n))?;
        let prior_start = (vec_start + vec_bytes).div_ceil(4) * 4;
        let end = prior_start.checked_add(n * 4).ok_or_else(|| invalid("length overflows", n))?;
        if end != bytes.len() || dim == 0 && n > 0 {
            return Err(invalid("length must match the header", bytes.len()));
        }
        let text = std::str::from_utf8(&bytes[24..ids_end]).map_err(|_| invalid("ids must be UTF-8", ids_len))?;
        let ids: Vec<String> = if n == 0 { Vec::new() } else { text.split('\n').map(str::to_string).collect() };
        if ids.len() != n {
            return Err(invalid("one id per product", ids.len()));
        }
        let data: Vec<f32> = bytes[vec_start..vec_start + vec_bytes]
            .chunks_exact(width)
            .map(|c| {
                if width == 2 {
                    half::f16::from_le_bytes([c[0], c[1]]).to_f32()
                } else {
                    f32::from_le_bytes([c[0], c[1], c[2], c[3]])
                }
            })
            .collect();
        let prior: Vec<f32> =
            bytes[prior_start..end].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        if data.iter().chain(&prior).any(|x| !x.is_finite()) {
            return Err(invalid("values must be finite", "NaN or inf"));
        }
        Ok(SiteVectors { dim, ids, data, prior })
    }
}

fn pad4(out: &mut Vec<u8>) {
    while out.len() % 4 != 0 {
        out.push(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_in_f32_and_f16_and_rejects_bad_lengths() {
        let v = SiteVectors {
            dim: 3,
            ids: vec!["a".into(), "bb".into()],
            data: vec![0.5, -0.25, 1.0, 0.0, 0.125, -1.0],
            prior: vec![1.0, 0.0],
        };
        assert_eq!(SiteVectors::decode(&v.encode(false)).unwrap(), v);
        assert_eq!(SiteVectors::decode(&v.encode(true)).unwrap(), v, "these values are exact in f16");
        let bytes = v.encode(true);
        for cut in [0, 10, 24, bytes.len() - 1] {
            assert!(SiteVectors::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut huge = bytes.clone();
        huge[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(SiteVectors::decode(&huge).is_err());
        let empty = SiteVectors { dim: 3, ids: vec![], data: vec![], prior: vec![] };
        assert_eq!(SiteVectors::decode(&empty.encode(false)).unwrap(), empty);
    }
}
