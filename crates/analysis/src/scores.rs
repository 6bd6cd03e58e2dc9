//! Cluster quality scores, as scikit-learn computes them: adjusted Rand index
//! (`adjusted_rand_score`), normalised mutual information (`normalized_mutual_info_score`,
//! arithmetic mean, natural logarithm) and the mean silhouette (`silhouette_score`), plus
//! purity, the noise share and the number of clusters.
//!
//! Labels are `i32`, `-1` being noise as the density clusterings write it. The comparisons
//! (ARI, NMI, purity) treat `-1` as one more label, as scikit-learn does when given the raw
//! labels; the silhouette leaves noise rows out.

use std::collections::BTreeMap;

use rayon::prelude::*;

use crate::{Error, Metric, Points, Result};

fn same_length(a: &[i32], b: &[i32]) -> Result<()> {
    if a.len() != b.len() {
        return Err(Error::BadInput(format!("label lists of different lengths ({} and {})", a.len(), b.len())));
    }
    Ok(())
}

/// Each label's rank among the distinct labels (ascending), and the number of distinct labels.
fn encode(labels: &[i32]) -> (Vec<usize>, usize) {
    let mut distinct = labels.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    (labels.iter().map(|l| distinct.partition_point(|x| x < l)).collect(), distinct.len())
}

/// Contingency table of two labelings: non-zero cells in row-major order, row and column sums.
struct Contingency {
    cells: BTreeMap<(usize, usize), u64>,
    rows: Vec<u64>,
    cols: Vec<u64>,
}

fn contingency(a: &[i32], b: &[i32]) -> Contingency {
    let ((ca, ka), (cb, kb)) = (encode(a), encode(b));
    let mut c = Contingency { cells: BTreeMap::new(), rows: vec![0; ka], cols: vec![0; kb] };
    for (&i, &j) in ca.iter().zip(&cb) {
        *c.cells.entry((i, j)).or_insert(0) += 1;
        c.rows[i] += 1;
        c.cols[j] += 1;
    }
    c
}

/// Adjusted Rand index of two labelings (symmetric; 1 for the same partition, about 0 for
/// independent ones, possibly negative). Empty labelings score 1, as in scikit-learn.
pub fn adjusted_rand_index(a: &[i32], b: &[i32]) -> Result<f64> {
    same_length(a, b)?;
    let c = contingency(a, b);
    // ordered pair counts, as scikit-learn's pair_confusion_matrix, in exact integers
    let n = a.len() as i128;
    let sum_squares: i128 = c.cells.values().map(|&v| (v as i128) * (v as i128)).sum();
    let same_a: i128 = c.cells.iter().map(|(&(i, _), &v)| v as i128 * c.rows[i] as i128).sum();
    let same_b: i128 = c.cells.iter().map(|(&(_, j), &v)| v as i128 * c.cols[j] as i128).sum();
    let tp = sum_squares - n;
    let fp = same_b - sum_squares;
    let fn_ = same_a - sum_squares;
    let tn = n * n - fp - fn_ - sum_squares;
    if fn_ == 0 && fp == 0 {
        return Ok(1.0);
    }
    Ok(2.0 * (tp * tn - fn_ * fp) as f64 / ((tp + fn_) * (fn_ + tn) + (tp + fp) * (fp + tn)) as f64)
}

/// Entropy (natural log) of a labeling given its class sizes.
fn entropy(sizes: &[u64]) -> f64 {
    if sizes.len() == 1 {
        return 0.0;
    }
    let total: f64 = sizes.iter().map(|&s| s as f64).sum();
    -sizes.iter().map(|&s| (s as f64 / total) * ((s as f64).ln() - total.ln())).sum::<f64>()
}

