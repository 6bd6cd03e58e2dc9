//! The index file: writing (atomically) and opening (memory-mapped, validated).
//!
//! Layout, all little-endian, every section starting on a 64-byte boundary:
//!
//! ```text
//! header, 128 bytes
//!   0  magic           b"WSANNIDX"
//!   8  version         u32 = 1
//!   12 metric          u32 (0 inner product, 1 cosine)
//!   16 dim             u32
//!   20 m               u32 (level 0 keeps 2m links)
//!   24 ef_construction u32
//!   28 ef_search       u32
//!   32 seed            u64
//!   40 next_seq        u64 (insertions so far; drives the level draws of later upserts)
//!   48 segment_count   u32
//!   52 reserved        u32 = 0
//!   56 file_len        u64
//!   64 checksum        u64 over the header (this field zeroed), the segment table and
//!                      every section except the vectors
//!   72 zero padding
//! segment table, 160 bytes per segment
//!   n u32, live u32, max_level u32, entry u32 (u32::MAX when n = 0),
//!   then (offset u64, byte length u64) for each section, in this order:
//!   keys u32×n, levels u8×n, links0 u32×n×(1+2m), upper_offsets u32×n, upper u32×U,
//!   sorted_keys u32×live, sorted_nodes u32×live, deleted u64×⌈n/64⌉, vectors f32×n×dim
//! sections
//! ```
//!
//! `links0` holds, per node, `[count, neighbour...]` padded to the stride; `upper` holds, for a
//! node of level L ≥ 1 starting at `upper_offsets[node]`, L lists of stride `1 + m` (level 1
//! first). `sorted_keys`/`sorted_nodes` is the key lookup of live nodes, sorted by key. Opening
//! checks the header, every offset and length, the checksum and every link, level and lookup
//! entry, so that a corrupt or truncated file is an error and never a panic or an out-of-bounds
//! read. Vector values are not checksummed (that would read the whole file at open).

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use memmap2::Mmap;

use crate::graph::View;
use crate::params::{HnswParams, MAX_LEVEL, MAX_M};
use crate::segment::{cast, Body, Mapped, MappedSections, Pod, Segment};
use crate::{Error, Hnsw, Metric, Result, MAX_DIM};

const MAGIC: &[u8; 8] = b"WSANNIDX";
const VERSION: u32 = 1;
const HEADER: usize = 128;
const SEG_DESC: usize = 16 + 9 * 16;
const ALIGN: usize = 64;
const NONE: u32 = u32::MAX;

/// Streaming word-at-a-time FNV-style hash (the byte sequence matters, not how it is split).
struct Hasher {
    h: u64,
    carry: [u8; 8],
    filled: usize,
}
impl Hasher {
    fn new() -> Self {
        Hasher { h: 0xcbf2_9ce4_8422_2325, carry: [0; 8], filled: 0 }
    }
    fn word(&mut self, w: u64) {
        self.h = (self.h ^ w).wrapping_mul(0x0000_0100_0000_01b3).rotate_left(23);
    }
    fn feed(&mut self, mut bytes: &[u8]) {
        if self.filled > 0 {
            let take = (8 - self.filled).min(bytes.len());
            self.carry[self.filled..self.filled + take].copy_from_slice(&bytes[..take]);
            self.filled += take;
            bytes = &bytes[take..];
            if self.filled < 8 {
                return;
            }
            self.word(u64::from_le_bytes(self.carry));
            self.filled = 0;
        }
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.word(u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]));
        }
        let rest = chunks.remainder();
        self.carry[..rest.len()].copy_from_slice(rest);
        self.filled = rest.len();
    }
    fn finish(mut self) -> u64 {
        if self.filled > 0 {
            self.carry[self.filled..].fill(0);
            self.word(u64::from_le_bytes(self.carry) ^ (self.filled as u64) << 56);
        }
        self.h
    }
}

