//! Approximate nearest-neighbour search for serving: a pure-Rust HNSW index (Malkov & Yashunin)
//! over `u32` keys, with similarity search (inner product or cosine), upserts, tombstones and a
//! single-file, memory-mapped on-disk form.
//!
//! # Design
//!
//! * **Graph.** Standard HNSW: a node's level is `floor(-ln U / ln m)` drawn from the build seed
//!   and its insertion number; `m` links per node on upper layers and `m0 = 2m` on level 0;
//!   neighbours are picked with the heuristic (keep a candidate only if it is closer to the new
//!   node than to every neighbour kept so far), and over-full reverse lists are pruned the same way.
//! * **Deterministic parallel build.** Nodes are linked in batches (at most 1/32 of the graph
//!   linked so far): each node of a batch plans its links against the graph as it was before the
//!   batch, in parallel, and reverse links are merged per target, in parallel. The result depends
//!   only on the input and the seed, never on the thread count or timing.
//! * **Flat storage for query speed.** Vectors live contiguously in node order; level-0 links are
//!   one array with fixed stride `1 + m0` (`[count, ids...]`); upper layers sit in a second array
//!   reached by a per-node offset. Queries reuse per-thread scratch (a generation-stamped visited
//!   array and the two heaps), prefetch the next neighbour's vector, and compute dot products with
//!   an AVX2/FMA kernel chosen at run time (portable 8-accumulator loop otherwise).
//! * **Segments.** An index is a list of segments. A built index is one owned segment that grows
//!   in place on upsert. An opened index maps each stored segment read-only (no rebuild); the
//!   first upsert after opening starts a new owned segment (a small HNSW of its own) and queries
//!   search every segment and merge. Replacing or removing a key sets a tombstone bit on its
//!   node: tombstoned nodes still route searches but are never returned. [`Hnsw::save`] writes all
//!   segments; [`Hnsw::compact`] rebuilds one graph from the live vectors when segments or
//!   tombstones pile up.
//!
//! # File format
//!
//! One little-endian file: a 128-byte header (magic `WSANNIDX`, version, metric, dimension,
//! parameters, file length, checksum), a table with one 160-byte descriptor per segment, then
//! 64-byte-aligned sections per segment (keys, levels, level-0 links, upper-link offsets, upper
//! links, sorted key lookup, tombstones, vectors). See the `persist` module source for the exact
//! layout. Files are written to a temporary file in the same directory, fsynced and renamed over
//! the target, so readers see either the old or the new index. Opening validates every offset,
//! length, link and lookup entry and a checksum of everything but the vectors, so a damaged or
//! truncated file gives [`Error::Corrupt`], never a panic.

mod distance;
mod graph;
mod params;
mod persist;
mod segment;

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Inner product of two equal-length slices (the kernel the index uses; AVX2/FMA when available).
pub use distance::dot;
use graph::{draw_level, Graph, Near, View};
pub use params::{HnswParams, HnswParamsBuilder};
use segment::{Body, Segment};

/// Largest supported vector dimension.
pub const MAX_DIM: usize = 1 << 16;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A parameter is out of range.
    #[error("invalid parameter: {0}")]
    InvalidParams(String),
    /// Vectors, keys or queries that cannot be indexed or searched (wording names the row/key).
    #[error("{0}")]
    InvalidInput(String),
    /// A vector or query of the wrong length.
    #[error("dimension mismatch: expected {expected}, got {got}")]
    Dimension {
        /// The index's dimension.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file is not a valid index (damaged, truncated, or another format).
    #[error("{}: corrupt index file: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Similarity between vectors; higher is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Metric {
    /// Raw inner product.
    InnerProduct = 0,
    /// Cosine: stored vectors and queries are normalised to unit length, then inner product.
    Cosine = 1,
}

/// An HNSW index over `u32` keys; see the crate documentation.
pub struct Hnsw {
    params: HnswParams,
    metric: Metric,
    dim: usize,
    segments: Vec<Segment>,
    /// Insertions so far (the level draw of the next one uses it).
    next_seq: u64,
    live: usize,
}

impl std::fmt::Debug for Hnsw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hnsw")
            .field("metric", &self.metric)
            .field("dim", &self.dim)
            .field("len", &self.live)
            .field("segments", &self.segments.len())
            .field("params", &self.params)
            .finish()
    }
}

