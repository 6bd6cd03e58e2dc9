//! Maximal marginal relevance: re-ranks candidates so that each pick trades its score
//! against its similarity to the items already picked.

use warmstart_core::ItemId;

/// The best `k` of `candidates` (item, score) by MMR with weight `lambda` on the score and
/// `1 − lambda` on redundancy (`similarity` of two items; `lambda ≥ 1` keeps the score
/// order). Candidates with a non-finite score are dropped. Returns (item, score) in pick order.
pub fn mmr(
    candidates: &[(ItemId, f32)],
    k: usize,
    lambda: f32,
    similarity: impl Fn(ItemId, ItemId) -> f32,
) -> Vec<(ItemId, f32)> {
    let pool: Vec<(ItemId, f32)> = candidates.iter().copied().filter(|c| c.1.is_finite()).collect();
    if lambda >= 1.0 {
        let mut sorted = pool;
        sorted.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        sorted.truncate(k);
        return sorted;
    }
    let mut chosen: Vec<usize> = Vec::with_capacity(k.min(pool.len()));
    let mut taken = vec![false; pool.len()];
    let mut max_sim = vec![f32::NEG_INFINITY; pool.len()];
    while chosen.len() < k.min(pool.len()) {
        let mut best: Option<(usize, f32)> = None;
        for (p, c) in pool.iter().enumerate() {
            if taken[p] {
                continue;
            }
            let redundancy = if chosen.is_empty() { 0.0 } else { max_sim[p] };
            let v = lambda * c.1 - (1.0 - lambda) * redundancy;
            if best.is_none_or(|b| v > b.1 || (v == b.1 && c.0 < pool[b.0].0)) {
                best = Some((p, v));
            }
        }
        let Some((bp, _)) = best else { break };
        taken[bp] = true;
        chosen.push(bp);
        for (p, c) in pool.iter().enumerate() {
            if !taken[p] {
                max_sim[p] = max_sim[p].max(similarity(pool[bp].0, c.0));
            }
        }
    }
    chosen.into_iter().map(|p| pool[p]).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn diversity_picks_from_the_other_group() {
        // items 0 and 1 are near duplicates; 2 is different and scores a little lower
        let cands = [(0, 1.0), (1, 0.99), (2, 0.9)];
        let sim = |a: u32, b: u32| if (a < 2) == (b < 2) { 1.0 } else { 0.0 };
        let plain = super::mmr(&cands, 2, 1.0, sim);
        assert_eq!(plain.iter().map(|c| c.0).collect::<Vec<_>>(), vec![0, 1]);
        let diverse = super::mmr(&cands, 2, 0.5, sim);
        assert_eq!(diverse.iter().map(|c| c.0).collect::<Vec<_>>(), vec![0, 2]);
    }
}
