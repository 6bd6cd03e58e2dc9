//! Brand-kNN: item-kNN with the history side pooled by brand. Every (site, brand) is one
//! group, the set of users who bought any of its items on that site; a group's neighbours are
//! the items whose buyers overlap it most (shrunk cosine, the top N on each site), and a
//! history scores an item by summing its brands' similarities to it.
//!
//! Why: a shopper's few items on one shop rarely co-occur with a given item of another shop
//! (most cross-shop item pairs have one or two buyers in common, or none), but the brands they
//! buy pool many items' buyers, so "people who buy Avery office labels buy this Art item" is
//! measured on hundreds of users where "people who bought this label" is measured on three.
//! Items without a brand belong to no group and add nothing to a history's score. `catknn`
//! is the same model grouped by (site, category path).

use std::collections::HashMap;
use std::ops::Range;

use warmstart_core::ItemId;

use crate::artifact::{expect_len, pack_lists, unpack_lists, ArtifactReader, ArtifactWriter};
use crate::itemknn::{add_neighbours, check_neighbours_and_shrink, cooccurrence_lists, keep_per_site};
use crate::{Fit, History, Recommender, Result, TrainData};

/// Kind of a saved brand-kNN model.
pub(crate) const KIND: &str = "brandknn";

/// Items that belong to no brand group.
const NO_GROUP: u32 = u32::MAX;

/// Hyper-parameters of [`BrandKnn`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BrandKnnConfig {
    neighbours: usize,
    shrink: f32,
    #[serde(default)]
    by: Grouping,
}

/// What pools a history's items.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Grouping {
    /// The product's brand.
    #[default]
    Brand,
    /// The product's full category path.
    Category,
}

/// Builder of [`BrandKnnConfig`].
#[derive(Debug, Clone)]
pub struct BrandKnnBuilder {
    neighbours: usize,
    shrink: f32,
    by: Grouping,
}

impl BrandKnnConfig {
    /// Starts a builder with item-kNN's defaults (400 neighbours per site, shrink 50).
    pub fn builder() -> BrandKnnBuilder {
        BrandKnnBuilder { neighbours: 400, shrink: 50.0, by: Grouping::Brand }
    }

    /// `brandknn`, with the parameters that differ from the defaults.
    pub fn full_name(&self) -> String {
        let d = BrandKnnConfig::builder();
        let mut name = String::from(match self.by {
            Grouping::Brand => "brandknn",
            Grouping::Category => "catknn",
        });
        if self.neighbours != d.neighbours {
            name.push_str(&format!(":k={}", self.neighbours));
        }
        if self.shrink != d.shrink {
            name.push_str(&format!(":shrink={}", self.shrink));
        }
        name
    }
}

impl BrandKnnBuilder {
    /// Neighbours kept per brand and site.
    pub fn neighbours(mut self, n: usize) -> Self {
        self.neighbours = n;
        self
    }
    /// Shrinkage added to the cosine denominator.
    pub fn shrink(mut self, s: f32) -> Self {
        self.shrink = s;
        self
    }
    /// Pools by brand (the default) or by category path.
    pub fn by(mut self, by: Grouping) -> Self {
        self.by = by;
        self
    }
    /// Validates.
    pub fn build(self) -> Result<BrandKnnConfig> {
        check_neighbours_and_shrink(self.neighbours, self.shrink)?;
        Ok(BrandKnnConfig { neighbours: self.neighbours, shrink: self.shrink, by: self.by })
    }
}

/// Brand-to-item neighbours (fitted).
#[derive(Debug, Clone)]
pub struct BrandKnn {
    config: BrandKnnConfig,
    /// Brand group of every item ([`NO_GROUP`] without a brand).
    group_of: Vec<u32>,
    /// Per group: (item, similarity), sorted by item id.
    neighbours: Vec<Vec<(ItemId, f32)>>,
}

