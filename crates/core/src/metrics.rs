//! Ranking metrics (the one implementation, re-exported by `warmstart_eval::metrics` and used
//! by models that stop early on validation NDCG): one implementation of each, computed from the ranks of the relevant
//! items in a ranked candidate list (binary relevance).
//!
//! Definitions follow trec_eval so that results can be cross-checked with pytrec_eval:
//! `map@k` divides by the number of relevant items (`map_cut_k`), `ndcg@k` uses the ideal
//! DCG of `min(|rel|, k)` hits (`ndcg_cut_k`), `mrr` is the reciprocal rank of the first
//! relevant item in the whole ranking, `auc` the share of (relevant, non-relevant) candidate
//! pairs ordered correctly.

use std::collections::BTreeMap;

/// Metric names computed for each cut-off `k`.
pub const AT_K: [&str; 6] = ["precision", "recall", "f1", "map", "ndcg", "hit"];

/// 1-based ranks of `relevant` positions within `scores` (descending score, ties by lower
/// position first, as [`crate::top_k`] orders them). Positions whose score is not a
/// finite number or `+inf` are not candidates; a relevant item there gets no rank.
pub fn relevant_ranks(scores: &[f32], relevant: &[usize]) -> Vec<Option<usize>> {
    relevant
        .iter()
        .map(|&r| {
            let s = scores[r];
            if s.is_nan() || s == f32::NEG_INFINITY {
                return None;
            }
            let mut above = 0usize;
            for (j, &t) in scores.iter().enumerate() {
                if t > s || (t == s && j < r) {
                    above += 1;
                }
            }
            Some(above + 1)
        })
        .collect()
}

/// Number of candidates (positions with a usable score).
pub fn candidate_count(scores: &[f32]) -> usize {
    scores.iter().filter(|s| !s.is_nan() && **s != f32::NEG_INFINITY).count()
}

/// All metrics of one ranked list.
///
/// `ranks`: rank of each distinct relevant item (`None` = not ranked); `n_candidates`: size of
/// the ranked list; `ks`: cut-offs.
pub fn case_metrics(ranks: &[Option<usize>], n_candidates: usize, ks: &[usize]) -> BTreeMap<String, f64> {
    let n_rel = ranks.len();
    let mut hits: Vec<usize> = ranks.iter().flatten().copied().collect();
    hits.sort_unstable();
    let mut m = BTreeMap::new();
    for &k in ks {
        let in_k: Vec<usize> = hits.iter().copied().take_while(|&r| r <= k).collect();
        let h = in_k.len() as f64;
        let p = h / k as f64;
        let r = if n_rel == 0 { 0.0 } else { h / n_rel as f64 };
        let f1 = if p + r > 0.0 { 2.0 * p * r / (p + r) } else { 0.0 };
        let ap = if n_rel == 0 {
            0.0
        } else {
            in_k.iter().enumerate().map(|(j, &rank)| (j + 1) as f64 / rank as f64).sum::<f64>() / n_rel as f64
        };
        let dcg: f64 = in_k.iter().map(|&rank| 1.0 / ((rank + 1) as f64).log2()).sum();
        let idcg: f64 = (1..=n_rel.min(k)).map(|i| 1.0 / ((i + 1) as f64).log2()).sum();
        let ndcg = if idcg > 0.0 { dcg / idcg } else { 0.0 };
        m.insert(format!("precision@{k}"), p);
        m.insert(format!("recall@{k}"), r);
        m.insert(format!("f1@{k}"), f1);
        m.insert(format!("map@{k}"), ap);
        m.insert(format!("ndcg@{k}"), ndcg);
        m.insert(format!("hit@{k}"), if h > 0.0 { 1.0 } else { 0.0 });
    }
    m.insert("mrr".into(), hits.first().map(|&r| 1.0 / r as f64).unwrap_or(0.0));
    // AUC over the candidates: relevant items that were ranked vs the non-relevant ones.
    let n_pos = hits.len();
    let n_neg = n_candidates.saturating_sub(n_pos);
    let auc = if n_pos == 0 || n_neg == 0 {
        0.5
    } else {
        let correct: usize = hits.iter().enumerate().map(|(j, &rank)| n_neg - (rank - 1 - j)).sum();
        correct as f64 / (n_pos * n_neg) as f64
    };
    m.insert("auc".into(), auc);
    m
}
