//! LambdaMART (Burges 2010): gradient-boosted regression trees fitted to LambdaRank's
//! gradients, so that a sum of small trees over per-item features ranks each query's items
//! for NDCG@10. Features are cut into quantile bins once; each tree grows depth-wise from
//! per-feature histograms of the gradients, with Newton steps in the leaves. The number of
//! trees is chosen by NDCG@10 on validation queries (early stopping).
//!
//! Boosting may start from a base score per row (another ranker's score), so the trees learn
//! corrections to it and zero trees rank as the base does.
//!
//! Pairs follow LightGBM's lambdarank: every pair of differently labelled items in which the
//! better-ranked one is within the first [`TRUNCATION`] positions, weighted by how much
//! swapping them would change the query's DCG (log discount over every position) divided by
//! its ideal DCG@10.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{check, Error, Result};

/// Better-ranked position of a pair that still gets a gradient.
const TRUNCATION: usize = 30;
/// Largest leaf value before the learning rate: where a leaf's items are ranked far from
/// where their labels put them, the second derivatives vanish and a Newton step explodes.
const MAX_STEP: f64 = 1.0;
/// Rounds without a better validation NDCG@10 before boosting stops.
const PATIENCE: usize = 30;

/// Ranking queries: each one's items as rows of features, with 0/1 labels.
#[derive(Debug, Clone, Default)]
pub struct Queries {
    n_features: usize,
    /// Row-major features.
    features: Vec<f32>,
    labels: Vec<f32>,
    /// Score each row starts from.
    base: Vec<f32>,
    /// Rows of query `q`: `offsets[q]..offsets[q + 1]`.
    offsets: Vec<usize>,
    /// Relevant items of each query, counting any that are not among its rows (the ideal
    /// DCG counts them, as ranking the whole catalogue would).
    relevant: Vec<usize>,
}

impl Queries {
    /// No queries yet, rows of `n_features` features.
    pub fn new(n_features: usize) -> Queries {
        Queries { n_features, offsets: vec![0], ..Queries::default() }
    }

    /// Adds a query: `features` row-major (`labels.len()` rows), the rows' base scores,
    /// `relevant` relevant items in all (at least those labelled 1).
    pub fn push(&mut self, features: &[f32], labels: &[f32], base: &[f32], relevant: usize) {
        debug_assert_eq!(features.len(), labels.len() * self.n_features);
        debug_assert_eq!(base.len(), labels.len());
        self.features.extend_from_slice(features);
        self.labels.extend_from_slice(labels);
        self.base.extend_from_slice(base);
        self.offsets.push(self.labels.len());
        self.relevant.push(relevant.max(labels.iter().filter(|&&l| l > 0.0).count()));
    }

    /// Appends every query of `other`.
    pub fn extend(&mut self, other: &Queries) {
        for q in 0..other.len() {
            let rows = other.offsets[q]..other.offsets[q + 1];
            self.push(
                &other.features[rows.start * other.n_features..rows.end * other.n_features],
                &other.labels[rows.clone()],
                &other.base[rows],
                other.relevant[q],
            );
        }
    }

    /// Sets every row's base score from its features.
    pub fn set_base(&mut self, base: impl Fn(&[f32]) -> f32) {
        for r in 0..self.rows() {
            self.base[r] = base(&self.features[r * self.n_features..(r + 1) * self.n_features]);
        }
    }

    /// Number of queries.
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    /// True when there is no query.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn rows(&self) -> usize {
        self.labels.len()
    }

    fn row(&self, r: usize) -> &[f32] {
        &self.features[r * self.n_features..(r + 1) * self.n_features]
    }

    /// Mean NDCG@10 of ranking each query's rows by `scores` (ties: the earlier row first).
    pub fn ndcg10(&self, scores: &[f32]) -> f64 {
        let total: f64 = (0..self.len()).map(|q| self.query_ndcg10(q, scores)).sum();
        total / self.len().max(1) as f64
    }

    fn query_ndcg10(&self, q: usize, scores: &[f32]) -> f64 {
        let rows = self.offsets[q]..self.offsets[q + 1];
        let ideal = ideal_dcg10(self.relevant[q]);
        if ideal == 0.0 {
            return 0.0;
        }
        let order = ranked(&scores[rows.clone()]);
        let dcg: f64 = order
            .iter()
            .take(10)
            .enumerate()
            .filter(|(_, &i)| self.labels[rows.start + i] > 0.0)
            .map(|(k, _)| discount(k))
            .sum();
        dcg / ideal
    }
}

