//! The HNSW graph: flat storage, layer search, and batched insertion.
//!
//! Storage is a handful of flat arrays shared by owned (in-memory, growable) and mapped
//! (read-only, from a file) segments through [`View`]: vectors row-major in node order, level-0
//! links in one array with a fixed stride of `1 + m0` (`[count, n0, n1, ...]`), and the rarer
//! upper-layer lists in a second array reached through a per-node offset (stride `1 + m` per
//! level, level 1 first).
//!
//! Insertion runs in batches so that a parallel build is still deterministic: every node of a
//! batch searches the graph as it was before the batch (in parallel, read-only), picks its own
//! neighbours with the heuristic of Malkov & Yashunin, then the reverse links are grouped per
//! target and each target's list is merged and, when over capacity, pruned with the same
//! heuristic (again in parallel, one task per target). Batches are at most 1/32 of the graph
//! already linked, so a node misses at most a few percent of potential neighbours (those in its
//! own batch), which later insertions repair through reverse links.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

use rayon::prelude::*;

use crate::distance::{dispatch, prefetch, Kernel, WithKernel};
use crate::params::{HnswParams, MAX_LEVEL};
use crate::{Error, Result};

/// A node with its similarity to the query; max-heap order (best on top), ties to lower ids.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Near {
    pub sim: f32,
    pub node: u32,
}

impl PartialEq for Near {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Near {}
impl PartialOrd for Near {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Near {
    fn cmp(&self, o: &Self) -> Ordering {
        self.sim.total_cmp(&o.sim).then_with(|| o.node.cmp(&self.node))
    }
}

/// Reverse of [`Near`]: the worst result sits on top of a `BinaryHeap<Far>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Far(pub Near);
impl PartialOrd for Far {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Far {
    fn cmp(&self, o: &Self) -> Ordering {
        o.0.cmp(&self.0)
    }
}

/// Per-thread search buffers, reused across queries: a generation-stamped visited array and the
/// two heaps.
#[derive(Default)]
pub(crate) struct Scratch {
    visited: Vec<u16>,
    stamp: u16,
    cand: BinaryHeap<Near>,
    res: BinaryHeap<Far>,
    fresh: Vec<u32>,
}

impl Scratch {
    fn begin(&mut self, n: usize) {
        if self.visited.len() < n {
            self.visited.resize(n, 0);
        }
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            self.visited.iter_mut().for_each(|v| *v = 0);
            self.stamp = 1;
        }
        self.cand.clear();
        self.res.clear();
    }

    /// Results of the last layer search, best first.
    fn sorted_results(&mut self) -> Vec<Near> {
        let mut out: Vec<Near> = self.res.drain().map(|f| f.0).collect();
        out.sort_unstable_by(|a, b| b.cmp(a));
        out
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Runs `f` with this thread's scratch buffers (or fresh ones if a filter callback re-entered).
pub(crate) fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut s) => f(&mut s),
        Err(_) => f(&mut Scratch::default()),
    })
}

/// Read-only view of one segment's arrays; what search and insertion planning work on.
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    pub dim: usize,
    pub m: usize,
    pub m0: usize,
    pub entry: Option<u32>,
    pub max_level: usize,
    pub vectors: &'a [f32],
    pub keys: &'a [u32],
    pub levels: &'a [u8],
    pub links0: &'a [u32],
    pub upper_offsets: &'a [u32],
    pub upper: &'a [u32],
    pub deleted: &'a [u64],
    /// Whether any bit of `deleted` is set (spares queries the check when none is).
    pub any_deleted: bool,
}

