//! HDBSCAN (Campello, Moulavi & Sander 2013) as scikit-learn ≥ 1.3 computes it with
//! `sklearn.cluster.HDBSCAN(min_cluster_size, min_samples, cluster_selection_epsilon,
//! cluster_selection_method="eom", allow_single_cluster=False, alpha=1.0)`, step by step:
//!
//! 1. core distance of a row: distance to its `min_samples`-th nearest row, the row itself
//!    counted first (`min_samples` defaults to `min_cluster_size`);
//! 2. minimum spanning tree of the mutual-reachability graph
//!    `max(core(a), core(b), d(a, b))` by Prim's algorithm on the dense graph, distances
//!    computed on the fly (O(n²) time, O(n) memory). Euclidean follows scikit-learn's
//!    `mst_from_data_matrix` (its path for `metric="euclidean"`), cosine its
//!    `mst_from_mutual_reachability` (its path for `metric="precomputed"`, which is how
//!    cosine is checked against it), so that equal weights are broken the same way;
//! 3. edges sorted by weight (stably; scikit-learn's `np.argsort` is not stable, so among
//!    edges of exactly equal weight the merge order may differ) and merged into a
//!    single-linkage tree (nodes `n, n + 1, …`);
//! 4. the tree condensed with `min_cluster_size` (`_condense_tree`), λ = 1 / distance
//!    (∞ for distance 0);
//! 5. stabilities Σ (λ_out − λ_birth) × size, excess-of-mass selection bottom-up, the root
//!    never selected; then, for `cluster_selection_epsilon > 0`, `epsilon_search`;
//! 6. labels: a row belongs to the nearest selected cluster above it in the condensed tree,
//!    else it is noise (`-1`); selected clusters are numbered in increasing order of their
//!    condensed-tree id, as scikit-learn does; membership probabilities as its
//!    `get_probabilities`.

mod linkage;

use linkage::{core_distances, prim_on_data, prim_on_matrix, single_linkage, Merge};

use crate::{Error, Metric, Points, Result};

/// Checked parameters of [`Hdbscan`].
#[derive(Debug, Clone, PartialEq)]
pub struct HdbscanConfig {
    /// Smallest group of rows that counts as a cluster (≥ 2).
    pub min_cluster_size: usize,
    /// Neighbours (the row itself included) that set a row's core distance; `None`:
    /// `min_cluster_size`.
    pub min_samples: Option<usize>,
    /// A selected cluster born below this distance gives way to its lowest ancestor born
    /// above it, or to the root's child it descends from (the root is never selected); 0: off.
    pub cluster_selection_epsilon: f32,
    /// Distance between rows.
    pub metric: Metric,
}

/// Builder of [`HdbscanConfig`].
#[derive(Debug, Clone)]
pub struct HdbscanConfigBuilder(HdbscanConfig);

impl HdbscanConfig {
    /// Defaults (scikit-learn's): min_cluster_size = 5, min_samples = None, epsilon 0,
    /// euclidean.
    pub fn builder() -> HdbscanConfigBuilder {
        HdbscanConfigBuilder(HdbscanConfig {
            min_cluster_size: 5,
            min_samples: None,
            cluster_selection_epsilon: 0.0,
            metric: Metric::Euclidean,
        })
    }
}

impl HdbscanConfigBuilder {
    /// Smallest cluster.
    pub fn min_cluster_size(mut self, n: usize) -> Self {
        self.0.min_cluster_size = n;
        self
    }
    /// Neighbours that set the core distance (`None`: `min_cluster_size`).
    pub fn min_samples(mut self, n: Option<usize>) -> Self {
        self.0.min_samples = n;
        self
    }
    /// Cluster selection epsilon (a distance).
    pub fn cluster_selection_epsilon(mut self, e: f32) -> Self {
        self.0.cluster_selection_epsilon = e;
        self
    }
    /// Distance between rows.
    pub fn metric(mut self, m: Metric) -> Self {
        self.0.metric = m;
        self
    }
    /// Validates.
    pub fn build(self) -> Result<HdbscanConfig> {
        let c = self.0;
        let bad = |name, value: String, rule: &str| Err(Error::InvalidParameter { name, value, rule: rule.into() });
        if c.min_cluster_size < 2 {
            return bad("min_cluster_size", c.min_cluster_size.to_string(), "must be at least 2");
        }
        if c.min_samples == Some(0) {
            return bad("min_samples", "0".into(), "must be at least 1");
        }
        if !(c.cluster_selection_epsilon >= 0.0 && c.cluster_selection_epsilon.is_finite()) {
            return bad("cluster_selection_epsilon", c.cluster_selection_epsilon.to_string(), "must be finite and ≥ 0");
        }
        Ok(c)
    }
}