impl Hnsw {
    /// Builds an index from `keys.len()` row-major vectors of `dim` values (in parallel on the
    /// rayon pool, deterministic for `params.seed()`). Errors name the offending row and key.
    pub fn build(params: &HnswParams, metric: Metric, dim: usize, keys: &[u32], vectors: &[f32]) -> Result<Hnsw> {
        if dim == 0 || dim > MAX_DIM {
            return Err(Error::InvalidInput(format!("dimension must be in 1..={MAX_DIM}, got {dim}")));
        }
        if Some(vectors.len()) != keys.len().checked_mul(dim) {
            return Err(Error::InvalidInput(format!(
                "{} vector values for {} keys of dimension {dim} (expected {})",
                vectors.len(),
                keys.len(),
                keys.len().saturating_mul(dim)
            )));
        }
        if keys.len() >= u32::MAX as usize {
            return Err(Error::InvalidInput(format!("{} keys, at most {}", keys.len(), u32::MAX - 1)));
        }
        let mut first_row: HashMap<u32, usize> = HashMap::with_capacity(keys.len());
        for (row, &key) in keys.iter().enumerate() {
            if let Some(prev) = first_row.insert(key, row) {
                return Err(Error::InvalidInput(format!("key {key} appears twice (rows {prev} and {row})")));
            }
        }
        let mut graph = Graph::new(dim, params);
        graph.vectors.reserve_exact(vectors.len());
        graph.keys.reserve_exact(keys.len());
        graph.links0.reserve_exact(keys.len() * (1 + params.m0()));
        let mult = params.level_mult();
        for (row, (&key, v)) in keys.iter().zip(vectors.chunks_exact(dim)).enumerate() {
            let v = prepare(metric, v, || format!("row {row} (key {key})"))?;
            graph.push(key, &v, draw_level(params.seed(), row as u64, mult))?;
        }
        let mut seg = Segment::owned(graph);
        seg.deleted = vec![0; keys.len().div_ceil(64)];
        seg.live = keys.len();
        if let Body::Owned { graph, lookup } = &mut seg.body {
            graph.link(0, params.ef_construction(), &seg.deleted);
            *lookup = keys.iter().enumerate().map(|(i, &k)| (k, i as u32)).collect();
        }
        Ok(Hnsw {
            params: params.clone(),
            metric,
            dim,
            segments: vec![seg],
            next_seq: keys.len() as u64,
            live: keys.len(),
        })
    }

    /// Inserts `key` (searchable at once) or replaces its vector if present.
    pub fn upsert(&mut self, key: u32, vector: &[f32]) -> Result<()> {
        if vector.len() != self.dim {
            return Err(Error::Dimension { expected: self.dim, got: vector.len() });
        }
        let v = prepare(self.metric, vector, || format!("vector for key {key}"))?;
        let old = self.locate(key);
        if !matches!(self.segments.last().map(|s| &s.body), Some(Body::Owned { .. })) {
            self.segments.push(Segment::owned(Graph::new(self.dim, &self.params)));
        }
        let level = draw_level(self.params.seed(), self.next_seq, self.params.level_mult());
        let tail = self.segments.len() - 1;
        let Segment { body: Body::Owned { graph, .. }, deleted, .. } = &mut self.segments[tail] else {
            return Err(Error::InvalidInput("internal: no writable segment".into()));
        };
        let node = graph.push(key, &v, level)?;
        deleted.resize(graph.len().div_ceil(64), 0);
        if let Some((s, old_node)) = old {
            self.segments[s].kill(old_node, key);
            self.live -= 1;
        }
        let seg = &mut self.segments[tail];
        if let Body::Owned { graph, lookup } = &mut seg.body {
            graph.link(node as usize, self.params.ef_construction(), &seg.deleted);
            lookup.insert(key, node);
        }
        seg.live += 1;
        self.live += 1;
        self.next_seq += 1;
        Ok(())
    }

    /// Tombstones `key`; it is never returned by a search again. False if it was not present.
    pub fn remove(&mut self, key: u32) -> bool {
        match self.locate(key) {
            Some((s, node)) => {
                self.segments[s].kill(node, key);
                self.live -= 1;
                true
            }
            None => false,
        }
    }

    /// The `k` most similar live keys with their similarity, best first. `ef` (candidate list
    /// size, raised to `k`) defaults to the parameters' `ef_search`.
    pub fn search(&self, query: &[f32], k: usize, ef: Option<usize>) -> Result<Vec<(u32, f32)>> {
        self.search_impl(query, k, ef, None)
    }

    /// Like [`search`](Hnsw::search) but only keys for which `allow` is true are returned. The
    /// search keeps walking the graph until it has `ef` allowed keys, so a very selective filter
    /// costs up to a full scan.
    pub fn search_filtered(
        &self,
        query: &[f32],
        k: usize,
        ef: Option<usize>,
        allow: &dyn Fn(u32) -> bool,
    ) -> Result<Vec<(u32, f32)>> {
        self.search_impl(query, k, ef, Some(allow))
    }

    /// Brute force over every live key: the exact `k` best, for recall measurement and tests.
    pub fn exact_search(&self, query: &[f32], k: usize) -> Result<Vec<(u32, f32)>> {
        let q = self.query(query)?;
        let found = self.segments.iter().map(|s| {
            let v = s.view();
            (v, v.exact(&q, k, None))
        });
        Ok(merge(found, k))
    }