/// `1 / log2(2 + k)` for 0-based position `k`.
fn discount(k: usize) -> f64 {
    1.0 / ((k + 2) as f64).log2()
}

fn ideal_dcg10(relevant: usize) -> f64 {
    (0..relevant.min(10)).map(discount).sum()
}

/// Row indices by descending score, ties by the lower index.
fn ranked(scores: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    order
}

/// Hyper-parameters of [`LambdaMart::fit`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LambdaMartParams {
    max_trees: usize,
    learning_rate: f32,
    depth: usize,
    min_leaf_rows: usize,
    l2: f64,
    bins: usize,
}

impl Default for LambdaMartParams {
    /// At most 300 trees of depth 4, learning rate 0.1, 100 rows per leaf, L2 1, 64 bins.
    fn default() -> LambdaMartParams {
        LambdaMartParams { max_trees: 300, learning_rate: 0.1, depth: 4, min_leaf_rows: 100, l2: 1.0, bins: 64 }
    }
}

impl LambdaMartParams {
    /// Checked hyper-parameters.
    pub fn new(
        max_trees: usize,
        learning_rate: f32,
        depth: usize,
        min_leaf_rows: usize,
        l2: f64,
        bins: usize,
    ) -> Result<LambdaMartParams> {
        check("max_trees", (1..=5000).contains(&max_trees), max_trees, "must be 1 to 5000")?;
        check("learning_rate", learning_rate > 0.0 && learning_rate <= 1.0, learning_rate, "must be in (0, 1]")?;
        check("depth", (1..=8).contains(&depth), depth, "must be 1 to 8")?;
        check("min_leaf_rows", min_leaf_rows >= 1, min_leaf_rows, "must be at least 1")?;
        check("l2", l2 >= 0.0 && l2.is_finite(), l2, "must be non-negative")?;
        check("bins", (2..=256).contains(&bins), bins, "must be 2 to 256")?;
        Ok(LambdaMartParams { max_trees, learning_rate, depth, min_leaf_rows, l2, bins })
    }

    /// The same with `trees` trees at most.
    pub fn with_max_trees(&self, trees: usize) -> LambdaMartParams {
        LambdaMartParams { max_trees: trees.max(1), ..self.clone() }
    }
}

/// A node of a tree: a split sends `x[feature] <= threshold` left.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Node {
    Split { feature: u16, threshold: f32, left: u32, right: u32 },
    Leaf(f32),
}

/// One regression tree (node 0 the root).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Tree(Vec<Node>);

impl Tree {
    fn predict(&self, row: &[f32]) -> f32 {
        let mut n = 0usize;
        loop {
            match &self.0[n] {
                Node::Leaf(v) => return *v,
                Node::Split { feature, threshold, left, right } => {
                    n = if row[*feature as usize] <= *threshold { *left as usize } else { *right as usize };
                }
            }
        }
    }
}

/// A fitted ranker: the sum of its trees' outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LambdaMart {
    n_features: usize,
    trees: Vec<Tree>,
}

/// What a fit measured: validation NDCG@10 after each tree.
#[derive(Debug, Clone, Default)]
pub struct FitReport {
    /// Validation NDCG@10 of the base scores, then after each tree.
    pub validation_ndcg10: Vec<f64>,
}

impl LambdaMart {
    /// Number of features a row must have.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Number of trees.
    pub fn n_trees(&self) -> usize {
        self.trees.len()
    }

    /// The trees' score of one row (added to its base score).
    pub fn predict(&self, row: &[f32]) -> f32 {
        self.trees.iter().map(|t| t.predict(row)).sum()
    }

