//! Content-based cold start: a user's other-site history becomes a point in the shared
//! content space (weighted mean of product vectors), and the target site's catalog is ranked
//! by cosine similarity to it. Variants for shops that sell different things:
//! - a ridge-regression mapping from a user's source-site profile to their target-site
//!   profile, learned from users active on both (the EMCDR idea);
//! - a popularity prior blended with the similarity;
//! - maximal marginal relevance for diverse lists.

use std::collections::HashMap;
use std::ops::Range;

use warmstart_core::{top_k, ItemId, ItemVectors, SiteId};
use warmstart_scoring::{site_groups, target_queries, SliceSpace};

use crate::artifact::{expect_len, ArtifactReader, ArtifactWriter};
use crate::linalg::{axpy, cholesky, cholesky_apply, dot};
use crate::{check, Error, Explanation, Fit, History, Recommender, Result, TrainData, VectorSpace};

/// Kind of a saved content model.
pub(crate) const KIND: &str = "content";

/// Hyper-parameters of [`ContentModel`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ContentConfig {
    /// Learn a source → target profile mapping.
    pub mapped: bool,
    /// Weight of the popularity prior in `[0, 1]` (0 = pure similarity).
    pub pop_weight: f32,
    /// Ridge penalty of the mapping, relative to the number of users it is learned from.
    pub ridge: f32,
    /// MMR trade-off in `(0, 1]` used by `recommend` (1 = no diversity constraint).
    pub mmr_lambda: f32,
    /// Interests per user and source site (k of a spherical k-means over the history's
    /// vectors); an item scores by its best-matching interest. 1 = one mean profile.
    pub interests: usize,
}

/// Builder of [`ContentConfig`].
#[derive(Debug, Clone)]
pub struct ContentBuilder(ContentConfig);

impl ContentConfig {
    /// Defaults: plain profile, no prior, ridge 0.01 (chosen by `warmstart tune` on the
    /// Amazon validation users), no MMR.
    pub fn builder() -> ContentBuilder {
        ContentBuilder(ContentConfig { mapped: false, pop_weight: 0.0, ridge: 0.01, mmr_lambda: 1.0, interests: 1 })
    }
}

impl ContentBuilder {
    /// Learn the source → target mapping.
    pub fn mapped(mut self, v: bool) -> Self {
        self.0.mapped = v;
        self
    }
    /// Popularity prior weight.
    pub fn pop_weight(mut self, v: f32) -> Self {
        self.0.pop_weight = v;
        self
    }
    /// Ridge penalty.
    pub fn ridge(mut self, v: f32) -> Self {
        self.0.ridge = v;
        self
    }
    /// MMR trade-off.
    pub fn mmr_lambda(mut self, v: f32) -> Self {
        self.0.mmr_lambda = v;
        self
    }
    /// Interests per user and source site.
    pub fn interests(mut self, v: usize) -> Self {
        self.0.interests = v;
        self
    }
    /// Validates.
    pub fn build(self) -> Result<ContentConfig> {
        let c = self.0;
        check("interests", (1..=32).contains(&c.interests), c.interests, "must be in 1..=32")?;
        check("pop_weight", (0.0..=1.0).contains(&c.pop_weight), c.pop_weight, "must be in [0, 1]")?;
        check("ridge", c.ridge > 0.0 && c.ridge.is_finite(), c.ridge, "must be > 0")?;
        check("mmr_lambda", c.mmr_lambda > 0.0 && c.mmr_lambda <= 1.0, c.mmr_lambda, "must be in (0, 1]")?;
        Ok(c)
    }
}

/// Content-based recommender over item vectors.
#[derive(Debug, Clone)]
pub struct ContentModel {
    config: ContentConfig,
    vectors: ItemVectors,
    site_of: Vec<SiteId>,
    pop: Vec<f32>,
    maps: HashMap<(SiteId, SiteId), Mapping>,
}

/// `(XᵀX, XᵀY, Σx, Σy, n)` of one ordered site pair's ridge regression.
type NormalEquations = (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>, usize);

/// A learned source → target mapping: `ŷ − μ_y = (x − μ_x) W`.
#[derive(Debug, Clone)]
struct Mapping {
    w: Vec<f32>,
    mean_x: Vec<f32>,
}

