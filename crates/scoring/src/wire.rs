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
    while !out.len().is_multiple_of(4) {
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

const NEIGHBOURS_MAGIC: &[u8; 8] = b"WSNBR001";

/// A shop's item-neighbour lists as a device needs them (`GET /v1/sites/{site}/neighbours`):
/// for every product of the other shops a collaborative model knows, its neighbours among
/// this shop's products with their similarities. Layout (little endian):
///
/// ```text
/// "WSNBR001"  u32 n_targets  u32 n_sources  u32 n_entries  u32 targets_len  u32 sources_len
/// targets: targets_len bytes, one id per line; zero padding to 4 bytes
/// sources: sources_len bytes, one "site<TAB>id" per line; zero padding to 4 bytes
/// (n_sources + 1) u32 offsets; n_entries u32 target rows; n_entries f32 similarities
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct NeighbourLists {
    /// This shop's products the model ranks, in the service's order.
    pub targets: Vec<String>,
    /// Other shops' products: (site, id).
    pub sources: Vec<(String, String)>,
    /// Per source, (target row, similarity).
    pub lists: Vec<Vec<(u32, f32)>>,
}

impl NeighbourLists {
    /// Encodes (newlines and tabs in ids become spaces).
    pub fn encode(&self) -> Vec<u8> {
        let clean = |s: &str| s.replace(['\n', '\t'], " ");
        let targets = self.targets.iter().map(|t| clean(t)).collect::<Vec<_>>().join("\n");
        let sources =
            self.sources.iter().map(|(s, i)| format!("{}\t{}", clean(s), clean(i))).collect::<Vec<_>>().join("\n");
        let n_entries: usize = self.lists.iter().map(Vec::len).sum();
        let mut out =
            Vec::with_capacity(28 + targets.len() + sources.len() + 8 + (self.lists.len() + 1) * 4 + n_entries * 8);
        out.extend_from_slice(NEIGHBOURS_MAGIC);
        for x in [self.targets.len(), self.sources.len(), n_entries, targets.len(), sources.len()] {
            out.extend_from_slice(&(x as u32).to_le_bytes());
        }
        out.extend_from_slice(targets.as_bytes());
        pad4(&mut out);
        out.extend_from_slice(sources.as_bytes());
        pad4(&mut out);
        let mut at = 0u32;
        out.extend_from_slice(&at.to_le_bytes());
        for l in &self.lists {
            at += l.len() as u32;
            out.extend_from_slice(&at.to_le_bytes());
        }
        for l in &self.lists {
            for &(t, _) in l {
                out.extend_from_slice(&t.to_le_bytes());
            }
        }
        for l in &self.lists {
            for &(_, s) in l {
                out.extend_from_slice(&s.to_le_bytes());
            }
        }
        out
    }

    /// Decodes, checking lengths, offsets, rows and values.
    pub fn decode(bytes: &[u8]) -> Result<NeighbourLists> {
        let bad = |rule: &'static str, v: usize| Error::Invalid { name: "neighbours", value: v.to_string(), rule };
        if bytes.len() < 28 || &bytes[..8] != NEIGHBOURS_MAGIC {
            return Err(bad("must start with WSNBR001 and a 20-byte header", bytes.len()));
        }
        let word =
            |at: usize| -> Option<u32> { bytes.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])) };
        let h = |at| word(at).unwrap_or(0) as usize;
        let (n_t, n_s, n_e, t_len, s_len) = (h(8), h(12), h(16), h(20), h(24));
        let t_start = 28usize;
        let t_end = t_start.checked_add(t_len).ok_or_else(|| bad("targets length overflows", t_len))?;
        let s_start = t_end.div_ceil(4) * 4;
        let s_end = s_start.checked_add(s_len).ok_or_else(|| bad("sources length overflows", s_len))?;
        let o_start = s_end.div_ceil(4) * 4;
        let rows_start = n_s
            .checked_add(1)
            .and_then(|n| n.checked_mul(4))
            .and_then(|n| n.checked_add(o_start))
            .ok_or_else(|| bad("offsets overflow", n_s))?;
        let sims_start =
            n_e.checked_mul(4).and_then(|n| n.checked_add(rows_start)).ok_or_else(|| bad("rows overflow", n_e))?;
        let end =
            n_e.checked_mul(4).and_then(|n| n.checked_add(sims_start)).ok_or_else(|| bad("sims overflow", n_e))?;
        if end != bytes.len() {
            return Err(bad("length must match the header", bytes.len()));
        }
        let text = |a: usize, b: usize| std::str::from_utf8(&bytes[a..b]).map_err(|_| bad("ids must be UTF-8", a));
        let split = |t: &str, n: usize| if n == 0 { Vec::new() } else { t.split('\n').map(str::to_string).collect() };
        let targets = split(text(t_start, t_end)?, n_t);
        let source_lines = split(text(s_start, s_end)?, n_s);
        if targets.len() != n_t || source_lines.len() != n_s {
            return Err(bad("one id per line", targets.len()));
        }
        let sources = source_lines
            .into_iter()
            .map(|l| {
                l.split_once('\t').map(|(s, i)| (s.to_string(), i.to_string())).ok_or_else(|| bad("site<TAB>id", n_s))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut lists = Vec::with_capacity(n_s);
        let mut prev = 0usize;
        for s in 0..n_s {
            let next = h(o_start + (s + 1) * 4);
            if h(o_start + s * 4) != prev || next < prev || next > n_e {
                return Err(bad("offsets must rise to the entry count", next));
            }
            let list = (prev..next)
                .map(|e| {
                    let row = h(rows_start + e * 4);
                    let sim = f32::from_le_bytes(word(sims_start + e * 4).unwrap_or(0).to_le_bytes());
                    if row >= n_t || !sim.is_finite() {
                        Err(bad("rows in range, similarities finite", row))
                    } else {
                        Ok((row as u32, sim))
                    }
                })
                .collect::<Result<Vec<_>>>()?;
            lists.push(list);
            prev = next;
        }
        if prev != n_e {
            return Err(bad("offsets must end at the entry count", prev));
        }
        Ok(NeighbourLists { targets, sources, lists })
    }
}

#[cfg(test)]
mod neighbour_tests {
    use super::*;

    #[test]
    fn neighbour_lists_round_trip_and_reject_bad_offsets() {
        let n = NeighbourLists {
            targets: vec!["t0".into(), "t1".into(), "t2".into()],
            sources: vec![("a".into(), "x".into()), ("b".into(), "y".into())],
            lists: vec![vec![(2, 0.5), (0, 0.25)], vec![]],
        };
        let bytes = n.encode();
        assert_eq!(NeighbourLists::decode(&bytes).unwrap(), n);
        for cut in [0, 27, bytes.len() - 1] {
            assert!(NeighbourLists::decode(&bytes[..cut]).is_err());
        }
        let mut wrong_row = bytes.clone();
        let rows_at = bytes.len() - 2 * 8;
        wrong_row[rows_at..rows_at + 4].copy_from_slice(&7u32.to_le_bytes());
        assert!(NeighbourLists::decode(&wrong_row).is_err(), "a row outside the targets");
        let empty = NeighbourLists { targets: vec![], sources: vec![], lists: vec![] };
        assert_eq!(NeighbourLists::decode(&empty.encode()).unwrap(), empty);
    }
}
