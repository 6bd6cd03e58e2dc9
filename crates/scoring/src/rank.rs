//! Ranking a shop's catalog for a user's content profiles: the step the content model runs
//! on the server and the browser extension runs on the shopper's device, so both give the
//! same list for the same vectors.

use warmstart_core::{ItemId, SiteId};

use crate::vector::{axpy, dot, normalize};

/// The user's query vectors in the target shop's space from their per-site interest groups
/// (as [`site_groups`](crate::site_groups) returns them). With one interest the sites' unit
/// means are summed (each mapped by `to_target`, which adds its mapped vector to `out`) into
/// one unit profile, so every shop counts alike whatever its history length; with several,
/// each group is a query of its own. Groups that vanish are dropped.
pub fn target_queries(
    groups: &[(SiteId, Vec<f32>, f32)],
    interests: usize,
    dim: usize,
    to_target: impl Fn(&[f32], SiteId, &mut [f32]),
) -> Vec<Vec<f32>> {
    if interests <= 1 {
        if groups.is_empty() {
            return Vec::new();
        }
        let mut p = vec![0f32; dim];
        for (s, m, _) in groups {
            to_target(m, *s, &mut p);
        }
        return if normalize(&mut p) { vec![p] } else { Vec::new() };
    }
    groups
        .iter()
        .filter_map(|(s, m, _)| {
            let mut p = vec![0f32; dim];
            to_target(m, *s, &mut p);
            normalize(&mut p).then_some(p)
        })
        .collect()
}

/// Adds `m` unchanged: the `to_target` of a shared content space without a learned mapping.
pub fn identity(m: &[f32], _source: SiteId, out: &mut [f32]) {
    axpy(1.0, m, out);
}

/// Score of an item for the queries: its best cosine (`vector` is unit; `None` scores −1)
/// blended with its popularity prior, `(1 − pop_weight)·sim + pop_weight·prior`; the prior
/// alone without queries.
pub fn item_score(queries: &[Vec<f32>], vector: Option<&[f32]>, prior: f32, pop_weight: f32) -> f32 {
    if queries.is_empty() {
        return prior;
    }
    let sim = match vector {
        Some(v) => queries.iter().map(|q| dot(q, v)).fold(f32::NEG_INFINITY, f32::max),
        None => -1.0,
    };
    (1.0 - pop_weight) * sim + pop_weight * prior
}

/// The best `k` of scored candidates, best first, ties by position in `scored`; with `diversity > 0`
/// maximal marginal relevance (λ = 1 − diversity) re-ranks a pool of `max(10k, 50)`.
pub fn best_k(
    scored: &[(ItemId, f32)],
    k: usize,
    diversity: f32,
    similarity: impl Fn(ItemId, ItemId) -> f32,
) -> Vec<(ItemId, f32)> {
    if diversity > 0.0 {
        let order = warmstart_core::top_k_by(scored.len(), (k * 10).max(50), |p| scored[p].1);
        let pool: Vec<(ItemId, f32)> = order.into_iter().map(|p| scored[p]).collect();
        crate::mmr(&pool, k, 1.0 - diversity, similarity)
    } else {
        warmstart_core::top_k_by(scored.len(), k, |p| scored[p].1).into_iter().map(|p| scored[p]).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_interest_weighs_every_shop_alike_and_scores_blend_the_prior() {
        let groups = vec![(0, vec![1.0, 0.0], 5.0), (1, vec![0.0, 1.0], 1.0)];
        let q = target_queries(&groups, 1, 2, identity);
        assert_eq!(q.len(), 1);
        assert!((q[0][0] - q[0][1]).abs() < 1e-6, "{q:?}");
        assert_eq!(target_queries(&groups, 2, 2, identity).len(), 2);
        assert!(target_queries(&[], 1, 2, identity).is_empty());
        let s = item_score(&q, Some(&[1.0, 0.0]), 0.5, 0.2);
        assert!((s - (0.8 * std::f32::consts::FRAC_1_SQRT_2 + 0.1)).abs() < 1e-6);
        assert_eq!(item_score(&q, None, 0.5, 0.0), -1.0);
        assert_eq!(item_score(&[], None, 0.5, 0.0), 0.5);
    }

    #[test]
    fn best_k_orders_by_score_then_position() {
        let scored = [(7, 0.5), (3, 0.9), (5, 0.5), (1, 0.1)];
        let top = best_k(&scored, 3, 0.0, |_, _| 0.0);
        assert_eq!(top.iter().map(|e| e.0).collect::<Vec<_>>(), vec![3, 7, 5]);
    }
}
