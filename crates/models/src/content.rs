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

use crate::linalg::{axpy, cholesky, cholesky_apply, dot};
use crate::{check, Error, Explanation, History, Recommender, Result, TrainData};

/// Hyper-parameters of [`ContentModel`].
#[derive(Debug, Clone, PartialEq)]
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

fn normalize(v: &mut [f32]) -> bool {
    let n = dot(v, v).sqrt();
    if n > 1e-12 {
        v.iter_mut().for_each(|x| *x /= n);
        true
    } else {
        false
    }
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
    /// An unfitted model.
    pub fn new(config: ContentConfig) -> Self {
        ContentModel {
            config,
            vectors: ItemVectors::default(),
            site_of: Vec::new(),
            pop: Vec::new(),
            maps: HashMap::new(),
        }
    }

    /// Per-site mean vectors of a history (normalised), sites in id order.
    fn site_means(&self, history: &History) -> Vec<(SiteId, Vec<f32>)> {
        self.site_groups(history, 1).into_iter().map(|(s, v, _)| (s, v)).collect()
    }

    /// Per source site, up to `k` interest centroids of the history's vectors (normalised,
    /// with their total weight), sites in id order.
    fn site_groups(&self, history: &History, k: usize) -> Vec<(SiteId, Vec<f32>, f32)> {
        let mut by_site: HashMap<SiteId, Vec<(ItemId, f32)>> = HashMap::new();
        for &(i, w) in history {
            if (i as usize) < self.vectors.n_items() && self.vectors.present[i as usize] && w > 0.0 {
                by_site.entry(self.site_of[i as usize]).or_default().push((i, w));
            }
        }
        let mut sites: Vec<SiteId> = by_site.keys().copied().collect();
        sites.sort_unstable();
        let mut out = Vec::new();
        for s in sites {
            let items = &by_site[&s];
            for (mut c, w) in self.interest_centroids(items, k) {
                if normalize(&mut c) {
                    out.push((s, c, w));
                }
            }
        }
        out
    }

    /// Spherical k-means over `items`' vectors (weighted), seeded deterministically with the
    /// heaviest item and then the item least similar to the seeds so far; returns the
    /// (unnormalised) weighted sums of each cluster and their weights.
    fn interest_centroids(&self, items: &[(ItemId, f32)], k: usize) -> Vec<(Vec<f32>, f32)> {
        let d = self.vectors.dim;
        let k = k.min(items.len()).max(1);
        let sum_of = |members: &mut dyn Iterator<Item = &(ItemId, f32)>| -> (Vec<f32>, f32) {
            let mut v = vec![0f32; d];
            let mut w = 0.0;
            for &(i, x) in members {
                axpy(x, self.vectors.row(i), &mut v);
                w += x;
            }
            (v, w)
        };
        if k == 1 {
            return vec![sum_of(&mut items.iter())];
        }
        let row = |i: ItemId| self.vectors.row(i);
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

    /// `m` carried into the target site's space by the learned mapping, when there is one.
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
        let means = self.site_means(history);
        if means.is_empty() {
            return None;
        }
        let mut p = vec![0f32; self.vectors.dim];
        for (s, m) in means {
            self.to_target(&m, s, target, &mut p);
        }
        normalize(&mut p).then_some(p)
    }

    /// The user's interest profiles in the target site's space: one per interest and
    /// source site with `interests > 1`, else the single [`profile`](Self::profile).
    pub fn profiles(&self, history: &History, target: SiteId) -> Vec<Vec<f32>> {
        if self.config.interests <= 1 {
            return self.profile(history, target).into_iter().collect();
        }
        self.site_groups(history, self.config.interests)
            .into_iter()
            .filter_map(|(s, m, _)| {
                let mut p = vec![0f32; self.vectors.dim];
                self.to_target(&m, s, target, &mut p);
                normalize(&mut p).then_some(p)
            })
            .collect()
    }

    fn learn_maps(&mut self, data: &TrainData) -> Result<()> {
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

impl Recommender for ContentModel {
    fn name(&self) -> String {
        let base = match (self.config.mapped, self.config.pop_weight > 0.0) {
            (false, false) => "content",
            (false, true) => "content-pop",
            (true, false) => "content-map",
            (true, true) => "content-map-pop",
        };
        if self.config.interests > 1 {
            format!("{base}-k{}", self.config.interests)
        } else {
            base.into()
        }
    }

    fn fit(&mut self, data: &TrainData) -> Result<()> {
        let v = data
            .item_vectors
            .ok_or_else(|| Error::BadData("the content model needs item vectors (run `warmstart embed`)".into()))?;
        if v.n_items() != data.dataset.n_items() {
            return Err(Error::BadData(format!("{} item vectors for {} items", v.n_items(), data.dataset.n_items())));
        }
        self.vectors = v.clone();
        self.site_of = data.dataset.products.iter().map(|p| p.site).collect();
        let mut counts = vec![0f32; data.matrix.n_cols()];
        for &c in data.matrix.indices() {
            counts[c as usize] += 1.0;
        }
        let max = counts.iter().copied().fold(0.0f32, f32::max);
        self.pop = counts.iter().map(|c| (1.0 + c).ln() / (1.0 + max).ln().max(1e-6)).collect();
        self.maps.clear();
        if self.config.mapped {
            self.learn_maps(data)?;
        }
        Ok(())
    }

    fn score(&self, history: &History, items: Range<ItemId>, out: &mut [f32]) -> Result<()> {
        if self.pop.is_empty() {
            return Err(Error::NotFitted(self.name()));
        }
        let target = self.site_of.get(items.start as usize).copied().unwrap_or(0);
        let beta = self.config.pop_weight;
        let profiles = self.profiles(history, target);
        for (o, i) in out.iter_mut().zip(items) {
            let prior = self.pop[i as usize];
            if profiles.is_empty() {
                *o = prior;
                continue;
            }
            let sim = if self.vectors.present[i as usize] {
                let v = self.vectors.row(i);
                profiles.iter().map(|p| dot(p, v)).fold(f32::NEG_INFINITY, f32::max)
            } else {
                -1.0
            };
            *o = (1.0 - beta) * sim + beta * prior;
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
        // Maximal marginal relevance over a pool of the best 20k candidates.
        let pool: Vec<usize> = top_k(&scores, (k * 20).max(100));
        let mut chosen: Vec<usize> = Vec::with_capacity(k);
        let mut max_sim = vec![f32::NEG_INFINITY; pool.len()];
        while chosen.len() < k.min(pool.len()) {
            let mut best: Option<(usize, f32)> = None;
            for (p, &c) in pool.iter().enumerate() {
                if chosen.contains(&c) {
                    continue;
                }
                let redundancy = if chosen.is_empty() { 0.0 } else { max_sim[p] };
                let v = lambda * scores[c] - (1.0 - lambda) * redundancy;
                if best.is_none_or(|b| v > b.1) {
                    best = Some((p, v));
                }
            }
            let Some((bp, _)) = best else { break };
            let c = pool[bp];
            chosen.push(c);
            let vc = items.start + c as ItemId;
            for (p, &o) in pool.iter().enumerate() {
                let vo = items.start + o as ItemId;
                let s = if self.vectors.present[vc as usize] && self.vectors.present[vo as usize] {
                    dot(self.vectors.row(vc), self.vectors.row(vo))
                } else {
                    0.0
                };
                max_sim[p] = max_sim[p].max(s);
            }
        }
        Ok(chosen.into_iter().map(|i| (items.start + i as ItemId, scores[i])).collect())
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
        let mut plain = ContentModel::new(ContentConfig::builder().build().unwrap());
        plain.fit(&data).unwrap();
        let mut mapped = ContentModel::new(ContentConfig::builder().mapped(true).ridge(0.01).build().unwrap());
        mapped.fit(&data).unwrap();
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
        let mut mmr =
            ContentModel::new(ContentConfig::builder().mapped(true).ridge(0.01).mmr_lambda(0.3).build().unwrap());
        mmr.fit(&data).unwrap();
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
        let mut one = ContentModel::new(ContentConfig::builder().build().unwrap());
        one.fit(&data).unwrap();
        let mut two = ContentModel::new(ContentConfig::builder().interests(2).build().unwrap());
        two.fit(&data).unwrap();
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