impl ContentModel {
    fn slice_space(&self) -> SliceSpace<'_> {
        SliceSpace {
            dim: self.vectors.dim,
            data: &self.vectors.data,
            present: &self.vectors.present,
            site_of: &self.site_of,
        }
    }

    /// Per site of the history, the normalised weighted mean of its items' vectors.
    fn site_means(&self, history: &History) -> Vec<(SiteId, Vec<f32>)> {
        site_groups(&self.slice_space(), history, 1).into_iter().map(|(s, v, _)| (s, v)).collect()
    }

    /// The blended score of one item for the user's target-site profiles.
    fn item_score(&self, profiles: &[Vec<f32>], i: ItemId) -> f32 {
        let v = self.vectors.present[i as usize].then(|| self.vectors.row(i));
        warmstart_scoring::item_score(profiles, v, self.pop[i as usize], self.config.pop_weight)
    }

    /// Cosine of two items' vectors (0 when either has none).
    pub fn similarity(&self, a: ItemId, b: ItemId) -> f32 {
        let present = |i: ItemId| self.vectors.present.get(i as usize).copied().unwrap_or(false);
        if present(a) && present(b) {
            dot(self.vectors.row(a), self.vectors.row(b))
        } else {
            0.0
        }
    }

    fn to_target(&self, m: &[f32], source: SiteId, target: SiteId, out: &mut [f32]) {
        let d = self.vectors.dim;
        match self.maps.get(&(source, target)) {
            Some(map) if self.config.mapped && source != target => {
                // out += (m − μ_x) W: the user's predicted deviation from the average target
                // profile (the average itself shifts every item's score equally).
                for (r, (&mr, &mu)) in m.iter().zip(&map.mean_x).enumerate() {
                    axpy(mr - mu, &map.w[r * d..(r + 1) * d], out);
                }
            }
            _ => axpy(1.0, m, out),
        }
    }

    /// The user's profile in the target site's content space (`None` without usable history).
    pub fn profile(&self, history: &History, target: SiteId) -> Option<Vec<f32>> {
        let groups = site_groups(&self.slice_space(), history, 1);
        target_queries(&groups, 1, self.vectors.dim, |m, s, out| self.to_target(m, s, target, out)).pop()
    }

    /// The user's interest profiles in the target site's space: one per interest and
    /// source site with `interests > 1`, else the single [`profile`](Self::profile).
    pub fn profiles(&self, history: &History, target: SiteId) -> Vec<Vec<f32>> {
        let k = self.config.interests;
        let groups = site_groups(&self.slice_space(), history, k);
        target_queries(&groups, k, self.vectors.dim, |m, s, out| self.to_target(m, s, target, out))
    }

    fn learn_maps(&mut self, data: &TrainData) -> Result<()> {
        self.maps.clear();
        let d = self.vectors.dim;
        let m = data.matrix;
        let n_sites = data.dataset.sites.len() as SiteId;
        let mut acc: HashMap<(SiteId, SiteId), NormalEquations> = HashMap::new();
        for u in 0..m.n_rows() {
            let hist: Vec<(ItemId, f32)> = m.row_indices(u).iter().map(|&i| (i, 1.0)).collect();
            let means = self.site_means(&hist);
            if means.len() < 2 {
                continue;
            }
            for (s, x) in &means {
                for (t, y) in &means {
                    if s == t || *s >= n_sites || *t >= n_sites {
                        continue;
                    }
                    let e = acc
                        .entry((*s, *t))
                        .or_insert_with(|| (vec![0.0; d * d], vec![0.0; d * d], vec![0.0; d], vec![0.0; d], 0));
                    for r in 0..d {
                        if x[r] != 0.0 {
                            axpy(x[r], x, &mut e.0[r * d..(r + 1) * d]);
                            axpy(x[r], y, &mut e.1[r * d..(r + 1) * d]);
                        }
                    }
                    axpy(1.0, x, &mut e.2);
                    axpy(1.0, y, &mut e.3);
                    e.4 += 1;
                }
            }
        }
        for ((s, t), (mut xtx, mut xty, sx, sy, n)) in acc {
            // centre: XᵀX − n μx μxᵀ and XᵀY − n μx μyᵀ
            let nf = n as f32;
            let mean_x: Vec<f32> = sx.iter().map(|v| v / nf).collect();
            let mean_y: Vec<f32> = sy.iter().map(|v| v / nf).collect();
            for r in 0..d {
                axpy(-nf * mean_x[r], &mean_x, &mut xtx[r * d..(r + 1) * d]);
                axpy(-nf * mean_x[r], &mean_y, &mut xty[r * d..(r + 1) * d]);
            }
            let lambda = self.config.ridge * nf;
            for r in 0..d {
                xtx[r * d + r] += lambda;
            }
            let l =
                cholesky(&xtx, d).ok_or_else(|| Error::BadData("mapping system is not positive definite".into()))?;
            // W = (X'X + λI)^-1 X'Y, column by column
            let mut w = vec![0f32; d * d];
            let mut col = vec![0f32; d];
            for c in 0..d {
                for r in 0..d {
                    col[r] = xty[r * d + c];
                }
                let x = cholesky_apply(&l, &col);
                for r in 0..d {
                    w[r * d + c] = x[r];
                }
            }
            self.maps.insert((s, t), Mapping { w, mean_x });
        }
        Ok(())
    }
}