/// Numbers written as little-endian bytes.
trait Le: Pod {
    fn put(self, out: &mut Vec<u8>);
}
impl Le for u8 {
    fn put(self, out: &mut Vec<u8>) {
        out.push(self);
    }
}
impl Le for u32 {
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}
impl Le for u64 {
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}
impl Le for f32 {
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

fn pad(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

/// One segment's data, ready to write.
struct Out<'a> {
    view: View<'a>,
    live: usize,
    sorted_keys: Vec<u32>,
    sorted_nodes: Vec<u32>,
    deleted: &'a [u64],
}

impl Out<'_> {
    fn lens(&self) -> [usize; 9] {
        let n = self.view.len();
        [
            n * 4,
            n,
            self.view.links0.len() * 4,
            n * 4,
            self.view.upper.len() * 4,
            self.live * 4,
            self.live * 4,
            n.div_ceil(64) * 8,
            self.view.vectors.len() * 4,
        ]
    }
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_path_buf(), source }
}

struct Writer<'p> {
    w: BufWriter<File>,
    path: &'p Path,
    pos: usize,
    buf: Vec<u8>,
    /// Everything but vector values.
    hash: Hasher,
}

impl Writer<'_> {
    fn bytes(&mut self, b: &[u8], hash: bool) -> Result<()> {
        if hash {
            self.hash.feed(b);
        }
        self.w.write_all(b).map_err(io_err(self.path))?;
        self.pos += b.len();
        Ok(())
    }

    fn align(&mut self) -> Result<()> {
        let zeros = [0u8; ALIGN];
        let n = pad(self.pos) - self.pos;
        self.bytes(&zeros[..n], true)
    }

    fn slice<T: Le>(&mut self, s: &[T], hash: bool) -> Result<()> {
        let mut buf = std::mem::take(&mut self.buf);
        for chunk in s.chunks(16384) {
            buf.clear();
            chunk.iter().for_each(|&x| x.put(&mut buf));
            self.bytes(&buf, hash)?;
        }
        self.buf = buf;
        Ok(())
    }
}