impl<'a> View<'a> {
    #[inline(always)]
    pub fn vector(&self, node: u32) -> &'a [f32] {
        let s = node as usize * self.dim;
        &self.vectors[s..s + self.dim]
    }

    #[inline(always)]
    pub fn neighbors(&self, node: u32, level: usize) -> &'a [u32] {
        if level == 0 {
            let s = node as usize * (1 + self.m0);
            let c = self.links0[s] as usize;
            &self.links0[s + 1..s + 1 + c]
        } else {
            let s = self.upper_offsets[node as usize] as usize + (level - 1) * (1 + self.m);
            let c = self.upper[s] as usize;
            &self.upper[s + 1..s + 1 + c]
        }
    }

    #[inline(always)]
    pub fn is_deleted(&self, node: u32) -> bool {
        self.deleted[node as usize / 64] >> (node % 64) & 1 == 1
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Greedy walk (candidate list of one) from `cur` down to layer `to_level + 1`.
    #[inline(always)]
    fn descend<K: Kernel>(&self, q: &[f32], mut cur: Near, to_level: usize) -> Near {
        let mut level = self.max_level;
        while level > to_level {
            loop {
                let mut moved = false;
                for &nb in self.neighbors(cur.node, level) {
                    let s = K::dot(q, self.vector(nb));
                    if s > cur.sim {
                        cur = Near { sim: s, node: nb };
                        moved = true;
                    }
                }
                if !moved {
                    break;
                }
            }
            level -= 1;
        }
        cur
    }

    /// Best-first search of one layer from `entries`; leaves up to `ef` eligible nodes in
    /// `s.res`. Ineligible nodes (tombstoned, filtered out) are traversed but never returned.
    #[inline(always)]
    fn search_layer<K: Kernel, F: Fn(u32) -> bool>(
        &self,
        q: &[f32],
        entries: &[Near],
        level: usize,
        ef: usize,
        s: &mut Scratch,
        eligible: F,
    ) {
        s.begin(self.len());
        for &e in entries {
            if s.visited[e.node as usize] == s.stamp {
                continue;
            }
            s.visited[e.node as usize] = s.stamp;
            s.cand.push(e);
            if eligible(e.node) {
                s.res.push(Far(e));
                if s.res.len() > ef {
                    s.res.pop();
                }
            }
        }
        let stamp = s.stamp;
        while let Some(c) = s.cand.pop() {
            let mut bound = match s.res.peek() {
                Some(w) if s.res.len() >= ef => w.0.sim,
                _ => f32::NEG_INFINITY,
            };
            if c.sim < bound {
                break;
            }
            s.fresh.clear();
            for &nb in self.neighbors(c.node, level) {
                let v = &mut s.visited[nb as usize];
                if *v != stamp {
                    *v = stamp;
                    s.fresh.push(nb);
                }
            }
            if let Some(&first) = s.fresh.first() {
                prefetch(self.vector(first));
            }
            for i in 0..s.fresh.len() {
                let nb = s.fresh[i];
                if let Some(&next) = s.fresh.get(i + 1) {
                    prefetch(self.vector(next));
                }
                let sim = K::dot(q, self.vector(nb));
                if sim > bound || s.res.len() < ef {
                    let n = Near { sim, node: nb };
                    s.cand.push(n);
                    if eligible(nb) {
                        s.res.push(Far(n));
                        if s.res.len() > ef {
                            s.res.pop();
                        }
                        if s.res.len() >= ef {
                            bound = s.res.peek().map_or(f32::NEG_INFINITY, |w| w.0.sim);
                        }
                    }
                }
            }
        }
    }

    /// The `k` best eligible nodes for `q` with candidate list `ef` (≥ k), best first.
    pub fn knn(&self, q: &[f32], k: usize, ef: usize, allow: Option<&dyn Fn(u32) -> bool>) -> Vec<Near> {
        struct Job<'v, 'q, 'f, 's> {
            view: &'v View<'v>,
            q: &'q [f32],
            k: usize,
            ef: usize,
            allow: Option<&'f dyn Fn(u32) -> bool>,
            s: &'s mut Scratch,
        }
        impl WithKernel for Job<'_, '_, '_, '_> {
            type Out = Vec<Near>;
            #[inline(always)]
            fn run<K: Kernel>(self) -> Vec<Near> {
                self.view.knn_with::<K>(self.q, self.k, self.ef, self.allow, self.s)
            }
        }
        with_scratch(|s| dispatch(Job { view: self, q, k, ef, allow, s }))
    }

    #[inline(always)]
    fn knn_with<K: Kernel>(
        &self,
        q: &[f32],
        k: usize,
        ef: usize,
        allow: Option<&dyn Fn(u32) -> bool>,
        s: &mut Scratch,
    ) -> Vec<Near> {
        let Some(entry) = self.entry else { return Vec::new() };
        let start = Near { sim: K::dot(q, self.vector(entry)), node: entry };
        let ep = self.descend::<K>(q, start, 0);
        match (allow, self.any_deleted) {
            (None, false) => self.search_layer::<K, _>(q, &[ep], 0, ef, s, |_| true),
            (None, true) => self.search_layer::<K, _>(q, &[ep], 0, ef, s, |n| !self.is_deleted(n)),
            (Some(f), _) => {
                self.search_layer::<K, _>(q, &[ep], 0, ef, s, |n| !self.is_deleted(n) && f(self.keys[n as usize]))
            }
        }
        let mut out = s.sorted_results();
        out.truncate(k);
        out
    }

    /// Brute force over live nodes accepted by `allow`: the `k` best, best first.
    pub fn exact(&self, q: &[f32], k: usize, allow: Option<&dyn Fn(u32) -> bool>) -> Vec<Near> {
        struct Job<'v, 'q, 'f> {
            view: &'v View<'v>,
            q: &'q [f32],
            k: usize,
            allow: Option<&'f dyn Fn(u32) -> bool>,
        }
        impl WithKernel for Job<'_, '_, '_> {
            type Out = Vec<Near>;
            #[inline(always)]
            fn run<K: Kernel>(self) -> Vec<Near> {
                self.view.exact_with::<K>(self.q, self.k, self.allow)
            }
        }
        dispatch(Job { view: self, q, k, allow })
    }

    #[inline(always)]
    fn exact_with<K: Kernel>(&self, q: &[f32], k: usize, allow: Option<&dyn Fn(u32) -> bool>) -> Vec<Near> {
        let mut heap: BinaryHeap<Far> = BinaryHeap::with_capacity(k + 1);
        for node in 0..self.len() as u32 {
            if self.is_deleted(node) || allow.is_some_and(|f| !f(self.keys[node as usize])) {
                continue;
            }
            let n = Near { sim: K::dot(q, self.vector(node)), node };
            if heap.len() < k {
                heap.push(Far(n));
            } else if heap.peek().is_some_and(|w| n > w.0) {
                heap.pop();
                heap.push(Far(n));
            }
        }
        let mut out: Vec<Near> = heap.into_iter().map(|f| f.0).collect();
        out.sort_unstable_by(|a, b| b.cmp(a));
        out
    }

    /// Neighbour selection heuristic: walks `cands` (best first) and keeps a candidate only if
    /// it is more similar to the base than to every neighbour already kept.
    #[inline(always)]
    fn select<K: Kernel>(&self, cands: &[Near], max: usize) -> Vec<u32> {
        let mut kept: Vec<u32> = Vec::with_capacity(max);
        for c in cands {
            if kept.len() >= max {
                break;
            }
            let vc = self.vector(c.node);
            if kept.iter().all(|&k| K::dot(vc, self.vector(k)) <= c.sim) {
                kept.push(c.node);
            }
        }
        kept
    }

    /// For a node not yet linked: its neighbours on each level `0..=min(level, max_level)`.
    fn plan(&self, node: u32, ef_construction: usize) -> Vec<Vec<u32>> {
        struct Job<'v, 's> {
            view: &'v View<'v>,
            node: u32,
            ef: usize,
            s: &'s mut Scratch,
        }
        impl WithKernel for Job<'_, '_> {
            type Out = Vec<Vec<u32>>;
            #[inline(always)]
            fn run<K: Kernel>(self) -> Vec<Vec<u32>> {
                self.view.plan_with::<K>(self.node, self.ef, self.s)
            }
        }
        with_scratch(|s| dispatch(Job { view: self, node, ef: ef_construction, s }))
    }

    #[inline(always)]
    fn plan_with<K: Kernel>(&self, node: u32, ef_construction: usize, s: &mut Scratch) -> Vec<Vec<u32>> {
        let Some(entry) = self.entry else { return Vec::new() };
        let q = self.vector(node);
        let level = self.levels[node as usize] as usize;
        let top = level.min(self.max_level);
        let start = Near { sim: K::dot(q, self.vector(entry)), node: entry };
        let mut entries = vec![self.descend::<K>(q, start, top)];
        let mut lists = vec![Vec::new(); top + 1];
        for l in (0..=top).rev() {
            self.search_layer::<K, _>(q, &entries, l, ef_construction, s, |_| true);
            let cands = s.sorted_results();
            lists[l] = self.select::<K>(&cands, self.m);
            entries = cands;
        }
        lists
    }

    /// New list for `target` on `level` after adding `added` (new nodes), pruned when over
    /// capacity.
    fn merged(&self, target: u32, level: usize, added: &[u32]) -> Vec<u32> {
        struct Job<'v, 'a> {
            view: &'v View<'v>,
            target: u32,
            level: usize,
            added: &'a [u32],
        }
        impl WithKernel for Job<'_, '_> {
            type Out = Vec<u32>;
            #[inline(always)]
            fn run<K: Kernel>(self) -> Vec<u32> {
                self.view.merged_with::<K>(self.target, self.level, self.added)
            }
        }
        dispatch(Job { view: self, target, level, added })
    }

    #[inline(always)]
    fn merged_with<K: Kernel>(&self, target: u32, level: usize, added: &[u32]) -> Vec<u32> {
        let cap = if level == 0 { self.m0 } else { self.m };
        let old = self.neighbors(target, level);
        if old.len() + added.len() <= cap {
            return old.iter().chain(added).copied().collect();
        }
        let vt = self.vector(target);
        let mut cands: Vec<Near> =
            old.iter().chain(added).map(|&n| Near { sim: K::dot(vt, self.vector(n)), node: n }).collect();
        cands.sort_unstable_by(|a, b| b.cmp(a));
        self.select::<K>(&cands, cap)
    }
}

