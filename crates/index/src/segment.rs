//! Segments: an index is a list of graphs, each owned (in memory, growable) or mapped (read-only
//! from a file), with its own tombstones and key lookup.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use memmap2::Mmap;

use crate::graph::{Graph, View};

/// Plain old data that may be viewed straight from file bytes (every bit pattern is valid).
///
/// # Safety
/// Implementors must have no padding and no invalid bit patterns.
pub(crate) unsafe trait Pod: Copy + 'static {}
// SAFETY: primitive numbers; every bit pattern is a valid value.
unsafe impl Pod for u8 {}
// SAFETY: as above.
unsafe impl Pod for u32 {}
// SAFETY: as above.
unsafe impl Pod for u64 {}
// SAFETY: as above.
unsafe impl Pod for f32 {}

/// Views little-endian file bytes as `T`s; empty if misaligned (offsets are validated to be
/// 64-byte aligned when a file is opened, and maps start on a page, so this does not happen).
pub(crate) fn cast<T: Pod>(bytes: &[u8]) -> &[T] {
    // SAFETY: `T: Pod` accepts any bit pattern; `align_to` only yields a correctly aligned middle.
    let (pre, mid, post) = unsafe { bytes.align_to::<T>() };
    if pre.is_empty() && post.is_empty() {
        mid
    } else {
        &[]
    }
}

/// Byte ranges of one segment's sections inside a mapped file.
#[derive(Clone, Debug)]
pub(crate) struct MappedSections {
    pub vectors: Range<usize>,
    pub keys: Range<usize>,
    pub levels: Range<usize>,
    pub links0: Range<usize>,
    pub upper_offsets: Range<usize>,
    pub upper: Range<usize>,
    pub sorted_keys: Range<usize>,
    pub sorted_nodes: Range<usize>,
}

/// A read-only segment backed by a memory map.
pub(crate) struct Mapped {
    pub map: Arc<Mmap>,
    pub dim: usize,
    pub m: usize,
    pub entry: Option<u32>,
    pub max_level: usize,
    pub sections: MappedSections,
}

impl Mapped {
    pub fn slice<T: Pod>(&self, r: &Range<usize>) -> &[T] {
        cast(&self.map[r.clone()])
    }
    pub fn sorted_keys(&self) -> &[u32] {
        self.slice(&self.sections.sorted_keys)
    }
    pub fn sorted_nodes(&self) -> &[u32] {
        self.slice(&self.sections.sorted_nodes)
    }
}

/// Where a segment's arrays live.
pub(crate) enum Body {
    Owned { graph: Graph, lookup: HashMap<u32, u32> },
    Mapped(Mapped),
}

/// One graph plus its tombstones.
pub(crate) struct Segment {
    pub body: Body,
    /// Bit per node: set when the node's key was removed or replaced.
    pub deleted: Vec<u64>,
    /// Nodes not tombstoned.
    pub live: usize,
}

impl Segment {
    pub fn owned(graph: Graph) -> Segment {
        Segment { body: Body::Owned { graph, lookup: HashMap::new() }, deleted: Vec::new(), live: 0 }
    }

    pub fn view(&self) -> View<'_> {
        match &self.body {
            Body::Owned { graph, .. } => {
                let mut v = graph.view(&self.deleted);
                v.any_deleted = self.live < graph.len();
                v
            }
            Body::Mapped(mp) => {
                let s = &mp.sections;
                View {
                    dim: mp.dim,
                    m: mp.m,
                    m0: 2 * mp.m,
                    entry: mp.entry,
                    max_level: mp.max_level,
                    vectors: mp.slice(&s.vectors),
                    keys: mp.slice(&s.keys),
                    levels: mp.slice(&s.levels),
                    links0: mp.slice(&s.links0),
                    upper_offsets: mp.slice(&s.upper_offsets),
                    upper: mp.slice(&s.upper),
                    deleted: &self.deleted,
                    any_deleted: self.live < s.keys.len() / 4,
                }
            }
        }
    }

    /// The live node holding `key`.
    pub fn find(&self, key: u32) -> Option<u32> {
        match &self.body {
            Body::Owned { lookup, .. } => lookup.get(&key).copied(),
            Body::Mapped(mp) => {
                let i = mp.sorted_keys().binary_search(&key).ok()?;
                let node = *mp.sorted_nodes().get(i)?;
                (!self.is_deleted(node)).then_some(node)
            }
        }
    }

    pub fn is_deleted(&self, node: u32) -> bool {
        self.deleted.get(node as usize / 64).is_some_and(|w| w >> (node % 64) & 1 == 1)
    }

    /// Tombstones `node` (which holds `key`).
    pub fn kill(&mut self, node: u32, key: u32) {
        if self.is_deleted(node) {
            return;
        }
        if let Some(w) = self.deleted.get_mut(node as usize / 64) {
            *w |= 1 << (node % 64);
            self.live -= 1;
        }
        if let Body::Owned { lookup, .. } = &mut self.body {
            lookup.remove(&key);
        }
    }

    /// Bytes on the heap plus bytes mapped.
    pub fn memory_bytes(&self) -> usize {
        let body = match &self.body {
            // hashbrown: one control byte plus the (u32, u32) pair per bucket.
            Body::Owned { graph, lookup } => graph.heap_bytes() + lookup.capacity() * 9,
            Body::Mapped(mp) => {
                let s = &mp.sections;
                [&s.vectors, &s.keys, &s.levels, &s.links0, &s.upper_offsets, &s.upper, &s.sorted_keys, &s.sorted_nodes]
                    .iter()
                    .map(|r| r.len())
                    .sum()
            }
        };
        body + self.deleted.capacity() * 8
    }
}
