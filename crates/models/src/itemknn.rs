//! Item-kNN: cosine similarity between items' user sets, with shrinkage, keeping the top-N
//! neighbours of every item *on each site*, so that users active on two sites link the
//! sites' catalogs even when an item's nearest neighbours are all on its own site.

use std::ops::Range;

use rayon::prelude::*;
use warmstart_core::ItemId;

use crate::artifact::{pack_lists, unpack_lists, ArtifactReader, ArtifactWriter};
use crate::{check, Explanation, Fit, History, Recommender, Result, TrainData};

/// Kind of a saved item-kNN model.
pub(crate) const KIND: &str = "itemknn";

/// Hyper-parameters of [`ItemKnn`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ItemKnnConfig {
    /// Neighbours kept per item and site.
    pub neighbours: usize,
    /// Shrinkage added to the cosine denominator (damps similarities from few users).
    pub shrink: f32,
}

/// Builder of [`ItemKnnConfig`].
#[derive(Debug, Clone)]
pub struct ItemKnnBuilder {
    neighbours: usize,
    shrink: f32,
}

impl ItemKnnConfig {
    /// Starts a builder with defaults (400 neighbours per site, shrink 50; chosen by
    /// `warmstart tune` on the Amazon Art/Office validation users).
    pub fn builder() -> ItemKnnBuilder {
        ItemKnnBuilder { neighbours: 400, shrink: 50.0 }
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
    /// Validates.
    pub fn build(self) -> Result<ItemKnnConfig> {
        check("neighbours", self.neighbours >= 1, self.neighbours, "must be at least 1")?;
        check("shrink", self.shrink >= 0.0 && self.shrink.is_finite(), self.shrink, "must be finite and >= 0")?;
        Ok(ItemKnnConfig { neighbours: self.neighbours, shrink: self.shrink })
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
        "itemknn".into()
    }
    fn fit(&self, data: &TrainData) -> Result<Box<dyn Recommender>> {
        Ok(Box::new(self.fit_knn(data)?))
    }
}

impl ItemKnnConfig {
    /// Computes every item's neighbours per site.
    pub fn fit_knn(&self, data: &TrainData) -> Result<ItemKnn> {
        let x = data.matrix.map_values(|_| 1.0);
        let xt = x.transpose();
        let n_items = x.n_cols();
        let site: Vec<u32> = data.dataset.products.iter().map(|p| p.site).collect();
        if site.len() != n_items {
            return Err(crate::Error::BadData(format!("matrix has {n_items} items, dataset {}", site.len())));
        }
        let n_sites = data.dataset.sites.len().max(1);
        let norms: Vec<f32> = (0..n_items).map(|i| xt.row_nnz(i) as f32).collect();
        let (k, shrink) = (self.neighbours, self.shrink);
        let neighbours = (0..n_items)
            .into_par_iter()
            .map_init(
                || (vec![0f32; n_items], Vec::<u32>::new()),
                |(co, touched), i| {
                    for &u in xt.row_indices(i) {
                        for &j in x.row_indices(u as usize) {
                            if co[j as usize] == 0.0 {
                                touched.push(j);
                            }
                            co[j as usize] += 1.0;
                        }
                    }
                    let mut cand: Vec<(ItemId, f32)> = touched
                        .iter()
                        .filter(|&&j| j as usize != i)
                        .map(|&j| (j, co[j as usize] / ((norms[i] * norms[j as usize]).sqrt() + shrink)))
                        .collect();
                    for &j in touched.iter() {
                        co[j as usize] = 0.0;
                    }
                    touched.clear();
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
                },
            )
            .collect();
        Ok(ItemKnn { config: self.clone(), neighbours })
    }
}

impl Recommender for ItemKnn {
    fn name(&self) -> String {
        "itemknn".into()
    }

    fn n_items(&self) -> usize {
        self.neighbours.len()
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
            let Some(nb) = self.neighbours.get(h as usize) else { continue };
            for &(j, s) in nb {
                if items.contains(&j) {
                    out[(j - items.start) as usize] += w * s;
                }
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