/// An HDBSCAN clustering.
#[derive(Debug, Clone, PartialEq)]
pub struct Hdbscan {
    /// Cluster of each row, `0..n_clusters`; `-1` is noise.
    pub labels: Vec<i32>,
    /// Strength of each row's membership in its cluster, in `[0, 1]` (0 for noise).
    pub probabilities: Vec<f32>,
    /// Number of clusters.
    pub n_clusters: usize,
}

impl Hdbscan {
    /// Clusters the rows of `data` (`n × dim`, at least 2 rows; `min_samples` at most `n`).
    pub fn fit(config: &HdbscanConfig, data: &[f32], dim: usize) -> Result<Hdbscan> {
        let points = Points::new(data, dim, config.metric)?;
        let n = points.n;
        if n < 2 {
            return Err(Error::BadInput("HDBSCAN needs at least 2 rows".into()));
        }
        let k = config.min_samples.unwrap_or(config.min_cluster_size);
        if k > n {
            return Err(Error::InvalidParameter {
                name: "min_samples",
                value: k.to_string(),
                rule: format!("at most the number of rows ({n}); without min_samples, min_cluster_size counts"),
            });
        }
        let core = core_distances(&points, k);
        let mut mst = match config.metric {
            Metric::Euclidean => prim_on_data(&points, &core),
            Metric::Cosine => prim_on_matrix(&points, &core),
        };
        mst.sort_by(|a, b| a.2.total_cmp(&b.2));
        let tree = single_linkage(&mst, n);
        let condensed = condense(&tree, n, config.min_cluster_size);
        Ok(extract(&condensed, n, config.cluster_selection_epsilon as f64))
    }
}

/// A row of the condensed tree: `child` (a point below `n` or a cluster from `n`, the root)
/// leaves `parent` at `lambda`.
#[derive(Debug, Clone, Copy)]
struct Row {
    parent: usize,
    child: usize,
    lambda: f64,
    size: usize,
}

/// Nodes below `from` (itself first), breadth first, left before right.
fn bfs(tree: &[Merge], n: usize, from: usize) -> Vec<usize> {
    let mut out = vec![from];
    let mut k = 0;
    while k < out.len() {
        let x = out[k];
        k += 1;
        if x >= n {
            out.push(tree[x - n].left);
            out.push(tree[x - n].right);
        }
    }
    out
}

/// The condensed tree (scikit-learn's `_condense_tree`, rows in the same order): walking
/// down from the root, a split into two children of at least `min_cluster_size` rows makes
/// two new clusters; a smaller child's points fall out of the cluster at that λ.
fn condense(tree: &[Merge], n: usize, min_cluster_size: usize) -> Vec<Row> {
    let root = 2 * tree.len();
    let count = |c: usize| if c >= n { tree[c - n].size } else { 1 };
    let mut relabel = vec![0usize; root + 1];
    relabel[root] = n;
    let mut next_label = n + 1;
    let mut ignore = vec![false; root + 1];
    let mut rows = Vec::with_capacity(2 * n);
    for node in bfs(tree, n, root) {
        if ignore[node] || node < n {
            continue;
        }
        let m = tree[node - n];
        let lambda = if m.distance > 0.0 { 1.0 / m.distance } else { f64::INFINITY };
        let parent = relabel[node];
        let children = [(m.left, count(m.left)), (m.right, count(m.right))];
        if children.iter().all(|&(_, size)| size >= min_cluster_size) {
            for (child, size) in children {
                relabel[child] = next_label;
                rows.push(Row { parent, child: next_label, lambda, size });
                next_label += 1;
            }
        } else {
            for (child, size) in children {
                if size >= min_cluster_size {
                    relabel[child] = parent; // the large child carries on as the parent
                    continue;
                }
                for sub in bfs(tree, n, child) {
                    if sub < n {
                        rows.push(Row { parent, child: sub, lambda, size: 1 });
                    }
                    ignore[sub] = true;
                }
            }
        }
    }
    rows
}

