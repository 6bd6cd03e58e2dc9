//! The cross-shop product graph GraphSAGE learns on: one node per product of every shop
//! (ids `0..n_items`, the dataset's item ids) and one per user (`n_items + user`), stored as
//! CSR adjacency with a weight per edge. Edges: user–product interactions (weighted by the
//! training matrix, whose values already weigh the interaction kinds) in both directions,
//! and product–product content k-nearest-neighbour edges, so that shops without shared users
//! are still connected. Plus uniform neighbour sampling with per-layer fanouts, as
//! PyTorch Geometric's neighbour loaders do.

use warmstart_core::{top_k, CsrMatrix, ItemVectors, Rng};

/// Undirected weighted graph over items and users in CSR form.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductGraph {
    /// Products (node ids below this are items).
    pub n_items: usize,
    /// Users (node `n_items + u` is user `u`).
    pub n_users: usize,
    offsets: Vec<usize>,
    neighbours: Vec<u32>,
    weights: Vec<f32>,
}

/// Product–product content neighbours: for each item with a vector, its `k` most
/// cosine-similar items (similarity above `min_similarity`), as `(a, b, similarity)` with
/// `a < b`, deduplicated. `on_progress(done, total)` after every block of rows.
pub fn content_knn(
    vectors: &ItemVectors,
    k: usize,
    min_similarity: f32,
    mut on_progress: impl FnMut(usize, usize),
) -> crate::Result<Vec<(u32, u32, f32)>> {
    let n = vectors.n_items();
    let dim = vectors.dim;
    if k == 0 || dim == 0 || n < 2 {
        return Ok(Vec::new());
    }
    // unit rows; items without a vector stay zero and get no edges
    let mut unit = vectors.data.clone();
    let mut present = vectors.present.clone();
    for (i, row) in unit.chunks_mut(dim).enumerate() {
        let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            row.iter_mut().for_each(|x| *x /= norm);
        } else {
            present[i] = false;
        }
    }
    // similarities a block of rows at a time, as one matrix product
    let all = candle_core::Tensor::from_vec(unit, (n, dim), &candle_core::Device::Cpu)
        .and_then(|t| t.t()?.contiguous())
        .map_err(crate::nn::candle)?;
    let block = 512;
    let mut edges: Vec<(u32, u32, f32)> = Vec::new();
    for start in (0..n).step_by(block) {
        let end = (start + block).min(n);
        let sims = all
            .t()
            .and_then(|a| a.narrow(0, start, end - start))
            .and_then(|rows| rows.matmul(&all))
            .and_then(|s| s.flatten_all()?.to_vec1::<f32>());
        let mut sims = sims.map_err(crate::nn::candle)?;
        use rayon::prelude::*;
        let found: Vec<Vec<(u32, u32, f32)>> = sims
            .par_chunks_mut(n)
            .enumerate()
            .map(|(r, row)| {
                let i = start + r;
                if !present[i] {
                    return Vec::new();
                }
                for (j, s) in row.iter_mut().enumerate() {
                    if j == i || !present[j] {
                        *s = f32::NEG_INFINITY;
                    }
                }
                top_k(row, k)
                    .into_iter()
                    .filter(|&j| row[j] > min_similarity)
                    .map(|j| {
                        let (a, b) = if i < j { (i, j) } else { (j, i) };
                        (a as u32, b as u32, row[j])
                    })
                    .collect()
            })
            .collect();
        edges.extend(found.into_iter().flatten());
        on_progress(end, n);
    }
    edges.sort_by_key(|x| (x.0, x.1));
    edges.dedup_by(|x, y| x.0 == y.0 && x.1 == y.1);
    Ok(edges)
}

impl ProductGraph {
    /// The graph of `matrix` (users × items; rows of users in `skip_users` and the
    /// `(user, item)` pairs in `hidden` left out) plus the given content edges, each weighted by
    /// `content_weight × similarity`.
    pub fn build(
        matrix: &CsrMatrix,
        content: &[(u32, u32, f32)],
        content_weight: f32,
        skip_users: &[bool],
        hidden: &std::collections::HashSet<(u32, u32)>,
    ) -> ProductGraph {
        let n_items = matrix.n_cols();
        let n_users = matrix.n_rows();
        let n = n_items + n_users;
        let mut degree = vec![0usize; n];
        let visible =
            |u: usize, i: u32| !skip_users.get(u).copied().unwrap_or(false) && !hidden.contains(&(u as u32, i));
        for u in 0..n_users {
            for &i in matrix.row_indices(u) {
                if visible(u, i) {
                    degree[n_items + u] += 1;
                    degree[i as usize] += 1;
                }
            }
        }
        for &(a, b, _) in content {
            degree[a as usize] += 1;
            degree[b as usize] += 1;
        }
        let mut offsets = vec![0usize; n + 1];
        for v in 0..n {
            offsets[v + 1] = offsets[v] + degree[v];
        }
        let mut fill = offsets.clone();
        let total = offsets[n];
        let mut neighbours = vec![0u32; total];
        let mut weights = vec![0f32; total];
        let mut push = |v: usize, w_node: u32, w: f32| {
            neighbours[fill[v]] = w_node;
            weights[fill[v]] = w;
            fill[v] += 1;
        };
        for u in 0..n_users {
            for (&i, &w) in matrix.row_indices(u).iter().zip(matrix.row_values(u)) {
                if visible(u, i) {
                    let w = w.max(1e-3);
                    push(n_items + u, i, w);
                    push(i as usize, (n_items + u) as u32, w);
                }
            }
        }
        for &(a, b, s) in content {
            push(a as usize, b, content_weight * s);
            push(b as usize, a, content_weight * s);
        }
        ProductGraph { n_items, n_users, offsets, neighbours, weights }
    }

