//! The blend's optional second stage for cold-start requests: the members' top items are
//! reranked by a LambdaMART ranker over per-item features (each member's normalised score and
//! log rank, the history's length, how many members put the item forward), learnt on the
//! same cross-fitted validation cases as the weights. One function builds the features for
//! fitting and for serving.

use warmstart_core::top_k;

use crate::lambdamart::LambdaMart;

/// Items each member puts forward: the candidates of a validation case (scanned first when
/// counting the items that outrank a relevant one) and of the ranker.
pub(super) const CANDIDATES_PER_MEMBER: usize = 100;
/// Ranks counted exactly; deeper items share this rank.
const RANK_DEPTH: usize = 1000;

/// Features per candidate for `members` members.
pub(super) fn n_features(members: usize) -> usize {
    2 * members + 2
}

/// One request's candidates (positions in the shop, ascending) and their features, row-major.
pub(super) struct Candidates {
    pub items: Vec<u32>,
    pub features: Vec<f32>,
}

/// The union of every member's top [`CANDIDATES_PER_MEMBER`] items and their features, from
/// the members' normalised scores of one shop and the history's length.
pub(super) fn candidates(per_member: &[Vec<f32>], history_len: usize) -> Candidates {
    let n = per_member.first().map_or(0, Vec::len);
    let mut ranks: Vec<Vec<(u32, u32)>> = Vec::with_capacity(per_member.len());
    let mut is_candidate = vec![false; n];
    for s in per_member {
        let top = top_k(s, RANK_DEPTH.min(n));
        for &i in top.iter().take(CANDIDATES_PER_MEMBER) {
            is_candidate[i] = true;
        }
        let mut r: Vec<(u32, u32)> = top.iter().enumerate().map(|(p, &i)| (i as u32, p as u32)).collect();
        r.sort_unstable();
        ranks.push(r);
    }
    let items: Vec<u32> = (0..n as u32).filter(|&i| is_candidate[i as usize]).collect();
    let mut features = Vec::with_capacity(items.len() * n_features(per_member.len()));
    let history = (1.0 + history_len as f32).ln();
    for &i in &items {
        let mut forward = 0u32;
        for (s, r) in per_member.iter().zip(&ranks) {
            let rank = r.binary_search_by_key(&i, |x| x.0).map_or(RANK_DEPTH as u32, |k| r[k].1);
            forward += u32::from((rank as usize) < CANDIDATES_PER_MEMBER);
            features.push(s[i as usize]);
            features.push((1.0 + rank as f32).ln());
        }
        features.push(history);
        features.push(forward as f32);
    }
    Candidates { items, features }
}

/// The blended score of a candidate from its features (each member's normalised score is
/// feature `2k`): the same float operations as the blend's weighted sum over the shop.
pub(super) fn blended(w: &[f32], row: &[f32]) -> f32 {
    let mut b = 0f32;
    for (k, wk) in w.iter().enumerate() {
        if *wk > 0.0 {
            b += wk * row[2 * k];
        }
    }
    b
}

/// Reorders `out` (the linear blend's scores of the shop) so that the candidates come first,
/// ranked by their blended score plus the ranker's correction; the other items keep their
/// blended order below them.
pub(super) fn rerank(ranker: &LambdaMart, per_member: &[Vec<f32>], history_len: usize, out: &mut [f32]) {
    let c = candidates(per_member, history_len);
    if c.items.is_empty() {
        return;
    }
    let f = n_features(per_member.len());
    let predicted: Vec<f32> =
        c.features.chunks_exact(f).zip(&c.items).map(|(row, &i)| out[i as usize] + ranker.predict(row)).collect();
    let top = out.iter().copied().filter(|x| x.is_finite()).fold(f32::NEG_INFINITY, f32::max).max(0.0);
    let low = predicted.iter().copied().fold(f32::INFINITY, f32::min);
    for (&i, p) in c.items.iter().zip(predicted) {
        out[i as usize] = top + 1.0 + (p - low);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_are_every_members_top_items_with_their_ranks() {
        // member 0 prefers high positions, member 1 low ones, over 300 items
        let a: Vec<f32> = (0..300).map(|i| i as f32).collect();
        let b: Vec<f32> = (0..300).map(|i| -(i as f32)).collect();
        let c = candidates(&[a, b], 4);
        assert_eq!(c.items.len(), 200);
        assert_eq!(c.items[0], 0);
        assert_eq!(*c.items.last().unwrap(), 299);
        let f = n_features(2);
        let first = &c.features[..f];
        // item 0: member 0's rank 299, member 1's rank 0, history ln 5, one member forward
        assert_eq!(first, &[0.0, 300f32.ln(), 0.0, 1f32.ln(), 5f32.ln(), 1.0]);
        assert!(c.features.iter().all(|x| x.is_finite()));
    }
}
