//! Item-kNN: cosine similarity between items' user sets, with shrinkage, keeping the top-N
//! neighbours of every item *on each site*, so that users active on two sites link the
//! sites' catalogs even when an item's nearest neighbours are all on its own site.
//!
//! RP3beta (Paudel et al., "Updatable, accurate, diverse, and scalable recommendations for
//! interactive applications", 2016) is the same model with another similarity: the
//! probability of a three-step random walk item → user → item, each step's probability
//! raised to α, divided by the target item's popularity to the power β.

use std::ops::Range;

use rayon::prelude::*;
use warmstart_core::{CsrMatrix, ItemId};

use crate::artifact::{pack_lists, unpack_lists, ArtifactReader, ArtifactWriter};
use crate::{check, Explanation, Fit, History, Recommender, Result, TrainData};

/// Kind of a saved item-kNN model.
pub(crate) const KIND: &str = "itemknn";

/// How two items' similarity is computed.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Similarity {
    /// Cosine of the items' user sets, shrunk.
    #[default]
    Cosine,
    /// RP3beta: Σ_u (1/deg i)^α (1/deg u)^α, divided by deg(j)^β.
    Rp3beta {
        /// Exponent of the walk's step probabilities.
        alpha: f32,
        /// Popularity penalty of the target item.
        beta: f32,
    },
    /// EASE's closed-form item–item weights over the most interacted items (`crate::ease`).
    Ease {
        /// L2 penalty λ.
        lambda: f32,
        /// How many of the most interacted items are solved for (a dense inverse of this size).
        items: u32,
    },
}

/// Hyper-parameters of [`ItemKnn`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ItemKnnConfig {
    /// Neighbours kept per item and site.
    pub neighbours: usize,
    /// Shrinkage added to the cosine denominator (damps similarities from few users).
    pub shrink: f32,
    /// The similarity (models saved before it existed are cosine).
    #[serde(default)]
    pub similarity: Similarity,
}

/// Builder of [`ItemKnnConfig`].
#[derive(Debug, Clone)]
pub struct ItemKnnBuilder {
    neighbours: usize,
    shrink: f32,
    similarity: Similarity,
}

impl ItemKnnConfig {
    /// Starts a builder with defaults (400 neighbours per site, shrink 50; chosen by
    /// `warmstart tune` on the Amazon Art/Office validation users).
    pub fn builder() -> ItemKnnBuilder {
        ItemKnnBuilder { neighbours: 400, shrink: 50.0, similarity: Similarity::Cosine }
    }
}

impl ItemKnnBuilder {
    /// Neighbours per item and site.
    pub fn neighbours(mut self, n: usize) -> Self {
        self.neighbours = n;
        self
    }
    /// Shrinkage.
    pub fn shrink(mut self, s: f32) -> Self {
        self.shrink = s;
        self
    }
    /// RP3beta similarity with walk exponent `alpha` and popularity penalty `beta`.
    pub fn rp3beta(mut self, alpha: f32, beta: f32) -> Self {
        self.similarity = Similarity::Rp3beta { alpha, beta };
        self
    }
    /// EASE weights (penalty `lambda`, over the `items` most interacted items).
    pub fn ease(mut self, lambda: f32, items: u32) -> Self {
        self.similarity = Similarity::Ease { lambda, items };
        self
    }
    /// Validates.
    pub fn build(self) -> Result<ItemKnnConfig> {
        check_neighbours_and_shrink(self.neighbours, self.shrink)?;
        if let Similarity::Rp3beta { alpha, beta } = self.similarity {
            check("alpha", alpha > 0.0 && alpha <= 4.0, alpha, "must be in (0, 4]")?;
            check("beta", (0.0..=2.0).contains(&beta), beta, "must be in [0, 2]")?;
        }
        if let Similarity::Ease { lambda, items } = self.similarity {
            check("lambda", lambda > 0.0 && lambda.is_finite(), lambda, "must be finite and > 0")?;
            check("items", (1..=20_000).contains(&items), items, "must be in 1..=20000 (a dense inverse)")?;
        }
        Ok(ItemKnnConfig { neighbours: self.neighbours, shrink: self.shrink, similarity: self.similarity })
    }
}