    /// The CSR arrays: offsets (`n_nodes + 1`), neighbours and edge weights.
    pub fn csr(&self) -> (&[usize], &[u32], &[f32]) {
        (&self.offsets, &self.neighbours, &self.weights)
    }

    /// Nodes (items then users).
    pub fn n_nodes(&self) -> usize {
        self.n_items + self.n_users
    }

    /// Edges counted once per direction.
    pub fn n_edges(&self) -> usize {
        self.neighbours.len()
    }

    /// Neighbours of `node` and their edge weights.
    pub fn neighbours(&self, node: u32) -> (&[u32], &[f32]) {
        let (s, e) = (self.offsets[node as usize], self.offsets[node as usize + 1]);
        (&self.neighbours[s..e], &self.weights[s..e])
    }

    /// Up to `fanout` neighbours of `node` drawn uniformly without replacement (all of them
    /// when there are no more than `fanout`, or when `fanout` is 0), with their weights.
    pub fn sample(&self, node: u32, fanout: usize, rng: &mut Rng, out: &mut Vec<(u32, f32)>) {
        out.clear();
        let (nb, w) = self.neighbours(node);
        if fanout == 0 || nb.len() <= fanout {
            out.extend(nb.iter().copied().zip(w.iter().copied()));
            return;
        }
        // Floyd's algorithm: `fanout` distinct positions
        let mut picked: Vec<usize> = Vec::with_capacity(fanout);
        for j in nb.len() - fanout..nb.len() {
            let t = rng.below(j + 1);
            let p = if picked.contains(&t) { j } else { t };
            picked.push(p);
        }
        picked.sort_unstable();
        out.extend(picked.into_iter().map(|p| (nb[p], w[p])));
    }
}

/// A sampled computation graph for a batch of target nodes: `nodes` ordered by the hop at
/// which they were first reached (targets first), `hop_ends[h]` the end of hops `0..=h` in
/// `nodes`, and for each layer's destination nodes their sampled neighbours as positions in
/// `nodes` with edge weights.
#[derive(Debug, Clone, PartialEq)]
pub struct SampledBlocks {
    /// Global node ids, hop by hop.
    pub nodes: Vec<u32>,
    /// `hop_ends[h]`: nodes of hops `0..=h` are `nodes[..hop_ends[h]]`.
    pub hop_ends: Vec<usize>,
    /// `adjacency[h][v]`: sampled neighbours of node position `v < hop_ends[h]` (positions
    /// below `hop_ends[h + 1]`), drawn with `fanouts[h]`.
    pub adjacency: Vec<Vec<Vec<(u32, f32)>>>,
    index: rustc_hash::FxHashMap<u32, u32>,
}

impl SampledBlocks {
    /// Position of a sampled node in `nodes` (0 for a node that was not sampled).
    pub fn position(&self, node: u32) -> u32 {
        self.index.get(&node).copied().unwrap_or(0)
    }
}