/// An owned, growable graph segment.
#[derive(Clone, Debug, Default)]
pub(crate) struct Graph {
    pub dim: usize,
    pub m: usize,
    pub m0: usize,
    pub entry: Option<u32>,
    pub max_level: usize,
    pub vectors: Vec<f32>,
    pub keys: Vec<u32>,
    pub levels: Vec<u8>,
    pub links0: Vec<u32>,
    pub upper_offsets: Vec<u32>,
    pub upper: Vec<u32>,
}

/// Level of the `seq`-th insertion for `seed`: `floor(-ln(u) / ln m)`, capped.
pub(crate) fn draw_level(seed: u64, seq: u64, mult: f64) -> u8 {
    let mut x = seed ^ seq.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    let u = ((x >> 11) as f64 + 1.0) / (1u64 << 53) as f64; // (0, 1]
    ((-u.ln() * mult).floor() as usize).min(MAX_LEVEL) as u8
}

impl Graph {
    pub fn new(dim: usize, params: &HnswParams) -> Graph {
        Graph { dim, m: params.m(), m0: params.m0(), ..Graph::default() }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn view<'a>(&'a self, deleted: &'a [u64]) -> View<'a> {
        View {
            dim: self.dim,
            m: self.m,
            m0: self.m0,
            entry: self.entry,
            max_level: self.max_level,
            vectors: &self.vectors,
            keys: &self.keys,
            levels: &self.levels,
            links0: &self.links0,
            upper_offsets: &self.upper_offsets,
            upper: &self.upper,
            deleted,
            any_deleted: deleted.iter().any(|&w| w != 0),
        }
    }

    /// Appends an unlinked node; returns its id.
    pub fn push(&mut self, key: u32, vector: &[f32], level: u8) -> Result<u32> {
        let node = self.keys.len();
        let upper_needed = level as usize * (1 + self.m);
        if node >= u32::MAX as usize || self.upper.len() + upper_needed >= u32::MAX as usize {
            return Err(Error::InvalidInput("index is full (2^32 nodes or links)".into()));
        }
        self.vectors.extend_from_slice(vector);
        self.keys.push(key);
        self.levels.push(level);
        self.links0.extend(std::iter::repeat_n(0, 1 + self.m0));
        if level > 0 {
            self.upper_offsets.push(self.upper.len() as u32);
            self.upper.extend(std::iter::repeat_n(0, upper_needed));
        } else {
            self.upper_offsets.push(u32::MAX);
        }
        Ok(node as u32)
    }

    fn set_neighbors(&mut self, node: u32, level: usize, list: &[u32]) {
        let (arr, s, cap) = if level == 0 {
            (&mut self.links0, node as usize * (1 + self.m0), self.m0)
        } else {
            let s = self.upper_offsets[node as usize] as usize + (level - 1) * (1 + self.m);
            (&mut self.upper, s, self.m)
        };
        let c = list.len().min(cap);
        arr[s] = c as u32;
        arr[s + 1..s + 1 + c].copy_from_slice(&list[..c]);
    }

    /// Links the pushed nodes `from..len()` into the graph, in deterministic batches.
    pub fn link(&mut self, from: usize, ef_construction: usize, deleted: &[u64]) {
        let end = self.len();
        let mut done = from;
        while done < end {
            if self.entry.is_none() {
                self.entry = Some(done as u32);
                self.max_level = self.levels[done] as usize;
                done += 1;
                continue;
            }
            let batch = done..(done + (done / 32).clamp(1, 1024)).min(end);
            let view = self.view(deleted);
            let plans: Vec<Vec<Vec<u32>>> = if batch.len() > 1 {
                batch.clone().into_par_iter().map(|n| view.plan(n as u32, ef_construction)).collect()
            } else {
                batch.clone().map(|n| view.plan(n as u32, ef_construction)).collect()
            };
            let mut reverse: Vec<(u8, u32, u32)> = Vec::new();
            for (node, lists) in batch.clone().zip(&plans) {
                for (level, list) in lists.iter().enumerate() {
                    self.set_neighbors(node as u32, level, list);
                    reverse.extend(list.iter().map(|&t| (level as u8, t, node as u32)));
                }
            }
            reverse.sort_unstable();
            let groups: Vec<&[(u8, u32, u32)]> = reverse.chunk_by(|a, b| a.0 == b.0 && a.1 == b.1).collect();
            let view = self.view(deleted);
            let merge = |g: &&[(u8, u32, u32)]| {
                let added: Vec<u32> = g.iter().map(|e| e.2).collect();
                (g[0].0 as usize, g[0].1, view.merged(g[0].1, g[0].0 as usize, &added))
            };
            let updates: Vec<(usize, u32, Vec<u32>)> = if groups.len() > 8 {
                groups.par_iter().map(merge).collect()
            } else {
                groups.iter().map(merge).collect()
            };
            for (level, target, list) in updates {
                self.set_neighbors(target, level, &list);
            }
            for node in batch.clone() {
                if self.levels[node] as usize > self.max_level {
                    self.max_level = self.levels[node] as usize;
                    self.entry = Some(node as u32);
                }
            }
            done = batch.end;
        }
    }

    /// Bytes held on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.vectors.capacity() * 4
            + self.keys.capacity() * 4
            + self.levels.capacity()
            + self.links0.capacity() * 4
            + self.upper_offsets.capacity() * 4
            + self.upper.capacity() * 4
    }
}