/// Item-based nearest neighbours.
#[derive(Debug, Clone)]
pub struct ItemKnn {
    config: ItemKnnConfig,
    /// Per item: (neighbour, similarity), sorted by neighbour id.
    neighbours: Vec<Vec<(ItemId, f32)>>,
}

impl ItemKnn {
    pub(crate) fn load(r: &ArtifactReader) -> Result<ItemKnn> {
        let (_, offsets) = r.u32("offsets")?;
        let (_, ids) = r.u32("ids")?;
        let (_, sims) = r.f32("similarities")?;
        let neighbours = unpack_lists(r, &offsets, &ids, &sims)?;
        if neighbours.iter().flatten().any(|e| e.0 as usize >= neighbours.len()) {
            return Err(r.error("a neighbour id is out of range"));
        }
        Ok(ItemKnn { config: r.config()?, neighbours })
    }

    /// Similarity of two items (0 when not neighbours).
    pub fn similarity(&self, a: ItemId, b: ItemId) -> f32 {
        let Some(n) = self.neighbours.get(a as usize) else { return 0.0 };
        n.binary_search_by_key(&b, |e| e.0).map(|p| n[p].1).unwrap_or(0.0)
    }
}

impl Fit for ItemKnnConfig {
    fn name(&self) -> String {
        self.full_name()
    }
    fn fit(&self, data: &TrainData) -> Result<Box<dyn Recommender>> {
        Ok(Box::new(self.fit_knn(data)?))
    }
}

impl ItemKnnConfig {
    /// `itemknn`, `rp3beta` or `ease`.
    pub fn model_name(&self) -> &'static str {
        match self.similarity {
            Similarity::Cosine => "itemknn",
            Similarity::Rp3beta { .. } => "rp3beta",
            Similarity::Ease { .. } => "ease",
        }
    }

    /// The name `by_name` reads back: parameters that differ from the defaults are named
    /// (`itemknn:k=N:shrink=S`, `rp3beta:alpha=A:beta=B:k=N`, `ease:lambda=L:items=N`).
    pub fn full_name(&self) -> String {
        let d = ItemKnnConfig::builder();
        let k = if self.neighbours != d.neighbours { format!(":k={}", self.neighbours) } else { String::new() };
        match self.similarity {
            Similarity::Ease { lambda, items } if (lambda, items) != crate::EASE_DEFAULT => {
                format!("ease:lambda={lambda}:items={items}")
            }
            Similarity::Cosine if self.shrink != d.shrink => format!("itemknn{k}:shrink={}", self.shrink),
            Similarity::Cosine => format!("itemknn{k}"),
            Similarity::Rp3beta { alpha, beta } => {
                let mut name = String::from("rp3beta");
                if alpha != crate::RP3BETA_DEFAULT.0 {
                    name += &format!(":alpha={alpha}");
                }
                if beta != crate::RP3BETA_DEFAULT.1 {
                    name += &format!(":beta={beta}");
                }
                name + &k
            }
            _ => self.model_name().into(),
        }
    }

    /// Computes every item's neighbours per site.
    pub fn fit_knn(&self, data: &TrainData) -> Result<ItemKnn> {
        let x = data.matrix.map_values(|_| 1.0);
        let n_items = x.n_cols();
        let site: Vec<u32> = data.dataset.products.iter().map(|p| p.site).collect();
        if site.len() != n_items {
            return Err(crate::Error::BadData(format!("matrix has {n_items} items, dataset {}", site.len())));
        }
        let n_sites = data.dataset.sites.len().max(1);
        let k = self.neighbours;
        let keep = |cand: Vec<(ItemId, f32)>| keep_per_site(cand, &site, n_sites, k);
        if let Similarity::Ease { lambda, items } = self.similarity {
            let neighbours = crate::ease::weights(&x, lambda, items as usize, keep)?;
            return Ok(ItemKnn { config: self.clone(), neighbours });
        }
        let xt = x.transpose();
        let norms: Vec<f32> = (0..n_items).map(|i| xt.row_nnz(i) as f32).collect();
        let (shrink, similarity) = (self.shrink, self.similarity);
        // weight of a walk through user u: 1 for cosine, (1/deg u)^α for RP3beta
        let user_weight: Vec<f32> = (0..x.n_rows())
            .map(|u| match similarity {
                Similarity::Rp3beta { alpha, .. } => (x.row_nnz(u).max(1) as f32).powf(-alpha),
                Similarity::Cosine | Similarity::Ease { .. } => 1.0,
            })
            .collect();
        let score = |i: usize, j: u32, co: f32| -> Option<f32> {
            let (ni, nj) = (norms[i], norms[j as usize]);
            (j as usize != i).then(|| match similarity {
                Similarity::Rp3beta { alpha, beta } => co * ni.max(1.0).powf(-alpha) * nj.max(1.0).powf(-beta),
                Similarity::Cosine | Similarity::Ease { .. } => co / ((ni * nj).sqrt() + shrink),
            })
        };
        let neighbours = cooccurrence_lists(&x, n_items, |i| xt.row_indices(i), &user_weight, score, keep);
        Ok(ItemKnn { config: self.clone(), neighbours })
    }
}