/// Samples `fanouts.len()` hops around `targets` (repeats allowed; they share a position).
pub fn sample_blocks(graph: &ProductGraph, targets: &[u32], fanouts: &[usize], rng: &mut Rng) -> SampledBlocks {
    let mut position: rustc_hash::FxHashMap<u32, u32> = rustc_hash::FxHashMap::default();
    let mut nodes: Vec<u32> = Vec::new();
    for &t in targets {
        position.entry(t).or_insert_with(|| {
            nodes.push(t);
            (nodes.len() - 1) as u32
        });
    }
    let mut hop_ends = vec![nodes.len()];
    let mut adjacency = Vec::with_capacity(fanouts.len());
    let mut buf = Vec::new();
    for &fanout in fanouts {
        let end = nodes.len();
        // nodes of earlier hops were sampled at earlier layers; every layer needs its own
        // draw for all of them
        let mut lists = Vec::with_capacity(end);
        for v in 0..end {
            graph.sample(nodes[v], fanout, rng, &mut buf);
            let mut list = Vec::with_capacity(buf.len());
            for &(nb, w) in &buf {
                let p = *position.entry(nb).or_insert_with(|| {
                    nodes.push(nb);
                    (nodes.len() - 1) as u32
                });
                list.push((p, w));
            }
            lists.push(list);
        }
        adjacency.push(lists);
        hop_ends.push(nodes.len());
    }
    SampledBlocks { nodes, hop_ends, adjacency, index: position }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 3 users × 6 items: user 0 → items 0, 1, 2; user 1 → 2, 3; user 2 → 4; item 5 alone.
    fn small() -> CsrMatrix {
        CsrMatrix::from_triplets(3, 6, &[(0, 0, 1.0), (0, 1, 2.0), (0, 2, 1.0), (1, 2, 1.0), (1, 3, 1.0), (2, 4, 1.0)])
    }

    #[test]
    fn builds_both_directions_and_hides_what_is_asked() {
        let m = small();
        let content = vec![(4, 5, 0.9)];
        let g = ProductGraph::build(&m, &content, 0.5, &[], &Default::default());
        assert_eq!(g.n_nodes(), 9);
        assert_eq!(g.n_edges(), 2 * 6 + 2);
        let (nb, w) = g.neighbours(6); // user 0
        assert_eq!(nb, &[0, 1, 2]);
        assert_eq!(w, &[1.0, 2.0, 1.0]);
        assert_eq!(g.neighbours(2).0, &[6, 7]);
        assert_eq!(g.neighbours(5), (&[4u32][..], &[0.45f32][..]));
        let hidden = [(0u32, 1u32)].into_iter().collect();
        let g = ProductGraph::build(&m, &content, 0.5, &[false, true, false], &hidden);
        assert_eq!(g.neighbours(6).0, &[0, 2], "hidden pair gone");
        assert!(g.neighbours(7).0.is_empty(), "skipped user has no edges");
        assert_eq!(g.neighbours(2).0, &[6]);
    }

    #[test]
    fn sampling_respects_fanouts_and_is_seeded() {
        // a star: user 0 with 40 items
        let t: Vec<(u32, u32, f32)> = (0..40).map(|i| (0, i, 1.0)).collect();
        let m = CsrMatrix::from_triplets(1, 40, &t);
        let g = ProductGraph::build(&m, &[], 1.0, &[], &Default::default());
        let mut rng = Rng::new(1);
        let mut out = Vec::new();
        g.sample(40, 15, &mut rng, &mut out);
        assert_eq!(out.len(), 15);
        let mut ids: Vec<u32> = out.iter().map(|x| x.0).collect();
        ids.dedup();
        assert_eq!(ids.len(), 15, "without replacement, sorted");
        g.sample(40, 0, &mut rng, &mut out);
        assert_eq!(out.len(), 40, "fanout 0 takes all");
        g.sample(3, 15, &mut rng, &mut out);
        assert_eq!(out, vec![(40, 1.0)]);

        let b = sample_blocks(&g, &[0, 1, 0], &[15, 10], &mut Rng::new(7));
        assert_eq!(b.hop_ends[0], 2, "repeated targets share a position");
        assert_eq!(b.nodes[..2], [0, 1]);
        assert_eq!(b.adjacency.len(), 2);
        assert_eq!(b.adjacency[0].len(), 2);
        // hop 1 is the user; hop 2 its sampled items
        assert_eq!(b.hop_ends[1], 3);
        assert_eq!(b.adjacency[1].len(), 3);
        assert!(b.adjacency[1][2].len() == 10, "the user keeps 10 of 40 at the second layer");
        for (h, lists) in b.adjacency.iter().enumerate() {
            for list in lists {
                assert!(list.iter().all(|(p, _)| (*p as usize) < b.hop_ends[h + 1]));
            }
        }
        assert_eq!(b, sample_blocks(&g, &[0, 1, 0], &[15, 10], &mut Rng::new(7)), "same seed, same sample");
        assert_ne!(b, sample_blocks(&g, &[0, 1, 0], &[15, 10], &mut Rng::new(8)));
    }

    #[test]
    fn content_neighbours_are_the_most_similar() {
        // 5 items, the last without a vector
        let v = ItemVectors {
            dim: 2,
            data: vec![1.0, 0.0, 0.9, 0.1, 0.0, 1.0, 0.1, 0.9, 0.0, 0.0],
            present: vec![true, true, true, true, false],
        };
        let e = content_knn(&v, 1, 0.0, |_, _| {}).unwrap();
        assert_eq!(e.iter().map(|x| (x.0, x.1)).collect::<Vec<_>>(), vec![(0, 1), (2, 3)]);
        assert!(e.iter().all(|x| x.2 > 0.9));
    }
}
