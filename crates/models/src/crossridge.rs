//! Cross-shop ridge regression: for each target shop, a linear map from a shopper's items on
//! the other shops to scores of the target shop's items, fitted in closed form on the
//! training users who bought in that shop:
//! `W = (XₛᵀXₛ + λI)⁻¹ XₛᵀXₜ`, with `Xₛ` the users' items outside the shop (the `items` most
//! interacted of them) and `Xₜ` their items in it.
//!
//! It is the estimator the cold-start question asks for: the target shop's items predicted
//! from the other shops alone. EASE's item–item weights (`ease`) regress every item on all
//! the others, the target shop's included, so for a shopper new to the shop they read that
//! shop's zeros as "did not buy" rather than "unknown". `W` is never formed: the model keeps
//! `P = (XₛᵀXₛ + λI)⁻¹` and the sparse co-occurrences `C = XₛᵀXₜ`, and a request costs one
//! weighted sum of `P`'s rows and one pass over `C`.

use std::ops::Range;

use rayon::prelude::*;
use warmstart_core::{CsrMatrix, ItemId};

use crate::artifact::{ArtifactReader, ArtifactWriter};
use crate::linalg::spd_inverse;
use crate::{check, Error, Fit, History, Recommender, Result, TrainData};

/// Kind of a saved cross-shop ridge regression.
pub(crate) const KIND: &str = "crossridge";

/// Hyper-parameters of [`CrossRidge`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CrossRidgeConfig {
    lambda: f32,
    items: usize,
}

/// Builder of [`CrossRidgeConfig`].
#[derive(Debug, Clone)]
pub struct CrossRidgeBuilder(CrossRidgeConfig);

impl CrossRidgeConfig {
    /// Starts a builder: λ 200, the 2,000 most interacted other-shop items per target shop
    /// (`warmstart tune` on the Amazon validation users: the best mean of both directions at
    /// 2,000 items; 4,000 items rank better and cost 15× the fit).
    pub fn builder() -> CrossRidgeBuilder {
        CrossRidgeBuilder(CrossRidgeConfig { lambda: 200.0, items: 2000 })
    }

    /// The name `by_name` reads back.
    pub fn model_name(&self) -> String {
        let d = CrossRidgeConfig::builder().0;
        let mut name = "crossridge".to_string();
        if self.lambda != d.lambda {
            name += &format!(":lambda={}", self.lambda);
        }
        if self.items != d.items {
            name += &format!(":items={}", self.items);
        }
        name
    }
}

impl CrossRidgeBuilder {
    /// L2 penalty λ.
    pub fn lambda(mut self, v: f32) -> Self {
        self.0.lambda = v;
        self
    }
    /// Other-shop items solved for per target shop (a dense inverse of this size).
    pub fn items(mut self, n: usize) -> Self {
        self.0.items = n;
        self
    }
    /// Validates.
    pub fn build(self) -> Result<CrossRidgeConfig> {
        let c = self.0;
        check("lambda", c.lambda > 0.0 && c.lambda.is_finite(), c.lambda, "must be finite and > 0")?;
        check("items", (1..=10_000).contains(&c.items), c.items, "must be 1 to 10000 (a dense inverse)")?;
        Ok(c)
    }
}

/// One target shop's regression.
#[derive(Debug, Clone)]
struct ShopRegression {
    /// The shop's items.
    range: Range<ItemId>,
    /// Solved other-shop items, and each item's position among them (`u32::MAX`: none).
    solved: Vec<ItemId>,
    position: Vec<u32>,
    /// `P`, `n × n` row-major.
    inverse: Vec<f32>,
    /// `C`: solved item × the shop's items (column `j` is item `range.start + j`).
    cooccurrence: CsrMatrix,
}

/// A fitted cross-shop ridge regression: one per target shop.
#[derive(Debug, Clone)]
pub struct CrossRidge {
    config: CrossRidgeConfig,
    n_items: usize,
    shops: Vec<ShopRegression>,
}