/// Clusters strictly below `node` in the cluster tree.
fn descendants(children: &[Vec<usize>], node: usize) -> Vec<usize> {
    let mut out = children[node].clone();
    let mut k = 0;
    while k < out.len() {
        let c = out[k];
        k += 1;
        out.extend_from_slice(&children[c]);
    }
    out
}

/// Excess-of-mass selection, epsilon search, labels and probabilities (scikit-learn's
/// `_compute_stability`, `_get_clusters`, `epsilon_search`, `_do_labelling`,
/// `get_probabilities`, with `allow_single_cluster = False`).
fn extract(rows: &[Row], n: usize, epsilon: f64) -> Hdbscan {
    let root = n;
    // clusters are root..ids
    let ids = rows.iter().map(|r| r.parent).max().unwrap_or(root) + 1;
    // the cluster tree: parent and birth λ of each cluster, children in row order
    let mut up = vec![root; ids];
    let mut birth = vec![0.0f64; ids];
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); ids];
    let mut point_parent = vec![root; n];
    for r in rows {
        if r.child >= n {
            up[r.child] = r.parent;
            birth[r.child] = r.lambda;
            children[r.parent].push(r.child);
        } else {
            point_parent[r.child] = r.parent;
        }
    }
    let mut stability = vec![0.0f64; ids];
    for r in rows {
        stability[r.parent] += (r.lambda - birth[r.parent]) * r.size as f64;
    }
    // excess of mass, bottom-up (children have larger ids than their parent)
    let mut selected = vec![false; ids];
    selected[root + 1..].fill(true);
    for node in (root + 1..ids).rev() {
        let subtree: f64 = children[node].iter().map(|&c| stability[c]).sum();
        if subtree > stability[node] {
            selected[node] = false;
            stability[node] = subtree;
        } else {
            for d in descendants(&children, node) {
                selected[d] = false;
            }
        }
    }
    if epsilon != 0.0 && rows.iter().any(|r| r.child >= n) {
        // a selected cluster born below epsilon is replaced by its lowest ancestor born above
        // it, or by the child of the root on its way up
        let climb = |mut c: usize| -> usize {
            loop {
                let p = up[c];
                if p == root {
                    return c;
                }
                if 1.0 / birth[p] > epsilon {
                    return p;
                }
                c = p;
            }
        };
        let mut chosen = vec![false; ids];
        let mut processed = vec![false; ids];
        for leaf in (root + 1..ids).filter(|&c| selected[c]) {
            if 1.0 / birth[leaf] < epsilon {
                if !processed[leaf] {
                    let top = climb(leaf);
                    chosen[top] = true;
                    for d in descendants(&children, top) {
                        processed[d] = true;
                    }
                }
            } else {
                chosen[leaf] = true;
            }
        }
        selected = chosen;
    }
    let clusters: Vec<usize> = (root + 1..ids).filter(|&c| selected[c]).collect();
    let mut label_of = vec![-1i32; ids];
    for (k, &c) in clusters.iter().enumerate() {
        label_of[c] = k as i32;
    }
    let labels: Vec<i32> = point_parent
        .iter()
        .map(|&p| {
            let mut c = p;
            while c != root && !selected[c] {
                c = up[c];
            }
            if c == root {
                -1
            } else {
                label_of[c]
            }
        })
        .collect();
    // probabilities: λ at which a row leaves, over the largest λ of its cluster's rows
    // (scikit-learn's `max_lambdas` takes that maximum over each cluster's last run of rows)
    let mut deaths = vec![0.0f64; ids];
    if let Some(first) = rows.first() {
        let (mut current, mut max_lambda) = (first.parent, first.lambda);
        for r in &rows[1..] {
            if r.parent == current {
                max_lambda = max_lambda.max(r.lambda);
            } else {
                deaths[current] = max_lambda;
                (current, max_lambda) = (r.parent, r.lambda);
            }
        }
        deaths[current] = max_lambda;
    }
    let mut probabilities = vec![0.0f32; n];
    for r in rows.iter().filter(|r| r.child < n) {
        let label = labels[r.child];
        if label < 0 {
            continue;
        }
        let max_lambda = deaths[clusters[label as usize]];
        probabilities[r.child] = if max_lambda == 0.0 || r.lambda.is_infinite() {
            1.0
        } else {
            (r.lambda.min(max_lambda) / max_lambda) as f32
        };
    }
    Hdbscan { labels, probabilities, n_clusters: clusters.len() }
}