impl BrandKnn {
    pub(crate) fn load(r: &ArtifactReader) -> Result<BrandKnn> {
        let (_, group_of) = r.u32("group_of")?;
        let (_, offsets) = r.u32("offsets")?;
        let (_, ids) = r.u32("ids")?;
        let (_, sims) = r.f32("similarities")?;
        let neighbours = unpack_lists(r, &offsets, &ids, &sims)?;
        if group_of.iter().any(|&g| g != NO_GROUP && g as usize >= neighbours.len()) {
            return Err(r.error("a brand group is out of range"));
        }
        if neighbours.iter().flatten().any(|e| e.0 as usize >= group_of.len()) {
            return Err(r.error("a neighbour id is out of range"));
        }
        expect_len(r, "offsets", offsets.len(), neighbours.len() + 1)?;
        Ok(BrandKnn { config: r.config()?, group_of, neighbours })
    }

    /// Number of brand groups (one per site and brand).
    pub fn n_groups(&self) -> usize {
        self.neighbours.len()
    }
}

impl Fit for BrandKnnConfig {
    fn name(&self) -> String {
        self.full_name()
    }
    fn fit(&self, data: &TrainData) -> Result<Box<dyn Recommender>> {
        Ok(Box::new(self.fit_brands(data)?))
    }
}

impl BrandKnnConfig {
    /// Groups the items by (site, brand) and computes every group's neighbours per site.
    pub fn fit_brands(&self, data: &TrainData) -> Result<BrandKnn> {
        let x = data.matrix.map_values(|_| 1.0);
        let n_items = x.n_cols();
        let products = &data.dataset.products;
        if products.len() != n_items {
            return Err(crate::Error::BadData(format!("matrix has {n_items} items, dataset {}", products.len())));
        }
        let mut ids: HashMap<(u32, String), u32> = HashMap::new();
        let group_of: Vec<u32> = products
            .iter()
            .map(|p| {
                let key = match self.by {
                    Grouping::Brand => p.brand.as_deref().map(str::trim).unwrap_or_default().to_string(),
                    Grouping::Category => p.category.join(" > "),
                };
                if key.is_empty() {
                    return NO_GROUP;
                }
                let next = ids.len() as u32;
                *ids.entry((p.site, key)).or_insert(next)
            })
            .collect();
        let n_groups = ids.len();
        // each group's users (distinct, ascending) and each item's buyer count
        let mut members: Vec<Vec<u32>> = vec![Vec::new(); n_groups];
        for u in 0..x.n_rows() {
            for &i in x.row_indices(u) {
                let g = group_of[i as usize];
                if g != NO_GROUP && members[g as usize].last() != Some(&(u as u32)) {
                    members[g as usize].push(u as u32);
                }
            }
        }
        let xt = x.transpose();
        let buyers: Vec<f32> = (0..n_items).map(|i| xt.row_nnz(i) as f32).collect();
        let site: Vec<u32> = products.iter().map(|p| p.site).collect();
        let n_sites = data.dataset.sites.len().max(1);
        let (k, shrink) = (self.neighbours, self.shrink);
        let score =
            |g: usize, j: u32, co: f32| Some(co / ((members[g].len() as f32 * buyers[j as usize]).sqrt() + shrink));
        let neighbours = cooccurrence_lists(
            &x,
            n_groups,
            |g| &members[g][..],
            &vec![1.0; x.n_rows()],
            score,
            |cand| keep_per_site(cand, &site, n_sites, k),
        );
        Ok(BrandKnn { config: self.clone(), group_of, neighbours })
    }
}

impl Recommender for BrandKnn {
    fn name(&self) -> String {
        self.config.full_name()
    }

    fn n_items(&self) -> usize {
        self.group_of.len()
    }

    fn save(&self, dir: &std::path::Path) -> Result<()> {
        let (offsets, ids, sims) = pack_lists(&self.neighbours);
        ArtifactWriter::new(KIND, &self.config)?
            .u32("group_of", &[self.group_of.len()], &self.group_of)
            .u32("offsets", &[offsets.len()], &offsets)
            .u32("ids", &[ids.len()], &ids)
            .f32("similarities", &[sims.len()], &sims)
            .write(dir)
    }

