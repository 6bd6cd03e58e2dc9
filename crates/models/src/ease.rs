//! EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019) on the most
//! interacted items: with `P = (XᵀX + λI)⁻¹` over those items, the item–item weights are
//! `B = −P · diag(P)⁻¹` with a zero diagonal, and an item's score is the sum of the history
//! items' rows of `B`. It is fitted into item-kNN's form — each item's highest positive
//! weights, per site — so that scoring, explanations, persistence and the neighbour lists the
//! browser extension downloads are item-kNN's own. Items outside the solved set have no
//! weights (a blend's other members rank them).

use rayon::prelude::*;
use warmstart_core::{CsrMatrix, ItemId};

use crate::linalg::spd_inverse;
use crate::{Error, Result};

/// Item–item weights of EASE: for every item, its positive weights to other items, passed
/// through `keep` (which trims them per site); items outside the `max_items` most interacted
/// have none. `x` is the binary user × item matrix.
pub(crate) fn weights(
    x: &CsrMatrix,
    lambda: f32,
    max_items: usize,
    keep: impl Fn(Vec<(ItemId, f32)>) -> Vec<(ItemId, f32)> + Sync,
) -> Result<Vec<Vec<(ItemId, f32)>>> {
    let n_items = x.n_cols();
    let mut counts = vec![0u32; n_items];
    for &i in x.indices() {
        counts[i as usize] += 1;
    }
    let mut solved: Vec<u32> = (0..n_items as u32).filter(|&i| counts[i as usize] > 0).collect();
    solved.sort_by_key(|&i| (std::cmp::Reverse(counts[i as usize]), i));
    solved.truncate(max_items);
    let n = solved.len();
    let mut position = vec![u32::MAX; n_items];
    for (p, &i) in solved.iter().enumerate() {
        position[i as usize] = p as u32;
    }
    // the Gram matrix of the solved items, plus λ on the diagonal
    let mut g = vec![0f64; n * n];
    let mut at = Vec::new();
    for u in 0..x.n_rows() {
        at.clear();
        at.extend(x.row_indices(u).iter().map(|&i| position[i as usize]).filter(|&p| p != u32::MAX));
        for &a in &at {
            let row = &mut g[a as usize * n..(a as usize + 1) * n];
            for &b in &at {
                row[b as usize] += 1.0;
            }
        }
    }
    for p in 0..n {
        g[p * n + p] += lambda as f64;
    }
    spd_inverse(&mut g, n).ok_or_else(|| Error::BadData("EASE: XᵀX + λI is not positive definite".into()))?;
    let p = g;
    let lists: Vec<Vec<(ItemId, f32)>> = (0..n)
        .into_par_iter()
        .map(|a| {
            let row = &p[a * n..(a + 1) * n];
            let cand = (0..n)
                .filter(|&b| b != a)
                .map(|b| (solved[b], (-row[b] / p[b * n + b]) as f32))
                .filter(|&(_, w)| w > 0.0 && w.is_finite())
                .collect();
            keep(cand)
        })
        .collect();
    let mut out = vec![Vec::new(); n_items];
    for (a, list) in lists.into_iter().enumerate() {
        out[solved[a] as usize] = list;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_follow_the_closed_form() {
        // three items: 0 and 1 always together, 2 alone or with 0
        let t = [(0, 0, 1.0), (0, 1, 1.0), (1, 0, 1.0), (1, 1, 1.0), (2, 2, 1.0), (3, 0, 1.0), (3, 2, 1.0)];
        let x = CsrMatrix::from_triplets(4, 4, &t);
        let w = weights(&x, 1.0, 10, |mut c| {
            c.sort_unstable_by_key(|e| e.0);
            c
        })
        .unwrap();
        // G + I = [[4,2,1],[2,3,0],[1,0,3]]; P = inverse; B[a][b] = -P[a][b] / P[b][b]
        let g = [[4.0, 2.0, 1.0], [2.0, 3.0, 0.0], [1.0, 0.0, 3.0]];
        let det: f64 = 4.0 * 9.0 - 2.0 * 6.0 + 1.0 * (-3.0);
        let adj = |a: usize, b: usize| -> f64 {
            let (r, c): (Vec<usize>, Vec<usize>) =
                ((0..3).filter(|&i| i != b).collect(), (0..3).filter(|&j| j != a).collect());
            let m = g[r[0]][c[0]] * g[r[1]][c[1]] - g[r[0]][c[1]] * g[r[1]][c[0]];
            if (a + b).is_multiple_of(2) {
                m
            } else {
                -m
            }
        };
        let p = |a: usize, b: usize| adj(a, b) / det;
        let b01 = (-p(0, 1) / p(1, 1)) as f32;
        assert!(b01 > 0.0);
        let got = w[0].iter().find(|e| e.0 == 1).unwrap().1;
        assert!((got - b01).abs() < 1e-6, "{got} vs {b01}");
        // 1 and 2 never meet: their weight is negative, so it is not kept
        assert!(w[1].iter().all(|e| e.0 != 2));
        assert!(w[3].is_empty(), "an item no one touched has no weights");
        // only the most interacted items are solved
        let top1 = weights(&x, 1.0, 1, |c| c).unwrap();
        assert_eq!(top1.iter().filter(|l| !l.is_empty()).count(), 0, "one solved item has no partner");
    }
}