/// Mutual information (natural log) from a contingency table, as scikit-learn's
/// `mutual_info_score`.
fn mutual_info(c: &Contingency) -> f64 {
    if c.rows.len() == 1 || c.cols.len() == 1 {
        return 0.0;
    }
    let total: f64 = c.cells.values().map(|&v| v as f64).sum();
    let log_sums = (c.rows.iter().sum::<u64>() as f64).ln() + (c.cols.iter().sum::<u64>() as f64).ln();
    let mi: f64 = c
        .cells
        .iter()
        .map(|(&(i, j), &v)| {
            let share = v as f64 / total;
            let log_outer = -((c.rows[i] * c.cols[j]) as f64).ln() + log_sums;
            let term = share * ((v as f64).ln() - total.ln()) + share * log_outer;
            if term.abs() < f64::EPSILON {
                0.0
            } else {
                term
            }
        })
        .sum();
    mi.max(0.0)
}

/// Normalised mutual information with the arithmetic mean of the two entropies
/// (scikit-learn's default). Two single-cluster (or empty) labelings score 1.
pub fn normalized_mutual_info(a: &[i32], b: &[i32]) -> Result<f64> {
    same_length(a, b)?;
    let c = contingency(a, b);
    if c.rows.len() == c.cols.len() && c.rows.len() <= 1 {
        return Ok(1.0);
    }
    let mi = mutual_info(&c);
    if mi == 0.0 {
        return Ok(0.0);
    }
    Ok(mi / ((entropy(&c.rows) + entropy(&c.cols)) / 2.0))
}

/// Purity of `pred` against `truth`: each predicted cluster counts the rows of its most common
/// true class, over all rows. All noise rows (`-1`) form one predicted group, so a noisy
/// clustering is not rewarded for its noise. Not symmetric; empty labelings are an error.
pub fn purity(pred: &[i32], truth: &[i32]) -> Result<f64> {
    same_length(pred, truth)?;
    if pred.is_empty() {
        return Err(Error::BadInput("purity of no rows".into()));
    }
    let c = contingency(pred, truth);
    let mut best = vec![0u64; c.rows.len()];
    for (&(i, _), &v) in &c.cells {
        best[i] = best[i].max(v);
    }
    Ok(best.iter().sum::<u64>() as f64 / pred.len() as f64)
}

/// One cluster's purity: the share of the most common label among `members` (labels index `truth`; negative labels are skipped).
pub fn cluster_purity(members: &[usize], truth: &[i32]) -> f32 {
    let mut counts = std::collections::HashMap::new();
    for &i in members {
        if truth[i] >= 0 {
            *counts.entry(truth[i]).or_insert(0usize) += 1;
        }
    }
    counts.values().max().copied().unwrap_or(0) as f32 / members.len().max(1) as f32
}

/// Mean silhouette of the rows of `data` (`n × dim`) that are not noise (`-1`), as
/// scikit-learn's `silhouette_score` on those rows alone: for each row, with `a` its mean
/// distance to the rest of its cluster and `b` the smallest mean distance to another cluster,
/// `(b − a) / max(a, b)`, 0 for a row alone in its cluster. `None` when fewer than 2 clusters
/// remain, or as many clusters as rows (where scikit-learn raises an error).
pub fn silhouette(data: &[f32], dim: usize, labels: &[i32], metric: Metric) -> Result<Option<f64>> {
    let points = Points::new(data, dim, metric)?;
    if points.n != labels.len() {
        return Err(Error::BadInput(format!("{} rows but {} labels", points.n, labels.len())));
    }
    let kept: Vec<usize> = (0..points.n).filter(|&i| labels[i] != -1).collect();
    let kept_labels: Vec<i32> = kept.iter().map(|&i| labels[i]).collect();
    let (codes, k) = encode(&kept_labels);
    if k < 2 || k >= kept.len() {
        return Ok(None);
    }
    let mut size = vec![0usize; k];
    for &c in &codes {
        size[c] += 1;
    }
    let scores: Vec<f64> = (0..kept.len())
        .into_par_iter()
        .map_init(
            || vec![0.0f64; k],
            |sums, a| {
                sums.fill(0.0);
                for (&b, &cb) in kept.iter().zip(&codes) {
                    sums[cb] += points.dist(kept[a], b);
                }
                let own = codes[a];
                if size[own] == 1 {
                    return 0.0;
                }
                let intra = sums[own] / (size[own] - 1) as f64;
                let inter =
                    (0..k).filter(|&c| c != own).map(|c| sums[c] / size[c] as f64).fold(f64::INFINITY, f64::min);
                let s = (inter - intra) / intra.max(inter);
                if s.is_nan() {
                    0.0
                } else {
                    s
                }
            },
        )
        .collect();
    Ok(Some(scores.iter().sum::<f64>() / scores.len() as f64))
}