    fn search_impl(
        &self,
        query: &[f32],
        k: usize,
        ef: Option<usize>,
        allow: Option<&dyn Fn(u32) -> bool>,
    ) -> Result<Vec<(u32, f32)>> {
        let q = self.query(query)?;
        if k == 0 || self.live == 0 {
            return Ok(Vec::new());
        }
        let ef = ef.unwrap_or(self.params.ef_search()).max(k);
        let found = self.segments.iter().filter(|s| s.live > 0).map(|s| {
            let v = s.view();
            (v, v.knn(&q, k, ef, allow))
        });
        Ok(merge(found, k))
    }

    /// Checks a query and normalises it for cosine.
    fn query<'q>(&self, query: &'q [f32]) -> Result<Cow<'q, [f32]>> {
        if query.len() != self.dim {
            return Err(Error::Dimension { expected: self.dim, got: query.len() });
        }
        prepare(self.metric, query, || "query".to_string())
    }

    /// Segment and node of a live key.
    fn locate(&self, key: u32) -> Option<(usize, u32)> {
        self.segments.iter().enumerate().rev().find_map(|(i, s)| s.find(key).map(|n| (i, n)))
    }

    /// Writes the whole index (every segment and tombstone) to `path` atomically: a temporary
    /// file in the same directory, fsync, rename.
    pub fn save(&self, path: &Path) -> Result<()> {
        persist::save(self, path)
    }

    /// Opens a saved index by memory-mapping it (no rebuild). The file must not be modified in
    /// place while open; [`save`](Hnsw::save) replaces files by rename, which is safe.
    pub fn open(path: &Path) -> Result<Hnsw> {
        persist::open(path)
    }

    /// Rebuilds a single in-memory graph from the live vectors, dropping tombstones and segments.
    pub fn compact(&mut self) -> Result<()> {
        let mut keys = Vec::with_capacity(self.live);
        let mut vectors = Vec::with_capacity(self.live * self.dim);
        for s in &self.segments {
            let v = s.view();
            for node in (0..v.len() as u32).filter(|&n| !v.is_deleted(n)) {
                keys.push(v.keys[node as usize]);
                vectors.extend_from_slice(v.vector(node));
            }
        }
        // Stored vectors are already normalised for cosine; inner product keeps them as given.
        *self = Hnsw::build(&self.params, self.metric, self.dim, &keys, &vectors)?;
        Ok(())
    }

    /// Number of live keys.
    pub fn len(&self) -> usize {
        self.live
    }
    /// True when no key is live.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }
    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }
    /// Similarity measure.
    pub fn metric(&self) -> Metric {
        self.metric
    }
    /// Construction and search parameters.
    pub fn params(&self) -> &HnswParams {
        &self.params
    }
    /// Number of segments (1 after build or compact; grows by one per open-then-upsert cycle).
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }
    /// Whether `key` is live.
    pub fn contains(&self, key: u32) -> bool {
        self.locate(key).is_some()
    }
    /// The stored vector of `key` (unit length under [`Metric::Cosine`]).
    pub fn vector(&self, key: u32) -> Option<Vec<f32>> {
        let (s, node) = self.locate(key)?;
        Some(self.segments[s].view().vector(node).to_vec())
    }
    /// Bytes held: heap allocations plus mapped file sections.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.segments.iter().map(|s| s.memory_bytes()).sum::<usize>()
    }
}

/// Checks a vector is finite and, for cosine, normalises it (a zero vector is refused).
fn prepare<'v>(metric: Metric, v: &'v [f32], what: impl Fn() -> String) -> Result<Cow<'v, [f32]>> {
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(Error::InvalidInput(format!("{} has a non-finite value at position {i}", what())));
    }
    match metric {
        Metric::InnerProduct => Ok(Cow::Borrowed(v)),
        Metric::Cosine => {
            let mut owned = v.to_vec();
            if distance::normalize(&mut owned) {
                Ok(Cow::Owned(owned))
            } else {
                Err(Error::InvalidInput(format!("{} has zero length, which has no cosine", what())))
            }
        }
    }
}

/// Merges per-segment results (node ids) into `(key, similarity)`, best first, ties by key.
fn merge<'a>(found: impl Iterator<Item = (View<'a>, Vec<Near>)>, k: usize) -> Vec<(u32, f32)> {
    let mut all: Vec<(u32, f32)> = Vec::new();
    let mut parts = 0;
    for (v, list) in found {
        parts += 1;
        all.extend(list.iter().map(|n| (v.keys[n.node as usize], n.sim)));
    }
    if parts > 1 {
        all.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        all.truncate(k);
    }
    all
}

#[cfg(test)]
mod tests;
