//! Ranking metrics: one implementation of each, computed from the ranks of the relevant
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
/// position first, as [`warmstart_core::top_k`] orders them). Positions whose score is not a
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    /// Hand-computed: 10 candidates, relevant at ranks 1, 3 and one unranked (excluded).
    #[test]
    fn hand_computed_case() {
        let m = case_metrics(&[Some(1), Some(3), None], 10, &[1, 3, 5]);
        assert!(close(m["precision@3"], 2.0 / 3.0));
        assert!(close(m["recall@3"], 2.0 / 3.0));
        assert!(close(m["f1@3"], 2.0 / 3.0));
        assert!(close(m["precision@1"], 1.0));
        assert!(close(m["recall@1"], 1.0 / 3.0));
        assert!(close(m["map@3"], (1.0 + 2.0 / 3.0) / 3.0));
        let dcg = 1.0 + 1.0 / 4f64.log2();
        let idcg = 1.0 + 1.0 / 3f64.log2() + 1.0 / 4f64.log2();
        assert!(close(m["ndcg@3"], dcg / idcg));
        assert!(close(m["ndcg@1"], 1.0));
        assert!(close(m["hit@1"], 1.0));
        assert!(close(m["mrr"], 1.0));
        // positives at 1 and 3 among 10 candidates: 8 negatives; rank 1 beats 8, rank 3 beats 7.
        assert!(close(m["auc"], 15.0 / 16.0));
        let miss = case_metrics(&[Some(7)], 10, &[5]);
        assert!(close(miss["ndcg@5"], 0.0) && close(miss["hit@5"], 0.0) && close(miss["mrr"], 1.0 / 7.0));
    }

    #[test]
    fn ranks_break_ties_by_position_and_skip_excluded() {
        let s = [0.5, 0.9, f32::NEG_INFINITY, 0.5, 0.1];
        assert_eq!(relevant_ranks(&s, &[0, 3, 2, 4]), vec![Some(2), Some(3), None, Some(4)]);
        assert_eq!(candidate_count(&s), 4);
        let order = warmstart_core::top_k(&s, 5);
        assert_eq!(order, vec![1, 0, 3, 4]);
    }

    proptest! {
        #[test]
        fn metrics_are_bounded_and_perfect_ranking_scores_one(
            scores in proptest::collection::vec(-5.0f32..5.0, 2..60),
            rel_mask in proptest::collection::vec(any::<bool>(), 60),
            k in 1usize..30,
        ) {
            let n = scores.len();
            let rel: Vec<usize> = (0..n).filter(|&i| rel_mask[i]).collect();
            prop_assume!(!rel.is_empty());
            let m = case_metrics(&relevant_ranks(&scores, &rel), n, &[k]);
            for (name, v) in &m {
                prop_assert!((0.0..=1.0 + 1e-12).contains(v), "{name} = {v}");
            }
            // a perfect ranking: relevant items on top
            let perfect: Vec<f32> = (0..n).map(|i| if rel_mask[i] { 1.0 } else { 0.0 }).collect();
            let p = case_metrics(&relevant_ranks(&perfect, &rel), n, &[k]);
            let key = format!("ndcg@{}", k);
            prop_assert!((p[&key] - 1.0).abs() < 1e-9);
            prop_assert!((p["mrr"] - 1.0).abs() < 1e-12);
            prop_assert!((p["auc"] - 1.0).abs() < 1e-12 || rel.len() == n);
            // invariant to ids: permuting positions (scores move with their items) changes nothing
            let perm: Vec<usize> = (0..n).rev().collect();
            let s2: Vec<f32> = perm.iter().map(|&i| scores[i]).collect();
            let rel2: Vec<usize> = (0..n).filter(|&j| rel_mask[perm[j]]).collect();
            let distinct = { let mut v = scores.clone(); v.sort_by(|a, b| a.total_cmp(b)); v.dedup(); v.len() == n };
            if distinct {
                let m2 = case_metrics(&relevant_ranks(&s2, &rel2), n, &[k]);
                for (name, v) in &m {
                    prop_assert!((v - m2[name]).abs() < 1e-12, "{name}");
                }
            }
        }
    }
}