    /// Each brand of the history counts once, with the largest weight among its items.
    fn score_items(&self, history: &History, items: Range<ItemId>, out: &mut [f32]) -> Result<()> {
        out.fill(0.0);
        let mut brands: Vec<(u32, f32)> = history
            .iter()
            .filter_map(|&(h, w)| self.group_of.get(h as usize).filter(|&&g| g != NO_GROUP).map(|&g| (g, w)))
            .collect();
        brands.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)));
        brands.dedup_by_key(|e| e.0);
        for (g, w) in brands {
            add_neighbours(&self.neighbours[g as usize], w, &items, out);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warmstart_core::{CsrMatrix, DatasetBuilder, ProductMeta};

    /// Site A sells items 0–2 (0 and 1 of brand "acme", 2 of "zeta"); site B sells 3 and 4.
    /// Buyers of acme's items (users 0–3, each of one acme item only) all bought item 3; the
    /// buyer of zeta (user 4) bought item 4.
    fn data() -> (warmstart_core::Dataset, CsrMatrix) {
        let mut b = DatasetBuilder::default();
        let a = b.push_site("a", "A", "d");
        let s = b.push_site("b", "B", "d");
        let brands = [Some("acme"), Some("acme"), Some("zeta"), None, None];
        for (i, brand) in brands.iter().enumerate() {
            b.push_product(ProductMeta {
                site: if i < 3 { a } else { s },
                external_id: i.to_string(),
                title: format!("p{i}"),
                brand: brand.map(str::to_string),
                category: vec![],
                price_usd: None,
                image: None,
            });
        }
        let t = vec![
            (0, 0, 1.0),
            (0, 3, 1.0),
            (1, 0, 1.0),
            (1, 3, 1.0),
            (2, 1, 1.0),
            (2, 3, 1.0),
            (3, 1, 1.0),
            (3, 3, 1.0),
            (4, 2, 1.0),
            (4, 4, 1.0),
        ];
        for u in 0..5 {
            b.push_user(format!("u{u}"));
        }
        (b.finish().unwrap(), CsrMatrix::from_triplets(5, 5, &t))
    }

    #[test]
    fn a_brand_pools_its_items_buyers() {
        let (d, m) = data();
        let c = BrandKnnConfig::builder().shrink(0.0).build().unwrap();
        let model = c.fit_brands(&TrainData { dataset: &d, matrix: &m, item_vectors: None }).unwrap();
        assert_eq!(model.n_groups(), 2);
        // acme's group is users 0–3, item 3's buyers are the same four: cosine 1
        let mut out = [0f32; 2];
        model.score(&[(0, 1.0)], 3..5, &mut out).unwrap();
        assert!((out[0] - 1.0).abs() < 1e-6 && out[1] == 0.0, "{out:?}");
        // item 1 alone co-occurs with item 3 through two users, but its brand speaks for four
        let knn = crate::ItemKnnConfig::builder().shrink(0.0).build().unwrap();
        let knn = knn.fit_knn(&TrainData { dataset: &d, matrix: &m, item_vectors: None }).unwrap();
        assert!(knn.similarity(1, 3) < out[0]);
        // two items of one brand count once; an unbranded history scores nothing
        let mut twice = [0f32; 2];
        model.score(&[(0, 1.0), (1, 1.0)], 3..5, &mut twice).unwrap();
        assert_eq!(twice, out);
        model.score(&[(3, 1.0)], 3..5, &mut twice).unwrap();
        assert_eq!(twice, [0.0, 0.0]);
        model.score(&[(2, 1.0)], 3..5, &mut twice).unwrap();
        assert!(twice[1] > 0.0 && twice[0] == 0.0);
    }

    #[test]
    fn saves_and_loads_to_the_same_scores() {
        let (d, m) = data();
        let model = BrandKnnConfig::builder()
            .neighbours(1)
            .build()
            .unwrap()
            .fit_brands(&TrainData { dataset: &d, matrix: &m, item_vectors: None })
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        model.save(dir.path()).unwrap();
        let loaded = crate::load(dir.path(), None).unwrap();
        assert_eq!(loaded.name(), "brandknn:k=1");
        let (mut a, mut b) = ([0f32; 5], [0f32; 5]);
        model.score(&[(0, 1.0), (2, 0.5)], 0..5, &mut a).unwrap();
        loaded.score(&[(0, 1.0), (2, 0.5)], 0..5, &mut b).unwrap();
        assert_eq!(a, b);
        assert!(loaded.score(&[(9, 1.0)], 0..5, &mut b).is_err());
    }

    #[test]
    fn bad_parameters_are_refused() {
        assert!(BrandKnnConfig::builder().neighbours(0).build().is_err());
        assert!(BrandKnnConfig::builder().shrink(f32::NAN).build().is_err());
    }
}