impl ContentConfig {
    fn name(&self) -> String {
        let base = match (self.mapped, self.pop_weight > 0.0) {
            (false, false) => "content",
            (false, true) => "content-pop",
            (true, false) => "content-map",
            (true, true) => "content-map-pop",
        };
        if self.interests > 1 {
            format!("{base}-k{}", self.interests)
        } else {
            base.into()
        }
    }

    /// Fits on the item vectors of `data` (and, for mapped variants, its cross-site users).
    pub fn fit_content(&self, data: &TrainData) -> Result<ContentModel> {
        let v = data
            .item_vectors
            .ok_or_else(|| Error::BadData("the content model needs item vectors (run `warmstart embed`)".into()))?;
        if v.n_items() != data.dataset.n_items() {
            return Err(Error::BadData(format!("{} item vectors for {} items", v.n_items(), data.dataset.n_items())));
        }
        let mut counts = vec![0f32; data.matrix.n_cols()];
        for &c in data.matrix.indices() {
            counts[c as usize] += 1.0;
        }
        let mut model = ContentModel {
            config: self.clone(),
            vectors: v.clone(),
            site_of: data.dataset.products.iter().map(|p| p.site).collect(),
            pop: warmstart_scoring::log_popularity(&counts),
            maps: HashMap::new(),
        };
        if self.mapped {
            model.learn_maps(data)?;
        }
        Ok(model)
    }
}

impl Fit for ContentConfig {
    fn name(&self) -> String {
        ContentConfig::name(self)
    }
    fn fit(&self, data: &TrainData) -> Result<Box<dyn Recommender>> {
        Ok(Box::new(self.fit_content(data)?))
    }
}

impl ContentModel {
    pub(crate) fn load(r: &ArtifactReader) -> Result<ContentModel> {
        let config: ContentConfig = r.config()?;
        let (shape, data) = r.f32("vectors")?;
        if shape.len() != 2 {
            return Err(r.error(format!("vectors of shape {shape:?}")));
        }
        let (n, dim) = (shape[0], shape[1]);
        expect_len(r, "vectors", data.len(), n * dim)?;
        let (_, present) = r.u32("present")?;
        let (_, site_of) = r.u32("site_of")?;
        let (_, pop) = r.f32("pop")?;
        expect_len(r, "present", present.len(), n)?;
        expect_len(r, "site_of", site_of.len(), n)?;
        expect_len(r, "pop", pop.len(), n)?;
        let keys: Vec<(SiteId, SiteId)> = r.extra()?;
        let mut maps = HashMap::new();
        for (s, t) in keys {
            let (_, w) = r.f32(&format!("map.{s}.{t}.w"))?;
            let (_, mean_x) = r.f32(&format!("map.{s}.{t}.mean_x"))?;
            expect_len(r, "map.w", w.len(), dim * dim)?;
            expect_len(r, "map.mean_x", mean_x.len(), dim)?;
            maps.insert((s, t), Mapping { w, mean_x });
        }
        let vectors = ItemVectors { dim, data, present: present.iter().map(|&p| p != 0).collect() };
        Ok(ContentModel { config, vectors, site_of, pop, maps })
    }
}