#[cfg(test)]
mod tests {
    use warmstart_core::Rng;

    use super::*;

    fn fit(data: &[f32], dim: usize, min_cluster_size: usize, min_samples: Option<usize>, eps: f32) -> Hdbscan {
        let c = HdbscanConfig::builder()
            .min_cluster_size(min_cluster_size)
            .min_samples(min_samples)
            .cluster_selection_epsilon(eps)
            .build()
            .unwrap();
        Hdbscan::fit(&c, data, dim).unwrap()
    }

    #[test]
    fn three_blobs_and_scattered_noise() {
        // three blobs of sd 0.5, 8 apart; 12 points on a circle of radius 40 around them
        let mut rng = Rng::new(11);
        let centres = [(0.0f32, 0.0f32), (8.0, 0.0), (0.0, 8.0)];
        let mut rows: Vec<([f32; 2], i32)> = Vec::new();
        for _ in 0..180 {
            let c = rng.below(3);
            let (x, y) = centres[c];
            rows.push(([x + 0.5 * rng.normal_f32(), y + 0.5 * rng.normal_f32()], c as i32));
        }
        for k in 0..12 {
            let angle = (k as f32 + 0.3 * rng.unit_f32()) * std::f32::consts::TAU / 12.0;
            rows.push(([3.0 + 40.0 * angle.cos(), 3.0 + 40.0 * angle.sin()], -1));
        }
        rng.shuffle(&mut rows);
        let data: Vec<f32> = rows.iter().flat_map(|r| r.0).collect();
        let truth: Vec<i32> = rows.iter().map(|r| r.1).collect();
        let h = fit(&data, 2, 10, None, 0.0);
        assert_eq!(h.n_clusters, 3);
        assert_eq!(h.labels.len(), 192);
        for (i, &t) in truth.iter().enumerate() {
            assert_eq!(t == -1, h.labels[i] == -1, "row {i}: truth {t}, label {}", h.labels[i]);
            assert_eq!(t == -1, h.probabilities[i] == 0.0, "row {i}");
            assert!((0.0..=1.0).contains(&h.probabilities[i]));
        }
        // the blobs map one to one onto the clusters
        assert_eq!(crate::scores::adjusted_rand_index(&truth, &h.labels).unwrap(), 1.0);
        assert_eq!(h, fit(&data, 2, 10, None, 0.0), "deterministic");
    }

    /// Groups A = 0..=3, B = 10..=13, C = 43..=46 on a line, an outlier at 100.
    fn line() -> Vec<f32> {
        [0.0, 1.0, 2.0, 3.0, 10.0, 11.0, 12.0, 13.0, 43.0, 44.0, 45.0, 46.0, 100.0].to_vec()
    }