    /// Checks a ranker read back from a file: every split names a feature below
    /// `n_features` and children inside its tree, so prediction cannot fail.
    pub fn validate(&self, n_features: usize) -> Result<()> {
        if self.n_features != n_features {
            return Err(Error::BadData(format!("ranker of {} features, {n_features} expected", self.n_features)));
        }
        for (t, tree) in self.trees.iter().enumerate() {
            let n = tree.0.len();
            // children must come after their parent, so a walk always ends at a leaf
            let ok = n > 0
                && tree.0.iter().enumerate().all(|(i, node)| match node {
                    Node::Leaf(v) => v.is_finite(),
                    Node::Split { feature, threshold, left, right } => {
                        (*feature as usize) < n_features
                            && !threshold.is_nan()
                            && (*left as usize) > i
                            && (*right as usize) > i
                            && (*left as usize) < n
                            && (*right as usize) < n
                    }
                });
            if !ok {
                return Err(Error::BadData(format!("ranker tree {t} is malformed")));
            }
        }
        Ok(())
    }

    /// Boosts trees on `train` from the rows' base scores; with `validation`, stops
    /// [`PATIENCE`] trees after the best validation NDCG@10 and keeps the trees up to it
    /// (none when the base ranks best). Deterministic on any thread count.
    pub fn fit(
        params: &LambdaMartParams,
        train: &Queries,
        validation: Option<&Queries>,
    ) -> Result<(LambdaMart, FitReport)> {
        let f = train.n_features;
        if train.is_empty() || train.rows() == 0 {
            return Err(Error::BadData("a ranker needs training queries".into()));
        }
        if validation.is_some_and(|v| v.n_features != f) {
            return Err(Error::BadData("validation queries have other features".into()));
        }
        let binned = Binned::new(train, params.bins);
        let mut scores = train.base.clone();
        let mut valid_scores = validation.map(|v| v.base.clone());
        let mut report = FitReport::default();
        let mut best = (f64::NEG_INFINITY, 0usize);
        if let (Some(v), Some(s)) = (validation, &valid_scores) {
            best.0 = v.ndcg10(s);
            report.validation_ndcg10.push(best.0);
        }
        let mut trees: Vec<Tree> = Vec::new();
        let mut grad = vec![0f64; train.rows()];
        let mut hess = vec![0f64; train.rows()];
        for t in 0..params.max_trees {
            lambdas(train, &scores, &mut grad, &mut hess);
            let tree = grow(params, &binned, &grad, &hess);
            for (r, s) in scores.iter_mut().enumerate() {
                *s += tree.predict(train.row(r));
            }
            if let (Some(v), Some(s)) = (validation, valid_scores.as_mut()) {
                for (r, x) in s.iter_mut().enumerate() {
                    *x += tree.predict(v.row(r));
                }
                let ndcg = v.ndcg10(s);
                report.validation_ndcg10.push(ndcg);
                trees.push(tree);
                if ndcg > best.0 + 1e-12 {
                    best = (ndcg, t + 1);
                } else if t + 1 >= best.1 + PATIENCE {
                    break;
                }
            } else {
                trees.push(tree);
            }
        }
        if validation.is_some() {
            trees.truncate(best.1);
        }
        Ok((LambdaMart { n_features: f, trees }, report))
    }
}

