//! Steps 1–3 of HDBSCAN: core distances, the minimum spanning tree of the mutual-reachability
//! graph (Prim's algorithm on the data or on a precomputed matrix, as scikit-learn takes them)
//! and the single-linkage tree of its edges.

use rayon::prelude::*;

use crate::Points;

/// A merge of the single-linkage tree: node `n + i` for the `i`-th merge.
#[derive(Debug, Clone, Copy)]
pub(super) struct Merge {
    pub(super) left: usize,
    pub(super) right: usize,
    pub(super) distance: f64,
    pub(super) size: usize,
}

/// Distance of each row to its `k`-th nearest row, itself counted first.
pub(super) fn core_distances(points: &Points, k: usize) -> Vec<f64> {
    let n = points.n;
    (0..n)
        .into_par_iter()
        .map_init(
            || vec![0.0f64; n],
            |buf, i| {
                for (j, d) in buf.iter_mut().enumerate() {
                    *d = points.dist(i, j);
                }
                *buf.select_nth_unstable_by(k - 1, f64::total_cmp).1
            },
        )
        .collect()
}

/// Mutual reachability distance.
fn reach(core_a: f64, core_b: f64, d: f64) -> f64 {
    core_a.max(core_b).max(d)
}

/// Distances from row `from` to every row not yet in the tree, into `out`.
fn distances_from(points: &Points, from: usize, in_tree: &[bool], out: &mut [f64]) {
    out.par_iter_mut().enumerate().with_min_len(256).for_each(|(j, d)| {
        if !in_tree[j] {
            *d = points.dist(from, j);
        }
    });
}

/// Prim's algorithm as scikit-learn's `mst_from_data_matrix`: each edge joins the new row
/// to the tree row it is nearest to; edges `(from, to, weight)`.
pub(super) fn prim_on_data(points: &Points, core: &[f64]) -> Vec<(usize, usize, f64)> {
    let n = points.n;
    let mut in_tree = vec![false; n];
    let mut min_reach = vec![f64::INFINITY; n];
    let mut sources = vec![1usize; n];
    let mut d = vec![0.0f64; n];
    let mut edges = Vec::with_capacity(n - 1);
    let mut current = 0;
    for _ in 1..n {
        in_tree[current] = true;
        distances_from(points, current, &in_tree, &mut d);
        let (mut best, mut source, mut next) = (f64::MAX, 0, 0);
        for j in 0..n {
            if in_tree[j] {
                continue;
            }
            let r = reach(core[current], core[j], d[j]);
            if r < min_reach[j] {
                min_reach[j] = r;
                sources[j] = current;
                if r < best {
                    (best, source, next) = (r, current, j);
                }
            } else if min_reach[j] < best {
                (best, source, next) = (min_reach[j], sources[j], j);
            }
        }
        edges.push((source, next, best));
        current = next;
    }
    edges
}

/// Prim's algorithm as scikit-learn's `mst_from_mutual_reachability` (its dense,
/// precomputed path): the first nearest row wins ties, and each edge is recorded from the row
/// added just before (which joins the same components once the edges are sorted).
pub(super) fn prim_on_matrix(points: &Points, core: &[f64]) -> Vec<(usize, usize, f64)> {
    let n = points.n;
    let mut in_tree = vec![false; n];
    let mut min_reach = vec![f64::INFINITY; n];
    let mut d = vec![0.0f64; n];
    let mut edges = Vec::with_capacity(n - 1);
    let mut current = 0;
    for _ in 1..n {
        in_tree[current] = true;
        distances_from(points, current, &in_tree, &mut d);
        let mut next: Option<usize> = None;
        for j in 0..n {
            if in_tree[j] {
                continue;
            }
            min_reach[j] = min_reach[j].min(reach(core[current], core[j], d[j]));
            if next.is_none_or(|b| min_reach[j] < min_reach[b]) {
                next = Some(j);
            }
        }
        let Some(next) = next else { break };
        edges.push((current, next, min_reach[next]));
        current = next;
    }
    edges
}

/// Root of `x` in the single-linkage union–find, with path compression.
fn find(parent: &mut [usize], x: usize) -> usize {
    let mut root = x;
    while parent[root] != usize::MAX {
        root = parent[root];
    }
    let mut p = x;
    while p != root {
        let up = parent[p];
        parent[p] = root;
        p = up;
    }
    root
}

/// Single-linkage tree from MST edges sorted by weight (scikit-learn's `make_single_linkage`).
pub(super) fn single_linkage(mst: &[(usize, usize, f64)], n: usize) -> Vec<Merge> {
    let mut parent = vec![usize::MAX; 2 * n - 1];
    let mut size = vec![1usize; 2 * n - 1];
    let mut tree = Vec::with_capacity(n - 1);
    for &(a, b, distance) in mst {
        let (left, right) = (find(&mut parent, a), find(&mut parent, b));
        let node = n + tree.len();
        size[node] = size[left] + size[right];
        tree.push(Merge { left, right, distance, size: size[node] });
        parent[left] = node;
        parent[right] = node;
    }
    tree
}