/// Share of rows labelled noise (`-1`); 0 for no rows.
pub fn noise_fraction(labels: &[i32]) -> f64 {
    if labels.is_empty() {
        return 0.0;
    }
    labels.iter().filter(|&&l| l == -1).count() as f64 / labels.len() as f64
}

/// Number of distinct labels other than noise (`-1`).
pub fn n_clusters(labels: &[i32]) -> usize {
    let (_, k) = encode(labels);
    k - usize::from(labels.contains(&-1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adjusted_rand_index_known_values() {
        let a = [0, 0, 1, 1, 2, 2, -1];
        assert_eq!(adjusted_rand_index(&a, &a).unwrap(), 1.0);
        assert_eq!(adjusted_rand_index(&a, &[7, 7, 3, 3, -1, -1, 0]).unwrap(), 1.0, "renamed labels");
        // contingency [[2, 0], [0, 1], [0, 1]]: index Σ C(n_ij, 2) = 1, row pairs 1, column
        // pairs 2, expected 1 · 2 / C(4, 2) = 1/3, max (1 + 2) / 2: ARI = (2/3) / (7/6) = 4/7
        let v = adjusted_rand_index(&[0, 0, 1, 2], &[0, 0, 1, 1]).unwrap();
        assert!((v - 4.0 / 7.0).abs() < 1e-12, "{v}");
        assert_eq!(v, adjusted_rand_index(&[0, 0, 1, 1], &[0, 0, 1, 2]).unwrap(), "symmetric");
        // scikit-learn's documented values
        assert!((adjusted_rand_index(&[0, 0, 1, 1], &[0, 1, 0, 1]).unwrap() + 0.5).abs() < 1e-12);
        assert_eq!(adjusted_rand_index(&[0, 0, 0, 0], &[0, 1, 2, 3]).unwrap(), 0.0);
        assert_eq!(adjusted_rand_index(&[], &[]).unwrap(), 1.0);
        assert!(adjusted_rand_index(&[0, 1], &[0]).is_err());
    }

    #[test]
    fn normalized_mutual_info_known_values() {
        // [0 0 1 2] refines [0 0 1 1]: MI = H(a) = ln 2, H(b) = 1.5 ln 2, NMI = 1 / 1.25
        let v = normalized_mutual_info(&[0, 0, 1, 1], &[0, 0, 1, 2]).unwrap();
        assert!((v - 0.8).abs() < 1e-12, "{v}");
        assert_eq!(normalized_mutual_info(&[0, 0, 1, 1], &[5, 5, -1, -1]).unwrap(), 1.0);
        assert_eq!(normalized_mutual_info(&[3, 3, 3], &[1, 1, 1]).unwrap(), 1.0, "both one cluster");
        assert_eq!(normalized_mutual_info(&[0, 0, 0, 0], &[0, 1, 2, 3]).unwrap(), 0.0);
        // 2 × 3 table [[2, 1, 0], [0, 1, 2]] (n = 6): MI = (4/6) ln 2, H(a) = ln 2,
        // H(b) = ln 3, NMI = 2 · (2/3) ln 2 / (ln 2 + ln 3)
        let v = normalized_mutual_info(&[0, 0, 0, 1, 1, 1], &[0, 0, 1, 1, 2, 2]).unwrap();
        let want = 2.0 * (2.0 / 3.0) * 2f64.ln() / (2f64.ln() + 3f64.ln());
        assert!((v - want).abs() < 1e-12, "{v} vs {want}");
        assert!(normalized_mutual_info(&[0], &[]).is_err());
    }

    #[test]
    fn purity_counts_noise_as_one_group() {
        // predicted 0 → truths {0, 0, 1}: 2; predicted 1 → {1, 1}: 2; noise → {0, 2}: 1
        let p = purity(&[0, 0, 0, 1, 1, -1, -1], &[0, 0, 1, 1, 1, 0, 2]).unwrap();
        assert!((p - 5.0 / 7.0).abs() < 1e-12, "{p}");
        assert_eq!(purity(&[0, 1, 2], &[0, 0, 0]).unwrap(), 1.0, "singletons are pure");
        assert!(purity(&[], &[]).is_err());
        assert!(purity(&[0], &[0, 1]).is_err());
        // one cluster: members 0..4 with labels 1, 1, 2 and one unlabelled
        assert!((cluster_purity(&[0, 1, 2, 3], &[1, 1, 2, -1]) - 0.5).abs() < 1e-6);
    }

    #[test]
    fn silhouette_of_two_pairs() {
        // pairs {(0,0), (0,1)} and {(10,0), (10,1)}: a = 1, b = (10 + √101) / 2 for every row
        let data = [0.0, 0.0, 0.0, 1.0, 10.0, 0.0, 10.0, 1.0, 500.0, 500.0];
        let b = (10.0 + 101f64.sqrt()) / 2.0;
        let s = silhouette(&data, 2, &[0, 0, 1, 1, -1], Metric::Euclidean).unwrap().unwrap();
        assert!((s - (b - 1.0) / b).abs() < 1e-12, "{s}");
        assert!(s > 0.9);
        // a row alone in its cluster scores 0: (0.9 + (√101 − 1)/√101 + 0) / 3
        let s = silhouette(&data[..6], 2, &[0, 0, 1], Metric::Euclidean).unwrap().unwrap();
        let want = (0.9 + (101f64.sqrt() - 1.0) / 101f64.sqrt()) / 3.0;
        assert!((s - want).abs() < 1e-12, "{s} vs {want}");
        // pairing each row with the far one makes it negative
        assert!(silhouette(&data, 2, &[0, 1, 1, 0, -1], Metric::Euclidean).unwrap().unwrap() < 0.0);
        assert_eq!(silhouette(&data, 2, &[0, 0, 0, 0, -1], Metric::Euclidean).unwrap(), None, "one cluster");
        assert_eq!(silhouette(&data, 2, &[-1; 5], Metric::Euclidean).unwrap(), None, "all noise");
        assert_eq!(silhouette(&data, 2, &[0, 1, -1, -1, -1], Metric::Euclidean).unwrap(), None, "singletons");
        assert!(silhouette(&data, 2, &[0, 0, 1, 1], Metric::Euclidean).is_err());
        // cosine: two directions, lengths ignored
        let dirs = [1.0, 0.0, 3.0, 0.0, 0.0, 2.0, 0.0, 5.0];
        let s = silhouette(&dirs, 2, &[0, 0, 1, 1], Metric::Cosine).unwrap().unwrap();
        assert!((s - 1.0).abs() < 1e-12, "{s}");
    }

    #[test]
    fn noise_and_cluster_counts() {
        assert_eq!(noise_fraction(&[0, -1, 1, -1]), 0.5);
        assert_eq!(noise_fraction(&[]), 0.0);
        assert_eq!(n_clusters(&[0, -1, 1, -1, 1, 5]), 3);
        assert_eq!(n_clusters(&[-1, -1]), 0);
        assert_eq!(n_clusters(&[]), 0);
    }
}