/// For every left-hand set `l` in `0..n_left` (the users `users_of(l)`: an item's buyers, a
/// brand's): the items those users interacted with in `x`, each with the `user_weight` of the
/// users it shares with the set summed (its co-occurrence), scored by `score(l, item, co)`
/// (`None` leaves the item out) and cut by `keep`. Sets run in parallel.
pub(crate) fn cooccurrence_lists<'a>(
    x: &CsrMatrix,
    n_left: usize,
    users_of: impl Fn(usize) -> &'a [u32] + Sync,
    user_weight: &[f32],
    score: impl Fn(usize, u32, f32) -> Option<f32> + Sync,
    keep: impl Fn(Vec<(ItemId, f32)>) -> Vec<(ItemId, f32)> + Sync,
) -> Vec<Vec<(ItemId, f32)>> {
    (0..n_left)
        .into_par_iter()
        .map_init(
            || (vec![0f32; x.n_cols()], Vec::<u32>::new()),
            |(co, touched), l| {
                for &u in users_of(l) {
                    let w = user_weight[u as usize];
                    for &j in x.row_indices(u as usize) {
                        if co[j as usize] == 0.0 {
                            touched.push(j);
                        }
                        co[j as usize] += w;
                    }
                }
                let cand: Vec<(ItemId, f32)> =
                    touched.iter().filter_map(|&j| score(l, j, co[j as usize]).map(|s| (j, s))).collect();
                for &j in touched.iter() {
                    co[j as usize] = 0.0;
                }
                touched.clear();
                keep(cand)
            },
        )
        .collect()
}

/// Adds `w` times each neighbour's similarity of `list` that falls in `items` to `out`
/// (indexed from `items.start`).
pub(crate) fn add_neighbours(list: &[(ItemId, f32)], w: f32, items: &Range<ItemId>, out: &mut [f32]) {
    for &(j, s) in list {
        if items.contains(&j) {
            out[(j - items.start) as usize] += w * s;
        }
    }
}

/// Checks a neighbour count (at least 1) and a cosine shrinkage (finite, not negative).
pub(crate) fn check_neighbours_and_shrink(neighbours: usize, shrink: f32) -> Result<()> {
    check("neighbours", neighbours >= 1, neighbours, "must be at least 1")?;
    check("shrink", shrink >= 0.0 && shrink.is_finite(), shrink, "must be finite and >= 0")
}

/// The `k` highest-weighted candidates on each site (ties to the lower id), sorted by id.
pub(crate) fn keep_per_site(
    mut cand: Vec<(ItemId, f32)>,
    site: &[u32],
    n_sites: usize,
    k: usize,
) -> Vec<(ItemId, f32)> {
    cand.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut per_site = vec![0usize; n_sites];
    let mut kept: Vec<(ItemId, f32)> = cand
        .into_iter()
        .filter(|&(j, _)| {
            let s = site[j as usize] as usize;
            per_site[s] += 1;
            per_site[s] <= k
        })
        .collect();
    kept.sort_unstable_by_key(|e| e.0);
    kept
}