    #[test]
    fn hand_case_labels_in_condensed_tree_order() {
        // min_samples 2: every group point has core distance 1, so the mutual-reachability
        // tree merges the groups at 1, A with B at 7, AB with C at 30 and the outlier at 54.
        // Condensed (min_cluster_size 3): root 13 loses the outlier, splits into AB = 14 and
        // C = 15, AB into A = 16 and B = 17. Stabilities: A = B = 4 (1 − 1/7), C = 4 (1 − 1/30),
        // AB = 8 (1/7 − 1/30) < A + B, so A, B and C are selected, numbered by id: C, A, B.
        let h = fit(&line(), 1, 3, Some(2), 0.0);
        assert_eq!(h.labels, vec![1, 1, 1, 1, 2, 2, 2, 2, 0, 0, 0, 0, -1]);
        assert_eq!(h.probabilities, vec![1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0]);
        // epsilon 8: A and B were born at distance 7 < 8 and climb to AB (born at 30)
        let h = fit(&line(), 1, 3, Some(2), 8.0);
        assert_eq!(h.labels, vec![0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, -1]);
        assert_eq!(h.n_clusters, 2);
        // epsilon 40: nothing may climb to the root, so AB and C stay apart
        assert_eq!(fit(&line(), 1, 3, Some(2), 40.0).labels, vec![0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, -1]);
        // epsilon 5 is below every birth distance: no change
        assert_eq!(fit(&line(), 1, 3, Some(2), 5.0).labels, vec![1, 1, 1, 1, 2, 2, 2, 2, 0, 0, 0, 0, -1]);
        // min_cluster_size 5: C splits off AB as a runt, AB splits into two runts: every point
        // falls out of the root, which is never selected, so everything is noise
        let h = fit(&line(), 1, 5, Some(2), 0.0);
        assert_eq!((h.labels, h.n_clusters), (vec![-1; 13], 0));
    }

    #[test]
    fn duplicates_do_not_panic() {
        // 20 copies of two points: core distances and mutual reachabilities of 0, λ = ∞
        let mut data: Vec<f32> = Vec::new();
        for i in 0..40 {
            data.extend_from_slice(if i % 2 == 0 { &[0.0, 0.0] } else { &[5.0, 5.0] });
        }
        let h = fit(&data, 2, 5, None, 0.0);
        assert_eq!(h.n_clusters, 2);
        for i in 0..40 {
            assert_eq!(h.labels[i], h.labels[i % 2], "row {i}");
        }
        assert_ne!(h.labels[0], h.labels[1]);
        assert!(h.probabilities.iter().all(|p| p.is_finite()));
        // all rows equal: no split ever leaves two clusters, everything is noise
        let h = fit(&[1.0; 20], 2, 3, None, 0.5);
        assert_eq!(h.labels, vec![-1; 10]);
        assert_eq!(h.n_clusters, 0);
    }

    #[test]
    fn cosine_clusters_directions_whatever_the_length() {
        let mut rng = Rng::new(4);
        let dim = 8;
        let directions: Vec<Vec<f32>> = (0..3).map(|_| (0..dim).map(|_| rng.normal_f32()).collect()).collect();
        let (mut a, mut b, mut truth) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..90 {
            let c = i % 3;
            let row: Vec<f32> = directions[c].iter().map(|x| x + 0.05 * rng.normal_f32()).collect();
            let (s, t) = (0.5 + 5.0 * rng.unit_f32(), 0.5 + 5.0 * rng.unit_f32());
            a.extend(row.iter().map(|x| x * s));
            b.extend(row.iter().map(|x| x * t));
            truth.push(c as i32);
        }
        let c = HdbscanConfig::builder().min_cluster_size(5).metric(Metric::Cosine).build().unwrap();
        let ha = Hdbscan::fit(&c, &a, dim).unwrap();
        assert_eq!(ha.n_clusters, 3);
        assert_eq!(crate::scores::adjusted_rand_index(&truth, &ha.labels).unwrap(), 1.0);
        assert_eq!(ha.labels, Hdbscan::fit(&c, &b, dim).unwrap().labels, "lengths do not matter");
    }

    #[test]
    fn rejects_bad_input() {
        assert!(HdbscanConfig::builder().min_cluster_size(1).build().is_err());
        assert!(HdbscanConfig::builder().min_samples(Some(0)).build().is_err());
        assert!(HdbscanConfig::builder().cluster_selection_epsilon(-1.0).build().is_err());
        assert!(HdbscanConfig::builder().cluster_selection_epsilon(f32::NAN).build().is_err());
        let c = HdbscanConfig::builder().build().unwrap();
        assert!(Hdbscan::fit(&c, &[0.0, 1.0], 2).is_err(), "one row");
        assert!(Hdbscan::fit(&c, &[0.0, 1.0, 2.0, 3.0], 1).is_err(), "min_samples 5 > 4 rows");
        let h = fit(&[0.0, 1.0, 2.0, 3.0], 1, 2, Some(4), 0.0);
        assert_eq!(h.labels.len(), 4);
    }
}