pub(crate) fn save(index: &Hnsw, path: &Path) -> Result<()> {
    let outs: Vec<Out<'_>> = index
        .segments
        .iter()
        .filter(|s| s.live > 0)
        .map(|s| {
            let view = s.view();
            let mut pairs: Vec<(u32, u32)> =
                (0..view.len() as u32).filter(|&n| !view.is_deleted(n)).map(|n| (view.keys[n as usize], n)).collect();
            pairs.sort_unstable();
            Out {
                view,
                live: s.live,
                sorted_keys: pairs.iter().map(|p| p.0).collect(),
                sorted_nodes: pairs.iter().map(|p| p.1).collect(),
                deleted: &s.deleted,
            }
        })
        .collect();

    // Layout.
    let mut pos = pad(HEADER + outs.len() * SEG_DESC);
    let mut table = Vec::with_capacity(outs.len() * SEG_DESC);
    let mut all_lens = Vec::new();
    for o in &outs {
        let v = &o.view;
        (v.len() as u32).put(&mut table);
        (o.live as u32).put(&mut table);
        (v.max_level as u32).put(&mut table);
        v.entry.unwrap_or(NONE).put(&mut table);
        let lens = o.lens();
        for &len in &lens {
            (pos as u64).put(&mut table);
            (len as u64).put(&mut table);
            pos = pad(pos + len);
        }
        all_lens.push(lens);
    }
    let file_len = pos;
    let mut header = Vec::with_capacity(HEADER);
    header.extend_from_slice(MAGIC);
    VERSION.put(&mut header);
    (index.metric as u32).put(&mut header);
    (index.dim as u32).put(&mut header);
    (index.params.m() as u32).put(&mut header);
    (index.params.ef_construction() as u32).put(&mut header);
    (index.params.ef_search() as u32).put(&mut header);
    index.params.seed().put(&mut header);
    index.next_seq.put(&mut header);
    (outs.len() as u32).put(&mut header);
    0u32.put(&mut header);
    (file_len as u64).put(&mut header);
    0u64.put(&mut header); // checksum, patched below
    header.resize(HEADER, 0);

    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().ok_or_else(|| Error::InvalidInput(format!("{}: not a file path", path.display())))?;
    let tmp = dir.join(format!(
        ".{}.tmp.{}.{}",
        name.to_string_lossy(),
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| -> Result<()> {
        let file = OpenOptions::new().write(true).create_new(true).open(&tmp).map_err(io_err(&tmp))?;
        let mut w = Writer {
            w: BufWriter::with_capacity(1 << 20, file),
            path: &tmp,
            pos: 0,
            buf: Vec::new(),
            hash: Hasher::new(),
        };
        w.bytes(&header, true)?;
        w.bytes(&table, true)?;
        w.align()?;
        for o in &outs {
            let v = &o.view;
            w.slice(v.keys, true)?;
            w.align()?;
            w.slice(v.levels, true)?;
            w.align()?;
            w.slice(v.links0, true)?;
            w.align()?;
            w.slice(v.upper_offsets, true)?;
            w.align()?;
            w.slice(v.upper, true)?;
            w.align()?;
            w.slice(&o.sorted_keys, true)?;
            w.align()?;
            w.slice(&o.sorted_nodes, true)?;
            w.align()?;
            w.slice(&o.deleted[..v.len().div_ceil(64)], true)?;
            w.align()?;
            w.slice(v.vectors, false)?;
            w.align()?;
        }
        debug_assert_eq!(w.pos, file_len);
        let sum = std::mem::replace(&mut w.hash, Hasher::new()).finish();
        let mut file = w.w.into_inner().map_err(|e| Error::Io { path: tmp.clone(), source: e.into_error() })?;
        file.seek(SeekFrom::Start(64)).map_err(io_err(&tmp))?;
        file.write_all(&sum.to_le_bytes()).map_err(io_err(&tmp))?;
        file.sync_all().map_err(io_err(&tmp))?;
        drop(file);
        fs::rename(&tmp, path).map_err(io_err(path))?;
        // Make the rename itself durable.
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

pub(crate) fn open(path: &Path) -> Result<Hnsw> {
    let corrupt = |reason: String| Error::Corrupt { path: path.to_path_buf(), reason };
    if cfg!(target_endian = "big") {
        return Err(corrupt("index files are little-endian; this machine is big-endian".into()));
    }
    let file = File::open(path).map_err(io_err(path))?;
    let actual = file.metadata().map_err(io_err(path))?.len();
    if actual < HEADER as u64 {
        return Err(corrupt(format!("truncated: {actual} bytes, the header alone is {HEADER}")));
    }
    // SAFETY: the file is only ever replaced by an atomic rename, never rewritten in place, so
    // the mapped bytes do not change under us (a foreign writer doing so is outside the contract).
    let map = unsafe { Mmap::map(&file) }.map_err(io_err(path))?;
    let b: &[u8] = &map;
    if &b[..8] != MAGIC {
        return Err(corrupt("not a warmstart index (bad magic)".into()));
    }
    let version = u32_at(b, 8);
    if version != VERSION {
        return Err(corrupt(format!("unsupported version {version} (this build reads {VERSION})")));
    }
    let metric = match u32_at(b, 12) {
        0 => Metric::InnerProduct,
        1 => Metric::Cosine,
        other => return Err(corrupt(format!("unknown metric {other}"))),
    };
    let dim = u32_at(b, 16) as usize;
    if dim == 0 || dim > MAX_DIM {
        return Err(corrupt(format!("dimension {dim} out of range 1..={MAX_DIM}")));
    }
    let m = u32_at(b, 20) as usize;
    if !(2..=MAX_M).contains(&m) {
        return Err(corrupt(format!("m = {m} out of range")));
    }
    let params = HnswParams::from_raw(m, u32_at(b, 24) as usize, u32_at(b, 28) as usize, u64_at(b, 32))
        .map_err(|e| corrupt(e.to_string()))?;
    let next_seq = u64_at(b, 40);
    let count = u32_at(b, 48) as usize;
    let file_len = u64_at(b, 56);
    if file_len != actual {
        return Err(corrupt(format!("header says {file_len} bytes but the file has {actual} (truncated?)")));
    }
    let len = b.len();
    if count > (len - HEADER) / SEG_DESC {
        return Err(corrupt(format!("{count} segments do not fit in {len} bytes")));
    }
    let stored_sum = u64_at(b, 64);

    let m0 = 2 * m;
    let mut descs = Vec::with_capacity(count);
    for si in 0..count {
        let d = &b[HEADER + si * SEG_DESC..HEADER + (si + 1) * SEG_DESC];
        let n = u32_at(d, 0) as usize;
        let live = u32_at(d, 4) as usize;
        let max_level = u32_at(d, 8) as usize;
        let entry = u32_at(d, 12);
        let seg_err = |what: String| corrupt(format!("segment {si}: {what}"));
        if n >= NONE as usize || live > n || max_level > MAX_LEVEL {
            return Err(seg_err(format!("bad counts (n {n}, live {live}, max level {max_level})")));
        }
        let mut ranges = Vec::with_capacity(9);
        for s in 0..9 {
            let off = u64_at(d, 16 + s * 16);
            let l = u64_at(d, 24 + s * 16);
            let end = off.checked_add(l).filter(|&e| e <= len as u64);
            let Some(end) = end else { return Err(seg_err(format!("section {s} runs past the end of the file"))) };
            if !off.is_multiple_of(ALIGN as u64) || off < (HEADER + count * SEG_DESC) as u64 {
                return Err(seg_err(format!("section {s} at a bad offset {off}")));
            }
            ranges.push(off as usize..end as usize);
        }
        let expect = |s: usize, want: Option<usize>| -> Result<()> {
            match want {
                Some(w) if ranges[s].len() == w => Ok(()),
                _ => {
                    Err(corrupt(format!("segment {si}: section {s} has {} bytes, expected {want:?}", ranges[s].len())))
                }
            }
        };
        expect(0, n.checked_mul(4))?;
        expect(1, Some(n))?;
        expect(2, n.checked_mul(1 + m0).and_then(|x| x.checked_mul(4)))?;
        expect(3, n.checked_mul(4))?;
        if ranges[4].len() % 4 != 0 || ranges[4].len() / 4 >= NONE as usize {
            return Err(seg_err("upper links section is not whole words".into()));
        }
        expect(5, Some(live * 4))?;
        expect(6, Some(live * 4))?;
        expect(7, Some(n.div_ceil(64) * 8))?;
        expect(8, n.checked_mul(dim).and_then(|x| x.checked_mul(4)))?;
        descs.push((n, live, max_level, entry, ranges));
    }
    // Checksum: every byte but the checksum itself and the vector values, in file order.
    let mut vector_ranges: Vec<std::ops::Range<usize>> = descs.iter().map(|d| d.4[8].clone()).collect();
    vector_ranges.sort_by_key(|r| r.start);
    let mut h = Hasher::new();
    h.feed(&b[..64]);
    h.feed(&[0u8; 8]);
    let mut at = 72;
    for r in vector_ranges {
        if r.start < at {
            return Err(corrupt("overlapping vector sections".into()));
        }
        h.feed(&b[at..r.start]);
        at = r.end;
    }
    h.feed(&b[at..]);
    if h.finish() != stored_sum {
        return Err(corrupt("checksum mismatch (the file is damaged)".into()));
    }

    let map = Arc::new(map);
    let mut segments: Vec<Segment> = Vec::with_capacity(count);
    for (si, (n, live, max_level, entry, r)) in descs.into_iter().enumerate() {
        let seg_err = |what: String| corrupt(format!("segment {si}: {what}"));
        let b: &[u8] = &map;
        let keys: &[u32] = cast(&b[r[0].clone()]);
        let levels: &[u8] = &b[r[1].clone()];
        let links0: &[u32] = cast(&b[r[2].clone()]);
        let upper_offsets: &[u32] = cast(&b[r[3].clone()]);
        let upper: &[u32] = cast(&b[r[4].clone()]);
        let sorted_keys: &[u32] = cast(&b[r[5].clone()]);
        let sorted_nodes: &[u32] = cast(&b[r[6].clone()]);
        let deleted: Vec<u64> = cast::<u64>(&b[r[7].clone()]).to_vec();
        if keys.len() != n || links0.len() != n * (1 + m0) || upper_offsets.len() != n {
            return Err(seg_err("misaligned section".into()));
        }
        let entry = if n == 0 {
            None
        } else if (entry as usize) < n && levels[entry as usize] as usize == max_level {
            Some(entry)
        } else {
            return Err(seg_err(format!("entry point {entry} is not a node of the top level {max_level}")));
        };
        for node in 0..n {
            let level = levels[node] as usize;
            if level > max_level {
                return Err(seg_err(format!("node {node} has level {level} above the top level {max_level}")));
            }
            let check = |list: &[u32], cap: usize, l: usize| -> Result<()> {
                let c = list[0] as usize;
                if c > cap {
                    return Err(seg_err(format!("node {node} level {l}: {c} links, at most {cap}")));
                }
                for &nb in &list[1..1 + c] {
                    if nb as usize >= n || (levels[nb as usize] as usize) < l {
                        return Err(seg_err(format!("node {node} level {l}: bad link to {nb}")));
                    }
                }
                Ok(())
            };
            check(&links0[node * (1 + m0)..(node + 1) * (1 + m0)], m0, 0)?;
            if level > 0 {
                let start = upper_offsets[node] as usize;
                if start + level * (1 + m) > upper.len() {
                    return Err(seg_err(format!("node {node}: upper links out of bounds")));
                }
                for l in 1..=level {
                    let s = start + (l - 1) * (1 + m);
                    check(&upper[s..s + 1 + m], m, l)?;
                }
            }
        }
        let is_deleted = |node: usize| deleted[node / 64] >> (node % 64) & 1 == 1;
        let dead = (0..n).filter(|&i| is_deleted(i)).count();
        let stray = deleted.last().is_some_and(|&w| n % 64 != 0 && w >> (n % 64) != 0);
        if n - dead != live || stray {
            return Err(seg_err(format!("{live} live nodes in the header, {} in the tombstones", n - dead)));
        }
        for (i, (&key, &node)) in sorted_keys.iter().zip(sorted_nodes).enumerate() {
            if i > 0 && sorted_keys[i - 1] >= key {
                return Err(seg_err("key lookup is not sorted".into()));
            }
            if node as usize >= n || keys[node as usize] != key || is_deleted(node as usize) {
                return Err(seg_err(format!("key lookup entry {key} -> node {node} is inconsistent")));
            }
        }
        for earlier in &segments {
            if let Some(&dup) = sorted_keys.iter().find(|&&k| earlier.find(k).is_some()) {
                return Err(seg_err(format!("key {dup} is live in two segments")));
            }
        }
        let sections = MappedSections {
            keys: r[0].clone(),
            levels: r[1].clone(),
            links0: r[2].clone(),
            upper_offsets: r[3].clone(),
            upper: r[4].clone(),
            sorted_keys: r[5].clone(),
            sorted_nodes: r[6].clone(),
            vectors: r[8].clone(),
        };
        let body = Body::Mapped(Mapped { map: Arc::clone(&map), dim, m, entry, max_level, sections });
        segments.push(Segment { body, deleted, live });
    }
    let live = segments.iter().map(|s| s.live).sum();
    Ok(Hnsw { params, metric, dim, segments, next_seq, live })
}