impl Recommender for ContentModel {
    fn name(&self) -> String {
        self.config.name()
    }

    fn n_items(&self) -> usize {
        self.pop.len()
    }

    fn save(&self, dir: &std::path::Path) -> Result<()> {
        let n = self.pop.len();
        let present: Vec<u32> = self.vectors.present.iter().map(|&p| p as u32).collect();
        let mut keys: Vec<(SiteId, SiteId)> = self.maps.keys().copied().collect();
        keys.sort_unstable();
        let mut w = ArtifactWriter::new(KIND, &self.config)?
            .extra(&keys)?
            .f32("vectors", &[n, self.vectors.dim], &self.vectors.data)
            .u32("present", &[n], &present)
            .u32("site_of", &[n], &self.site_of)
            .f32("pop", &[n], &self.pop);
        for (s, t) in keys {
            let m = &self.maps[&(s, t)];
            w = w.f32(&format!("map.{s}.{t}.w"), &[self.vectors.dim, self.vectors.dim], &m.w).f32(
                &format!("map.{s}.{t}.mean_x"),
                &[self.vectors.dim],
                &m.mean_x,
            );
        }
        w.write(dir)
    }

    fn space(&self) -> Option<&dyn VectorSpace> {
        Some(self)
    }

    fn score_items(&self, history: &History, items: Range<ItemId>, out: &mut [f32]) -> Result<()> {
        let target = self.site_of.get(items.start as usize).copied().unwrap_or(0);
        let profiles = self.profiles(history, target);
        for (o, i) in out.iter_mut().zip(items) {
            *o = self.item_score(&profiles, i);
        }
        Ok(())
    }

    fn score_ids(&self, history: &History, ids: &[ItemId], out: &mut [f32]) -> Result<()> {
        crate::check_ids(self, history, ids, out)?;
        let Some(&first) = ids.first() else { return Ok(()) };
        let profiles = self.profiles(history, self.site_of[first as usize]);
        for (o, &i) in out.iter_mut().zip(ids) {
            *o = self.item_score(&profiles, i);
        }
        Ok(())
    }

    fn recommend(
        &self,
        history: &History,
        items: Range<ItemId>,
        k: usize,
        exclude: &[ItemId],
    ) -> Result<Vec<(ItemId, f32)>> {
        let scores = crate::masked_scores(self, history, items.clone(), exclude)?;
        let lambda = self.config.mmr_lambda;
        if lambda >= 1.0 {
            return Ok(crate::best_of(&scores, items.start, k));
        }
        // maximal marginal relevance over a pool of the best candidates
        let pool: Vec<(ItemId, f32)> =
            top_k(&scores, (k * 20).max(100)).into_iter().map(|c| (items.start + c as ItemId, scores[c])).collect();
        Ok(warmstart_scoring::mmr(&pool, k, lambda, |a, b| self.similarity(a, b)))
    }

    fn explain(&self, history: &History, items: &[ItemId]) -> Option<Vec<Explanation>> {
        Some(
            items
                .iter()
                .filter(|&&it| self.vectors.present.get(it as usize).copied().unwrap_or(false))
                .filter_map(|&it| {
                    history
                        .iter()
                        .filter(|(h, _)| self.vectors.present.get(*h as usize).copied().unwrap_or(false))
                        .map(|&(h, w)| (h, w * dot(self.vectors.row(h), self.vectors.row(it))))
                        .max_by(|a, b| a.1.total_cmp(&b.1))
                        .map(|(h, c)| Explanation { item: it, because_of: h, contribution: c })
                })
                .collect(),
        )
    }
}

impl VectorSpace for ContentModel {
    fn dim(&self) -> usize {
        self.vectors.dim
    }
    fn cosine(&self) -> bool {
        true
    }
    fn item_vector(&self, item: ItemId) -> Option<Vec<f32>> {
        self.vectors.present.get(item as usize).copied().unwrap_or(false).then(|| self.vectors.row(item).to_vec())
    }
    fn queries(&self, history: &History, target: SiteId) -> Result<Vec<Vec<f32>>> {
        Ok(self.profiles(history, target))
    }