impl ShopRegression {
    fn fit(x: &CsrMatrix, range: Range<ItemId>, lambda: f32, max_items: usize) -> Result<ShopRegression> {
        let n_items = x.n_cols();
        let inside = |i: u32| range.contains(&i);
        // users who bought in the shop and elsewhere
        let users: Vec<usize> = (0..x.n_rows())
            .filter(|&u| {
                let row = x.row_indices(u);
                row.iter().any(|&i| inside(i)) && row.iter().any(|&i| !inside(i))
            })
            .collect();
        let mut counts = vec![0u32; n_items];
        for &u in &users {
            for &i in x.row_indices(u) {
                if !inside(i) {
                    counts[i as usize] += 1;
                }
            }
        }
        let mut solved: Vec<ItemId> = (0..n_items as u32).filter(|&i| counts[i as usize] > 0).collect();
        solved.sort_by_key(|&i| (std::cmp::Reverse(counts[i as usize]), i));
        solved.truncate(max_items);
        let n = solved.len();
        let mut position = vec![u32::MAX; n_items];
        for (p, &i) in solved.iter().enumerate() {
            position[i as usize] = p as u32;
        }
        // XₛᵀXₛ + λI over the solved items, and XₛᵀXₜ as triplets
        let mut g = vec![0f64; n * n];
        let mut triplets: Vec<(u32, u32, f32)> = Vec::new();
        let mut at: Vec<(u32, f32)> = Vec::new();
        for &u in &users {
            at.clear();
            let (cols, vals) = (x.row_indices(u), x.row_values(u));
            at.extend(cols.iter().zip(vals).filter_map(|(&i, &v)| {
                let p = position[i as usize];
                (p != u32::MAX).then_some((p, v))
            }));
            for &(a, va) in &at {
                let row = &mut g[a as usize * n..(a as usize + 1) * n];
                for &(b, vb) in &at {
                    row[b as usize] += (va * vb) as f64;
                }
                for (&j, &vj) in cols.iter().zip(vals) {
                    if inside(j) {
                        triplets.push((a, j - range.start, va * vj));
                    }
                }
            }
        }
        for p in 0..n {
            g[p * n + p] += lambda as f64;
        }
        if n > 0 {
            spd_inverse(&mut g, n)
                .ok_or_else(|| Error::BadData("cross-shop ridge: XᵀX + λI is not positive definite".into()))?;
        }
        let width = (range.end - range.start) as usize;
        Ok(ShopRegression {
            cooccurrence: CsrMatrix::from_triplets(n, width, &triplets),
            inverse: g.into_iter().map(|v| v as f32).collect(),
            range,
            solved,
            position,
        })
    }

    /// Adds the shop's scores for `history` into `out`, whose item 0 is `start`.
    fn score(&self, history: &History, start: ItemId, out: &mut [f32]) {
        let n = self.solved.len();
        let mut v = vec![0f32; n];
        let mut any = false;
        for &(i, w) in history {
            if let Some(&p) = self.position.get(i as usize).filter(|&&p| p != u32::MAX) {
                let row = &self.inverse[p as usize * n..(p as usize + 1) * n];
                for (x, r) in v.iter_mut().zip(row) {
                    *x += w * r;
                }
                any = true;
            }
        }
        if !any {
            return;
        }
        for (b, &vb) in v.iter().enumerate() {
            for (&j, &c) in self.cooccurrence.row_indices(b).iter().zip(self.cooccurrence.row_values(b)) {
                let item = self.range.start + j;
                if item >= start && ((item - start) as usize) < out.len() {
                    out[(item - start) as usize] += vb * c;
                }
            }
        }
    }
}

impl CrossRidgeConfig {
    /// Fits one regression per shop of the dataset.
    pub fn fit_crossridge(&self, data: &TrainData) -> Result<CrossRidge> {
        let x = data.matrix;
        if x.nnz() == 0 {
            return Err(Error::BadData("cross-shop ridge needs training interactions".into()));
        }
        let ranges: Vec<Range<ItemId>> = data.dataset.sites.iter().map(|s| s.items.clone()).collect();
        if ranges.len() < 2 {
            return Err(Error::BadData("cross-shop ridge needs two or more shops".into()));
        }
        let shops = ranges
            .into_par_iter()
            .map(|r| ShopRegression::fit(x, r, self.lambda, self.items))
            .collect::<Result<Vec<_>>>()?;
        Ok(CrossRidge { config: self.clone(), n_items: x.n_cols(), shops })
    }
}

impl Fit for CrossRidgeConfig {
    fn name(&self) -> String {
        self.model_name()
    }
    fn fit(&self, data: &TrainData) -> Result<Box<dyn Recommender>> {
        Ok(Box::new(self.fit_crossridge(data)?))
    }
}

impl Recommender for CrossRidge {
    fn name(&self) -> String {
        self.config.model_name()
    }

    fn n_items(&self) -> usize {
        self.n_items
    }

    fn score_items(&self, history: &History, items: Range<ItemId>, out: &mut [f32]) -> Result<()> {
        out.fill(0.0);
        for shop in &self.shops {
            if shop.range.start < items.end && items.start < shop.range.end {
                shop.score(history, items.start, out);
            }
        }
        Ok(())
    }

    fn save(&self, dir: &std::path::Path) -> Result<()> {
        let mut w = ArtifactWriter::new(KIND, &self.config)?;
        let mut shape = vec![self.n_items as u32, self.shops.len() as u32];
        for (k, s) in self.shops.iter().enumerate() {
            shape.extend([s.range.start, s.range.end]);
            let c = &s.cooccurrence;
            let indptr: Vec<u32> = c.indptr().iter().map(|&p| p as u32).collect();
            w = w
                .u32(&format!("solved-{k}"), &[s.solved.len()], &s.solved)
                .f32(&format!("inverse-{k}"), &[s.inverse.len()], &s.inverse)
                .u32(&format!("indptr-{k}"), &[indptr.len()], &indptr)
                .u32(&format!("indices-{k}"), &[c.nnz()], c.indices())
                .f32(&format!("values-{k}"), &[c.nnz()], c.data());
        }
        w.u32("shape", &[shape.len()], &shape).write(dir)
    }
}

