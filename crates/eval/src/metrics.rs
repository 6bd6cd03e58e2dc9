//! Ranking metrics: the implementation lives in `warmstart_core::metrics` (so models can
//! stop early on the same NDCG); this module re-exports it for evaluation.

pub use warmstart_core::metrics::*;

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