/// LambdaRank gradients and second derivatives of every row (0 for queries without a
/// relevant row); each query is computed on its own, so any thread order gives the same.
fn lambdas(q: &Queries, scores: &[f32], grad: &mut [f64], hess: &mut [f64]) {
    let mut per_query: Vec<(&mut [f64], &mut [f64])> = Vec::with_capacity(q.len());
    let (mut g_rest, mut h_rest) = (grad, hess);
    for k in 0..q.len() {
        let n = q.offsets[k + 1] - q.offsets[k];
        let (g, gr) = g_rest.split_at_mut(n);
        let (h, hr) = h_rest.split_at_mut(n);
        per_query.push((g, h));
        g_rest = gr;
        h_rest = hr;
    }
    per_query.into_par_iter().enumerate().for_each(|(k, (g, h))| {
        g.fill(0.0);
        h.fill(0.0);
        let rows = q.offsets[k]..q.offsets[k + 1];
        let labels = &q.labels[rows.clone()];
        let ideal = ideal_dcg10(q.relevant[k]);
        if ideal == 0.0 || labels.iter().all(|&l| l > 0.0) {
            return;
        }
        let s = &scores[rows];
        let order = ranked(s);
        let mut total = 0.0;
        for (pi, &i) in order.iter().enumerate().take(TRUNCATION) {
            for (pj, &j) in order.iter().enumerate().skip(pi + 1) {
                if labels[i] == labels[j] {
                    continue;
                }
                let (hi, lo) = if labels[i] > labels[j] { (i, j) } else { (j, i) };
                let delta = (labels[hi] - labels[lo]) as f64 * (discount(pi) - discount(pj)).abs() / ideal;
                let rho = 1.0 / (1.0 + ((s[hi] - s[lo]) as f64).exp());
                g[hi] -= delta * rho;
                g[lo] += delta * rho;
                let w = delta * rho * (1.0 - rho);
                h[hi] += w;
                h[lo] += w;
                total += 2.0 * delta * rho;
            }
        }
        // LightGBM's lambdarank_norm: a query with many misordered pairs does not outweigh
        // the others
        if total > 0.0 {
            let norm = (1.0 + total).log2() / total;
            g.iter_mut().for_each(|x| *x *= norm);
            h.iter_mut().for_each(|x| *x *= norm);
        }
    });
}

/// Features cut into quantile bins, column-major, and each feature's cut points.
struct Binned {
    /// `bins[f][row]`.
    bins: Vec<Vec<u8>>,
    /// `cuts[f][b]`: the largest value of bin `b` (a row with `x <= cuts[f][b]` is in bin
    /// `b` or lower).
    cuts: Vec<Vec<f32>>,
}

impl Binned {
    fn new(q: &Queries, max_bins: usize) -> Binned {
        let rows = q.rows();
        let f = q.n_features;
        let (cuts, bins): (Vec<Vec<f32>>, Vec<Vec<u8>>) = (0..f)
            .into_par_iter()
            .map(|j| {
                let mut values: Vec<f32> = (0..rows).map(|r| q.features[r * f + j]).collect();
                values.sort_by(f32::total_cmp);
                let mut cuts: Vec<f32> = (1..max_bins)
                    .map(|b| values[(b * rows / max_bins).min(rows - 1)])
                    .filter(|x| x.is_finite())
                    .collect();
                cuts.dedup();
                // the last bin holds everything above the last cut
                let column: Vec<u8> =
                    (0..rows).map(|r| cuts.partition_point(|&c| c < q.features[r * f + j]) as u8).collect();
                (cuts, column)
            })
            .unzip();
        Binned { bins, cuts }
    }
}

/// A node being grown: its rows and its sums.
struct Open {
    node: usize,
    rows: Vec<u32>,
    depth: usize,
}

/// Grows one tree depth-wise on the gradients, leaves scaled by the learning rate.
fn grow(p: &LambdaMartParams, b: &Binned, grad: &[f64], hess: &[f64]) -> Tree {
    let leaf = |rows: &[u32]| -> f32 {
        let (g, h) = rows.iter().fold((0.0, 0.0), |(g, h), &r| (g + grad[r as usize], h + hess[r as usize]));
        ((-g / (h + p.l2 + 1e-12)).clamp(-MAX_STEP, MAX_STEP)) as f32 * p.learning_rate
    };
    let all: Vec<u32> = (0..grad.len() as u32).filter(|&r| hess[r as usize] > 0.0 || grad[r as usize] != 0.0).collect();
    let mut nodes = vec![Node::Leaf(0.0)];
    let mut open = vec![Open { node: 0, rows: all, depth: 0 }];
    while let Some(o) = open.pop() {
        let split = if o.depth < p.depth && o.rows.len() >= 2 * p.min_leaf_rows {
            best_split(p, b, grad, hess, &o.rows)
        } else {
            None
        };
        match split {
            None => nodes[o.node] = Node::Leaf(leaf(&o.rows)),
            Some((feature, bin)) => {
                let column = &b.bins[feature];
                let (l, r): (Vec<u32>, Vec<u32>) = o.rows.iter().partition(|&&x| column[x as usize] as usize <= bin);
                let (left, right) = (nodes.len(), nodes.len() + 1);
                nodes.push(Node::Leaf(0.0));
                nodes.push(Node::Leaf(0.0));
                nodes[o.node] = Node::Split {
                    feature: feature as u16,
                    threshold: b.cuts[feature][bin],
                    left: left as u32,
                    right: right as u32,
                };
                open.push(Open { node: right, rows: r, depth: o.depth + 1 });
                open.push(Open { node: left, rows: l, depth: o.depth + 1 });
            }
        }
    }
    Tree(nodes)
}