impl CrossRidge {
    pub(crate) fn load(r: &ArtifactReader) -> Result<CrossRidge> {
        let config: CrossRidgeConfig = r.config()?;
        let (_, shape) = r.u32("shape")?;
        let bad = |what: &str| r.error(format!("cross-shop ridge: {what}"));
        if shape.len() < 2 || shape.len() != 2 + 2 * shape[1] as usize {
            return Err(bad("`shape` must be [items, shops, start, end, …]"));
        }
        let n_items = shape[0] as usize;
        let mut shops = Vec::new();
        for k in 0..shape[1] as usize {
            let range = shape[2 + 2 * k]..shape[3 + 2 * k];
            let (_, solved) = r.u32(&format!("solved-{k}"))?;
            let (_, inverse) = r.f32(&format!("inverse-{k}"))?;
            let (_, indptr) = r.u32(&format!("indptr-{k}"))?;
            let (_, indices) = r.u32(&format!("indices-{k}"))?;
            let (_, values) = r.f32(&format!("values-{k}"))?;
            let n = solved.len();
            let width = range.end.saturating_sub(range.start);
            let ok = range.start <= range.end
                && range.end as usize <= n_items
                && solved.iter().all(|&i| (i as usize) < n_items && !range.contains(&i))
                && inverse.len() == n * n
                && inverse.iter().all(|v| v.is_finite())
                && indptr.len() == n + 1
                && indptr.first() == Some(&0)
                && indptr.windows(2).all(|w| w[0] <= w[1])
                && indptr.last().map(|&x| x as usize) == Some(indices.len())
                && indices.len() == values.len()
                && indices.iter().all(|&j| j < width)
                && values.iter().all(|v| v.is_finite());
            if !ok {
                return Err(bad(&format!("shop {k}'s arrays are malformed")));
            }
            let mut position = vec![u32::MAX; n_items];
            for (p, &i) in solved.iter().enumerate() {
                position[i as usize] = p as u32;
            }
            let mut triplets = Vec::with_capacity(indices.len());
            for b in 0..n {
                for p in indptr[b] as usize..indptr[b + 1] as usize {
                    triplets.push((b as u32, indices[p], values[p]));
                }
            }
            let cooccurrence = CsrMatrix::from_triplets(n, width as usize, &triplets);
            shops.push(ShopRegression { range, solved, position, inverse, cooccurrence });
        }
        Ok(CrossRidge { config, n_items, shops })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_closed_form_on_a_tiny_case() {
        // shop a: items 0, 1; shop b: items 2, 3. Users: {0, 2}, {0, 2}, {1, 3}, {0, 1, 3}
        let t = [
            (0, 0, 1.0),
            (0, 2, 1.0),
            (1, 0, 1.0),
            (1, 2, 1.0),
            (2, 1, 1.0),
            (2, 3, 1.0),
            (3, 0, 1.0),
            (3, 1, 1.0),
            (3, 3, 1.0),
        ];
        let x = CsrMatrix::from_triplets(4, 4, &t);
        let b = ShopRegression::fit(&x, 2..4, 1.0, 10).unwrap();
        // Xₛ over items 0, 1 (all four users bought in b): XₛᵀXₛ + I = [[4, 1], [1, 3]]
        // XₛᵀXₜ = [[2, 1], [0, 2]]; W = (XₛᵀXₛ + I)⁻¹ XₛᵀXₜ
        let inv = [[3.0 / 11.0, -1.0 / 11.0], [-1.0 / 11.0, 4.0 / 11.0]];
        let c = [[2.0, 1.0], [0.0, 2.0]];
        let w = |a: usize, j: usize| inv[a][0] * c[0][j] + inv[a][1] * c[1][j];
        // solved order: item 0 (3 users) then item 1 (2 users)
        assert_eq!(b.solved, vec![0, 1]);
        let mut out = vec![0f32; 2];
        b.score(&[(0, 1.0)], 2, &mut out);
        assert!((out[0] as f64 - w(0, 0)).abs() < 1e-6 && (out[1] as f64 - w(0, 1)).abs() < 1e-6, "{out:?}");
        let mut out = vec![0f32; 2];
        b.score(&[(0, 1.0), (1, 1.0)], 2, &mut out);
        assert!((out[1] as f64 - (w(0, 1) + w(1, 1))).abs() < 1e-6);
        // a history without solved items scores nothing; a sub-range scores its own items
        let mut out = vec![0f32; 2];
        b.score(&[(2, 1.0)], 2, &mut out);
        assert_eq!(out, [0.0, 0.0]);
        let mut one = vec![0f32; 1];
        b.score(&[(0, 1.0)], 3, &mut one);
        assert!((one[0] as f64 - w(0, 1)).abs() < 1e-6);
    }
}