impl Recommender for ItemKnn {
    fn name(&self) -> String {
        self.config.full_name()
    }

    fn n_items(&self) -> usize {
        self.neighbours.len()
    }

    fn neighbour_lists(&self) -> Option<&[Vec<(ItemId, f32)>]> {
        Some(&self.neighbours)
    }

    fn save(&self, dir: &std::path::Path) -> Result<()> {
        let (offsets, ids, sims) = pack_lists(&self.neighbours);
        ArtifactWriter::new(KIND, &self.config)?
            .u32("offsets", &[offsets.len()], &offsets)
            .u32("ids", &[ids.len()], &ids)
            .f32("similarities", &[sims.len()], &sims)
            .write(dir)
    }

    fn score_items(&self, history: &History, items: Range<ItemId>, out: &mut [f32]) -> Result<()> {
        out.fill(0.0);
        for &(h, w) in history {
            if let Some(nb) = self.neighbours.get(h as usize) {
                add_neighbours(nb, w, &items, out);
            }
        }
        Ok(())
    }

    fn explain(&self, history: &History, items: &[ItemId]) -> Option<Vec<Explanation>> {
        Some(
            items
                .iter()
                .filter_map(|&it| {
                    history
                        .iter()
                        .map(|&(h, w)| (h, w * self.similarity(h, it)))
                        .filter(|e| e.1 > 0.0)
                        .max_by(|a, b| a.1.total_cmp(&b.1))
                        .map(|(h, c)| Explanation { item: it, because_of: h, contribution: c })
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warmstart_core::{CsrMatrix, DatasetBuilder, ProductMeta};

    /// Item 0 is bought with item 1 by two users; item 2 is bought by everyone, with item 0 by
    /// three of them.
    fn data() -> (warmstart_core::Dataset, CsrMatrix) {
        let mut b = DatasetBuilder::default();
        let s = b.push_site("s", "S", "d");
        for i in 0..3 {
            b.push_product(ProductMeta {
                site: s,
                external_id: i.to_string(),
                title: format!("p{i}"),
                brand: None,
                category: vec![],
                price_usd: None,
                image: None,
            });
        }
        let mut t = vec![(0, 0, 1.0), (0, 1, 1.0), (1, 0, 1.0), (1, 1, 1.0)];
        for u in 2..12u32 {
            t.push((u, 2, 1.0));
            if u < 5 {
                t.push((u, 0, 1.0));
            }
        }
        for u in 0..12 {
            b.push_user(format!("u{u}"));
        }
        (b.finish().unwrap(), CsrMatrix::from_triplets(12, 3, &t))
    }

    #[test]
    fn rp3beta_penalises_popular_neighbours_that_cosine_prefers() {
        let (d, m) = data();
        let data = TrainData { dataset: &d, matrix: &m, item_vectors: None };
        let cosine = ItemKnnConfig::builder().shrink(0.0).build().unwrap().fit_knn(&data).unwrap();
        let rp3 = ItemKnnConfig::builder().rp3beta(1.0, 1.0).build().unwrap().fit_knn(&data).unwrap();
        // cosine: 0~2 (3 users of 5 × 10) vs 0~1 (2 of 5 × 2): 3/√50 ≈ 0.42 < 2/√10 ≈ 0.63
        assert!(cosine.similarity(0, 1) > cosine.similarity(0, 2));
        // RP3beta with β = 1 divides by the target's popularity: item 2 (10 users) falls further
        assert!(rp3.similarity(0, 1) > 3.0 * rp3.similarity(0, 2), "{} {}", rp3.similarity(0, 1), rp3.similarity(0, 2));
        assert_eq!(Recommender::name(&rp3), "rp3beta:alpha=1:beta=1", "its name reads back as its parameters");
        assert!(ItemKnnConfig::builder().rp3beta(0.0, 0.5).build().is_err());
        assert!(ItemKnnConfig::builder().rp3beta(1.0, 3.0).build().is_err());
    }
}