    fn queries_with(&self, history: &History, external: &[(Vec<f32>, f32)], target: SiteId) -> Result<Vec<Vec<f32>>> {
        if external.is_empty() {
            return Ok(self.profiles(history, target));
        }
        let d = self.vectors.dim;
        if let Some((v, _)) = external.iter().find(|(v, _)| v.len() != d) {
            return Err(Error::BadData(format!("an external vector has dimension {}, the model {d}", v.len())));
        }
        // known items grouped by site as usual; external ones form one more group (an
        // unknown shop: no learned mapping applies)
        let mut groups = site_groups(&self.slice_space(), history, self.config.interests);
        let data: Vec<f32> = external.iter().flat_map(|(v, _)| v.iter().copied()).collect();
        let present = vec![true; external.len()];
        let unknown_site = vec![SiteId::MAX; external.len()];
        let space = SliceSpace { dim: d, data: &data, present: &present, site_of: &unknown_site };
        let items: Vec<(ItemId, f32)> = external.iter().enumerate().map(|(i, (_, w))| (i as ItemId, *w)).collect();
        groups.extend(site_groups(&space, &items, self.config.interests));
        Ok(target_queries(&groups, self.config.interests, d, |m, s, out| self.to_target(m, s, target, out)))
    }

    fn score_item(&self, queries: &[Vec<f32>], item: ItemId) -> f32 {
        self.item_score(queries, item)
    }