/// The split of `rows` with the largest gain (a feature and the last bin sent left), if any
/// leaves both sides `min_leaf_rows` rows and gains anything.
fn best_split(p: &LambdaMartParams, b: &Binned, grad: &[f64], hess: &[f64], rows: &[u32]) -> Option<(usize, usize)> {
    let (gs, hs) = rows.iter().fold((0.0, 0.0), |(g, h), &r| (g + grad[r as usize], h + hess[r as usize]));
    let parent = gs * gs / (hs + p.l2);
    let candidates: Vec<Option<(f64, usize, usize)>> = (0..b.bins.len())
        .into_par_iter()
        .map(|f| {
            let cuts = b.cuts[f].len();
            if cuts == 0 {
                return None;
            }
            let column = &b.bins[f];
            let mut hg = vec![0f64; cuts + 1];
            let mut hh = vec![0f64; cuts + 1];
            let mut hc = vec![0usize; cuts + 1];
            for &r in rows {
                let k = column[r as usize] as usize;
                hg[k] += grad[r as usize];
                hh[k] += hess[r as usize];
                hc[k] += 1;
            }
            let (mut gl, mut hl, mut cl) = (0.0, 0.0, 0usize);
            let mut best: Option<(f64, usize, usize)> = None;
            for k in 0..cuts {
                gl += hg[k];
                hl += hh[k];
                cl += hc[k];
                let cr = rows.len() - cl;
                if cl < p.min_leaf_rows || cr < p.min_leaf_rows {
                    continue;
                }
                let (gr, hr) = (gs - gl, hs - hl);
                let gain = gl * gl / (hl + p.l2) + gr * gr / (hr + p.l2) - parent;
                if gain > 1e-12 && best.is_none_or(|b| gain > b.0) {
                    best = Some((gain, f, k));
                }
            }
            best
        })
        .collect();
    // the first feature on equal gains, whatever the threads
    let mut best: Option<(f64, usize, usize)> = None;
    for c in candidates.into_iter().flatten() {
        if best.is_none_or(|b| c.0 > b.0) {
            best = Some(c);
        }
    }
    best.map(|(_, f, k)| (f, k))
}

#[cfg(test)]
mod tests {
    use super::*;
    use warmstart_core::Rng;

    /// Queries whose relevance follows a non-linear rule of two features (relevant when both
    /// are high or both low), with a noise feature: no weighted sum of the features ranks them.
    fn xor_queries(rng: &mut Rng, n: usize) -> Queries {
        let mut q = Queries::new(3);
        for _ in 0..n {
            let (mut f, mut l) = (Vec::new(), Vec::new());
            for _ in 0..40 {
                let (a, b, c) = (rng.unit_f32(), rng.unit_f32(), rng.unit_f32());
                let rel = (a > 0.7 && b > 0.7) || (a < 0.3 && b < 0.3);
                f.extend([a, b, c]);
                l.push(if rel && rng.unit_f32() < 0.8 { 1.0 } else { 0.0 });
            }
            let base = vec![0.0; l.len()];
            q.push(&f, &l, &base, 0);
        }
        q
    }

