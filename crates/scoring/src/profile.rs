//! User profiles in a content space: the weighted mean of a user's history per site, or
//! several interests per site (spherical k-means over the history's vectors, seeded
//! deterministically), so one user's shoes and laptops do not blur into a profile that
//! matches neither.

use std::collections::BTreeMap;

use warmstart_core::{ItemId, SiteId};

use crate::vector::{axpy, dot, normalize};

/// Where a profile reads item vectors and sites from.
pub trait ItemSpace {
    /// Vector dimension.
    fn dim(&self) -> usize;
    /// The item's vector, if it has one.
    fn vector(&self, item: ItemId) -> Option<&[f32]>;
    /// The item's site.
    fn site(&self, item: ItemId) -> Option<SiteId>;
}

/// An [`ItemSpace`] over row-major vectors (`present[i]` tells which rows exist) and a
/// site per item.
#[derive(Debug, Clone, Copy)]
pub struct SliceSpace<'a> {
    /// Dimension.
    pub dim: usize,
    /// Row-major vectors, `site_of.len() × dim`.
    pub data: &'a [f32],
    /// Which rows are real.
    pub present: &'a [bool],
    /// Site of every item.
    pub site_of: &'a [SiteId],
}

impl ItemSpace for SliceSpace<'_> {
    fn dim(&self) -> usize {
        self.dim
    }
    fn vector(&self, item: ItemId) -> Option<&[f32]> {
        let i = item as usize;
        if self.present.get(i).copied().unwrap_or(false) {
            self.data.get(i * self.dim..(i + 1) * self.dim)
        } else {
            None
        }
    }
    fn site(&self, item: ItemId) -> Option<SiteId> {
        self.site_of.get(item as usize).copied()
    }
}

/// The user's history grouped by site, each site's items summarised by up to `k` unit
/// interest vectors with their total weight. Items without a vector or with a weight ≤ 0
/// are ignored; sites come in id order.
pub fn site_groups(space: &dyn ItemSpace, history: &[(ItemId, f32)], k: usize) -> Vec<(SiteId, Vec<f32>, f32)> {
    let mut by_site: BTreeMap<SiteId, Vec<(ItemId, f32)>> = BTreeMap::new();
    for &(i, w) in history {
        if w > 0.0 && w.is_finite() && space.vector(i).is_some() {
            if let Some(s) = space.site(i) {
                by_site.entry(s).or_default().push((i, w));
            }
        }
    }
    let mut out = Vec::new();
    for (s, items) in by_site {
        for (mut c, w) in interest_centroids(space, &items, k) {
            if normalize(&mut c) {
                out.push((s, c, w));
            }
        }
    }
    out
}

/// Up to `k` weighted sums of the items' vectors (not normalised), one per interest, with
/// their weights; `k = 1` is the weighted sum of all of them. Items must have vectors.
pub fn interest_centroids(space: &dyn ItemSpace, items: &[(ItemId, f32)], k: usize) -> Vec<(Vec<f32>, f32)> {
    let d = space.dim();
    let k = k.min(items.len()).max(1);
    let row = |i: ItemId| space.vector(i).unwrap_or(&[]);
    let sum_of = |members: &mut dyn Iterator<Item = &(ItemId, f32)>| -> (Vec<f32>, f32) {
        let mut v = vec![0f32; d];
        let mut w = 0.0;
        for &(i, x) in members {
            axpy(x, row(i), &mut v);
            w += x;
        }
        (v, w)
    };
    if k == 1 {
        return vec![sum_of(&mut items.iter())];
    }
    // farthest-point seeding from the heaviest item (ties: lower id), then spherical k-means
    let mut centres: Vec<Vec<f32>> = Vec::with_capacity(k);
    let first = items.iter().max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0))).map(|e| e.0).unwrap_or(0);
    centres.push(row(first).to_vec());
    while centres.len() < k {
        let far = items
            .iter()
            .map(|&(i, _)| (i, centres.iter().map(|c| dot(c, row(i))).fold(f32::NEG_INFINITY, f32::max)))
            .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)))
            .map(|e| e.0)
            .unwrap_or(first);
        centres.push(row(far).to_vec());
    }
    let mut assign = vec![0usize; items.len()];
    for _ in 0..10 {
        let mut changed = false;
        for (n, &(i, _)) in items.iter().enumerate() {
            let best = (0..centres.len())
                .max_by(|&a, &b| dot(&centres[a], row(i)).total_cmp(&dot(&centres[b], row(i))).then(b.cmp(&a)))
                .unwrap_or(0);
            changed |= best != assign[n];
            assign[n] = best;
        }
        for (c, centre) in centres.iter_mut().enumerate() {
            let (mut v, _) = sum_of(&mut items.iter().zip(&assign).filter(|(_, &a)| a == c).map(|(e, _)| e));
            if normalize(&mut v) {
                *centre = v;
            }
        }
        if !changed {
            break;
        }
    }
    (0..centres.len())
        .map(|c| sum_of(&mut items.iter().zip(&assign).filter(|(_, &a)| a == c).map(|(e, _)| e)))
        .filter(|(_, w)| *w > 0.0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_interests_separate_two_tastes() {
        #[rustfmt::skip]
        let data = [1.0, 0.0,  0.99, 0.14,  0.0, 1.0,  0.14, 0.99];
        let present = [true; 4];
        let site_of = [0, 0, 0, 0];
        let space = SliceSpace { dim: 2, data: &data, present: &present, site_of: &site_of };
        let hist = [(0, 1.0), (1, 1.0), (2, 1.0), (3, 1.0)];
        let one = site_groups(&space, &hist, 1);
        let two = site_groups(&space, &hist, 2);
        assert_eq!(one.len(), 1);
        assert_eq!(two.len(), 2);
        assert!(two.iter().any(|g| g.1[0] > 0.95) && two.iter().any(|g| g.1[1] > 0.95), "{two:?}");
        // items without vectors or with bad weights are ignored
        assert!(site_groups(&space, &[(9, 1.0), (0, f32::NAN)], 1).is_empty());
    }
}