    fn score_vector(&self, queries: &[Vec<f32>], vector: &[f32]) -> f32 {
        let sim = queries.iter().map(|q| dot(q, vector)).fold(f32::NEG_INFINITY, f32::max);
        if queries.is_empty() {
            0.0
        } else {
            (1.0 - self.config.pop_weight) * sim
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warmstart_core::{CsrMatrix, DatasetBuilder, Interaction, InteractionKind, Product, Site, Split};

    /// Two sites whose vectors live in different directions: site a items along e0/e1,
    /// site b items along e2/e3, with users linking e0→e2 and e1→e3. Plain cosine cannot
    /// cross; the learned mapping can.
    #[test]
    fn mapping_crosses_between_disjoint_content_spaces_and_mmr_diversifies() {
        let sites = vec![
            Site { key: "a".into(), name: "A".into(), dataset: "d".into() },
            Site { key: "b".into(), name: "B".into(), dataset: "d".into() },
        ];
        let mut products = Vec::new();
        for i in 0..4 {
            products.push(Product::new("a", format!("a{i}"), "x"));
            products.push(Product::new("b", format!("b{i}"), "y"));
        }
        let mut inter = Vec::new();
        for u in 0..40 {
            let g = u % 2; // group 0: a0,a1 -> b0,b1 ; group 1: a2,a3 -> b2,b3
            for (s, p) in [("a", 2 * g), ("a", 2 * g + 1), ("b", 2 * g), ("b", 2 * g + 1)] {
                inter.push(Interaction {
                    user: format!("u{u}"),
                    site: s.into(),
                    product: format!("{s}{p}"),
                    kind: InteractionKind::Purchase,
                    value: None,
                    text: None,
                    time: None,
                    split: Split::Train,
                });
            }
        }
        let d = DatasetBuilder::from_records(&sites, &products, &inter).unwrap();
        let dim = 4;
        let mut vectors = ItemVectors { dim, data: vec![0.0; 8 * dim], present: vec![true; 8] };
        // a items: 0..4, b items: 4..8; a0,a1 ~ e0 ; a2,a3 ~ e1 ; b0,b1 ~ e2 ; b2,b3 ~ e3
        for (i, axis) in [(0, 0), (1, 0), (2, 1), (3, 1), (4, 2), (5, 2), (6, 3), (7, 3)] {
            vectors.data[i * dim + axis] = 1.0;
        }
        vectors.data[dim + 1] = 0.1; // make a1 differ slightly from a0
        let m: CsrMatrix = d.interaction_matrix();
        let data = TrainData { dataset: &d, matrix: &m, item_vectors: Some(&vectors) };
        let plain = ContentConfig::builder().build().unwrap().fit_content(&data).unwrap();
        let mapped = ContentConfig::builder().mapped(true).ridge(0.01).build().unwrap().fit_content(&data).unwrap();
        let hist = [(0u32, 1.0f32)]; // a0: group 0
        let (mut sp, mut sm) = (vec![0f32; 4], vec![0f32; 4]);
        plain.score(&hist, 4..8, &mut sp).unwrap();
        mapped.score(&hist, 4..8, &mut sm).unwrap();
        assert!(sp.iter().all(|s| s.abs() < 1e-6), "plain cosine cannot cross: {sp:?}");
        assert!(sm[0] > 0.5 && sm[1] > 0.5 && sm[2] < 0.1 && sm[3] < 0.1, "mapped: {sm:?}");
        assert_eq!(mapped.name(), "content-map");
        let why = mapped.explain(&[(0, 1.0), (2, 1.0)], &[1]).unwrap();
        assert_eq!(why[0].because_of, 0);

        // MMR: b0 and b1 are identical in content; with a strong diversity weight the second
        // pick comes from the other group.
        let mmr = ContentConfig::builder().mapped(true).ridge(0.01).mmr_lambda(0.3).build().unwrap();
        let mmr = mmr.fit_content(&data).unwrap();
        let plain_top = mapped.recommend(&hist, 4..8, 2, &[]).unwrap();
        let diverse_top = mmr.recommend(&hist, 4..8, 2, &[]).unwrap();
        assert!(plain_top.iter().all(|(i, _)| *i < 6), "{plain_top:?}");
        assert!(diverse_top.iter().any(|(i, _)| *i >= 6), "{diverse_top:?}");
        assert!(ContentConfig::builder().pop_weight(2.0).build().is_err());
    }

    /// One user buys shoes and laptops: the single mean profile sits between them and
    /// prefers a target item that is half of each; two interests prefer a real shoe and a
    /// real laptop.
    #[test]
    fn multi_interest_profiles_keep_separate_tastes_apart() {
        let sites = vec![
            Site { key: "a".into(), name: "A".into(), dataset: "d".into() },
            Site { key: "b".into(), name: "B".into(), dataset: "d".into() },
        ];
        let products: Vec<Product> = (0..4)
            .map(|i| Product::new("a", format!("a{i}"), "x"))
            .chain((0..3).map(|i| Product::new("b", format!("b{i}"), "y")))
            .collect();
        let inter = vec![Interaction {
            user: "u".into(),
            site: "a".into(),
            product: "a0".into(),
            kind: InteractionKind::Purchase,
            value: None,
            text: None,
            time: None,
            split: Split::Train,
        }];
        let d = DatasetBuilder::from_records(&sites, &products, &inter).unwrap();
        let dim = 3;
        let h = std::f32::consts::FRAC_1_SQRT_2;
        #[rustfmt::skip]
        let data = vec![
            1.0, 0.0, 0.0,  0.99, 0.14, 0.0,   // a0, a1: shoes
            0.0, 1.0, 0.0,  0.14, 0.99, 0.0,   // a2, a3: laptops
            h, h, 0.0,                        // b0: the blend
            1.0, 0.0, 0.0,                    // b1: a shoe
            0.0, 0.0, 1.0,                    // b2: unrelated
        ];
        let vectors = ItemVectors { dim, data, present: vec![true; 7] };
        let m = d.interaction_matrix();
        let data = TrainData { dataset: &d, matrix: &m, item_vectors: Some(&vectors) };
        let hist = [(0u32, 1.0f32), (1, 1.0), (2, 1.0), (3, 1.0)];
        let one = ContentConfig::builder().build().unwrap().fit_content(&data).unwrap();
        let two = ContentConfig::builder().interests(2).build().unwrap().fit_content(&data).unwrap();
        assert_eq!(two.name(), "content-k2");
        assert_eq!(two.profiles(&hist, 1).len(), 2);
        let top_one = one.recommend(&hist, 4..7, 1, &[]).unwrap();
        let top_two = two.recommend(&hist, 4..7, 1, &[]).unwrap();
        assert_eq!(top_one[0].0, 4, "one profile prefers the blend: {top_one:?}");
        assert_eq!(top_two[0].0, 5, "two interests prefer the real shoe: {top_two:?}");
        assert!(ContentConfig::builder().interests(0).build().is_err());
        assert_eq!(crate::by_name("content-map-pop-k3", 1, 1).unwrap().name(), "content-map-pop-k3");
        assert!(crate::by_name("content-kx", 1, 1).is_err());
    }
}