    #[test]
    fn learns_a_ranking_no_weighted_sum_can() {
        let mut rng = Rng::new(3);
        let (train, valid) = (xor_queries(&mut rng, 300), xor_queries(&mut rng, 100));
        let params = LambdaMartParams::new(200, 0.1, 3, 20, 1.0, 32).unwrap();
        let (model, report) = LambdaMart::fit(&params, &train, Some(&valid)).unwrap();
        let scores: Vec<f32> = (0..valid.rows()).map(|r| valid.base[r] + model.predict(valid.row(r))).collect();
        let got = valid.ndcg10(&scores);
        // the best single feature or sum of the two ranks far worse than the rule
        let sums: Vec<f32> = (0..valid.rows()).map(|r| valid.row(r)[0] + valid.row(r)[1]).collect();
        let linear = valid.ndcg10(&sums);
        assert!(got > 0.8 && got > linear + 0.2, "ranker {got:.3}, sum of the features {linear:.3}");
        assert_eq!(got, *report.validation_ndcg10.iter().max_by(|a, b| a.total_cmp(b)).unwrap());
        assert!(model.n_trees() > 0);
        assert_eq!(report.validation_ndcg10.len(), model.n_trees() + PATIENCE + 1, "stopped {PATIENCE} after the best");
        model.validate(3).unwrap();
        assert!(model.validate(2).is_err());
        let text = serde_json::to_string(&model).unwrap();
        let back: LambdaMart = serde_json::from_str(&text).unwrap();
        assert_eq!(back, model);
    }

    #[test]
    fn the_same_trees_on_any_thread_count() {
        let mut rng = Rng::new(5);
        let train = xor_queries(&mut rng, 80);
        let params = LambdaMartParams::new(20, 0.2, 3, 10, 1.0, 16).unwrap();
        let fit = |threads| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| LambdaMart::fit(&params, &train, None).unwrap().0)
        };
        let one = fit(1);
        assert_eq!(one.n_trees(), 20);
        assert_eq!(one, fit(3));
    }

    #[test]
    fn ndcg_counts_relevant_items_outside_the_rows_and_bad_trees_are_refused() {
        let mut q = Queries::new(1);
        q.push(&[0.9, 0.1, 0.5], &[1.0, 0.0, 0.0], &[0.0; 3], 2);
        // one of two relevant items at position 0: DCG 1, ideal 1 + 1/log2(3)
        let want = 1.0 / (1.0 + 1.0 / 3f64.log2());
        assert!((q.ndcg10(&[0.9, 0.1, 0.5]) - want).abs() < 1e-12);
        assert!(q.ndcg10(&[0.0, 0.0, 0.0]) > 0.0, "ties keep the rows' order");
        let bad = LambdaMart {
            n_features: 1,
            trees: vec![Tree(vec![Node::Split { feature: 0, threshold: 0.0, left: 0, right: 1 }, Node::Leaf(1.0)])],
        };
        assert!(bad.validate(1).is_err(), "a child before its parent would loop");
        assert!(LambdaMartParams::new(0, 0.1, 3, 1, 1.0, 8).is_err());
        assert!(LambdaMart::fit(&LambdaMartParams::default(), &Queries::new(2), None).is_err());
    }

    #[test]
    fn boosting_from_a_perfect_base_keeps_no_tree() {
        let mut rng = Rng::new(9);
        let mut make = |n| {
            let mut q = Queries::new(2);
            for _ in 0..n {
                let rows = 30;
                let f: Vec<f32> = (0..rows * 2).map(|_| rng.unit_f32()).collect();
                let l: Vec<f32> = (0..rows).map(|r| f32::from(u8::from(r % 10 == 0))).collect();
                // the base ranks the relevant rows first; the features carry nothing
                let base: Vec<f32> = l.iter().map(|&x| 5.0 * x).collect();
                q.push(&f, &l, &base, 0);
            }
            q
        };
        let (train, valid) = (make(100), make(50));
        let (model, report) = LambdaMart::fit(&LambdaMartParams::default(), &train, Some(&valid)).unwrap();
        assert_eq!(report.validation_ndcg10[0], 1.0);
        assert_eq!(model.n_trees(), 0, "no tree beats a perfect base");
        assert_eq!(model.predict(&[0.5, 0.5]), 0.0);
    }
}
