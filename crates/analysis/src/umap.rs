//! UMAP-style reduction (McInnes, Healy & Melville 2018): a fuzzy k-nearest-neighbour graph
//! of the data (per-point bandwidths so that every point's membership strengths sum to
//! log2 k, symmetrised by fuzzy union), laid out in a few dimensions by stochastic gradient
//! descent on the cross-entropy between that graph and the low-dimensional similarities
//! `1 / (1 + a d^{2b})`, with negative sampling. Exact neighbours, one thread and a seeded
//! generator make it deterministic. Meant for clustering afterwards (`min_dist` 0 packs
//! clusters tightly), as the UMAP authors recommend for HDBSCAN.

use warmstart_core::{top_k, Rng};

use crate::{rows, sq_dist, Error, Result};

/// Checked parameters of [`Umap`].
#[derive(Debug, Clone, PartialEq)]
pub struct UmapConfig {
    /// Neighbours per point in the fuzzy graph.
    pub n_neighbors: usize,
    /// Output dimension.
    pub n_components: usize,
    /// Smallest distance between embedded points (0 for clustering).
    pub min_dist: f32,
    /// Scale of the embedded points.
    pub spread: f32,
    /// Optimisation epochs.
    pub epochs: usize,
    /// Negative samples per positive one.
    pub negative_samples: usize,
    /// Initial learning rate (decays linearly to 0).
    pub learning_rate: f32,
    /// Seed of the initial layout and of the negative samples.
    pub seed: u64,
}

/// Builder of [`UmapConfig`].
#[derive(Debug, Clone)]
pub struct UmapConfigBuilder(UmapConfig);

impl UmapConfig {
    /// Defaults: 15 neighbours, 2 components, min_dist 0.1, spread 1, 500 epochs, 5 negatives,
    /// learning rate 1, seed 42.
    pub fn builder() -> UmapConfigBuilder {
        UmapConfigBuilder(UmapConfig {
            n_neighbors: 15,
            n_components: 2,
            min_dist: 0.1,
            spread: 1.0,
            epochs: 500,
            negative_samples: 5,
            learning_rate: 1.0,
            seed: 42,
        })
    }
}

impl UmapConfigBuilder {
    /// Neighbours per point.
    pub fn n_neighbors(mut self, k: usize) -> Self {
        self.0.n_neighbors = k;
        self
    }
    /// Output dimension.
    pub fn n_components(mut self, d: usize) -> Self {
        self.0.n_components = d;
        self
    }
    /// Minimum distance.
    pub fn min_dist(mut self, m: f32) -> Self {
        self.0.min_dist = m;
        self
    }
    /// Spread.
    pub fn spread(mut self, s: f32) -> Self {
        self.0.spread = s;
        self
    }
    /// Epochs.
    pub fn epochs(mut self, e: usize) -> Self {
        self.0.epochs = e;
        self
    }
    /// Negative samples per positive one.
    pub fn negative_samples(mut self, n: usize) -> Self {
        self.0.negative_samples = n;
        self
    }
    /// Initial learning rate.
    pub fn learning_rate(mut self, l: f32) -> Self {
        self.0.learning_rate = l;
        self
    }
    /// Seed.
    pub fn seed(mut self, s: u64) -> Self {
        self.0.seed = s;
        self
    }
    /// Validates.
    pub fn build(self) -> Result<UmapConfig> {
        let c = self.0;
        let bad = |name, value: String, rule: &str| Err(Error::InvalidParameter { name, value, rule: rule.into() });
        if c.n_neighbors < 2 {
            return bad("n_neighbors", c.n_neighbors.to_string(), "must be at least 2");
        }
        if c.n_components == 0 {
            return bad("n_components", "0".into(), "must be at least 1");
        }
        if !(c.spread > 0.0 && c.spread.is_finite()) {
            return bad("spread", c.spread.to_string(), "must be positive");
        }
        if !(c.min_dist >= 0.0 && c.min_dist <= c.spread) {
            return bad("min_dist", c.min_dist.to_string(), "must be in [0, spread]");
        }
        if c.epochs == 0 {
            return bad("epochs", "0".into(), "must be at least 1");
        }
        if !(c.learning_rate > 0.0 && c.learning_rate.is_finite()) {
            return bad("learning_rate", c.learning_rate.to_string(), "must be positive");
        }
        Ok(c)
    }
}

/// A fitted layout.
#[derive(Debug, Clone)]
pub struct Umap {
    /// Row-major `n × n_components` coordinates.
    pub embedding: Vec<f32>,
    /// Output dimension.
    pub dim: usize,
    /// Curve parameters `a`, `b` fitted to `min_dist` and `spread`.
    pub ab: (f32, f32),
}

impl Umap {
    /// Lays out the rows of `data` (`n × dim`, at least `n_neighbors + 1` rows);
    /// `on_epoch(epoch)` after every epoch.
    pub fn fit(config: &UmapConfig, data: &[f32], dim: usize, mut on_epoch: impl FnMut(usize)) -> Result<Umap> {
        let n = rows(data, dim)?;
        let k = config.n_neighbors;
        if n <= k {
            return Err(Error::BadInput(format!("{n} rows: UMAP with {k} neighbours needs at least {}", k + 1)));
        }
        let edges = fuzzy_graph(data, dim, n, k, config.epochs);
        let (a, b) = fit_ab(config.spread, config.min_dist);
        let out = config.n_components;
        let mut rng = Rng::new(config.seed);
        // initial layout: uniform in [-10, 10], as UMAP's random init
        let mut y: Vec<f32> = (0..n * out).map(|_| 20.0 * rng.unit_f32() - 10.0).collect();
        // every edge is sampled once every `max_w / w` epochs
        let max_w = edges.iter().map(|e| e.2).fold(0f32, f32::max);
        let period: Vec<f32> = edges.iter().map(|e| max_w / e.2).collect();
        let mut next: Vec<f32> = period.clone();
        let mut next_negative: Vec<f32> = period.iter().map(|p| p / config.negative_samples.max(1) as f32).collect();
        let neg_period = next_negative.clone();
        let clip = |g: f32| g.clamp(-4.0, 4.0);
        for epoch in 1..=config.epochs {
            let alpha = config.learning_rate * (1.0 - (epoch - 1) as f32 / config.epochs as f32);
            for (e, &(i, j, _)) in edges.iter().enumerate() {
                if next[e] > epoch as f32 {
                    continue;
                }
                let (i, j) = (i as usize, j as usize);
                let d2 = sq_dist(&y[i * out..(i + 1) * out], &y[j * out..(j + 1) * out]);
                let coeff = if d2 > 0.0 { -2.0 * a * b * d2.powf(b - 1.0) / (1.0 + a * d2.powf(b)) } else { 0.0 };
                for c in 0..out {
                    let g = clip(coeff * (y[i * out + c] - y[j * out + c])) * alpha;
                    y[i * out + c] += g;
                    y[j * out + c] -= g;
                }
                next[e] += period[e];
                // negative samples owed since the last visit
                let owed = ((epoch as f32 - next_negative[e]) / neg_period[e]).max(0.0) as usize;
                for _ in 0..owed {
                    let m = rng.below(n);
                    if m == i {
                        continue;
                    }
                    let d2 = sq_dist(&y[i * out..(i + 1) * out], &y[m * out..(m + 1) * out]);
                    let coeff = 2.0 * b / ((0.001 + d2) * (1.0 + a * d2.powf(b)));
                    for c in 0..out {
                        let g = if coeff > 0.0 { clip(coeff * (y[i * out + c] - y[m * out + c])) } else { 4.0 };
                        y[i * out + c] += g * alpha;
                    }
                }
                next_negative[e] += owed as f32 * neg_period[e];
            }
            on_epoch(epoch);
        }
        Ok(Umap { embedding: y, dim: out, ab: (a, b) })
    }
}

/// The symmetrised fuzzy k-NN graph as `(i, j, weight)` edges, each in both directions, with
/// weight in (0, 1].
fn fuzzy_graph(data: &[f32], dim: usize, n: usize, k: usize, epochs: usize) -> Vec<(u32, u32, f32)> {
    let target = (k as f32).log2();
    let mut directed: std::collections::HashMap<(u32, u32), f32> = std::collections::HashMap::new();
    let mut neg = vec![0f32; n];
    for i in 0..n {
        let row = &data[i * dim..(i + 1) * dim];
        for (j, v) in neg.iter_mut().enumerate() {
            *v = if j == i { f32::NEG_INFINITY } else { -sq_dist(row, &data[j * dim..(j + 1) * dim]).sqrt() };
        }
        let nn = top_k(&neg, k);
        let dists: Vec<f32> = nn.iter().map(|&j| -neg[j]).collect();
        let rho = dists.iter().copied().find(|&d| d > 0.0).unwrap_or(0.0);
        // bandwidth σ with Σ exp(-(d - ρ)/σ) = log2 k, by bisection
        let (mut lo, mut hi, mut sigma) = (0f32, f32::INFINITY, 1f32);
        for _ in 0..64 {
            let s: f32 = dists.iter().map(|&d| (-(d - rho).max(0.0) / sigma).exp()).sum();
            if (s - target).abs() < 1e-5 {
                break;
            }
            if s > target {
                hi = sigma;
                sigma = (lo + hi) / 2.0;
            } else {
                lo = sigma;
                sigma = if hi.is_finite() { (lo + hi) / 2.0 } else { sigma * 2.0 };
            }
        }
        let mean = dists.iter().sum::<f32>() / k as f32;
        sigma = sigma.max(1e-3 * mean).max(f32::MIN_POSITIVE);
        for (&j, &d) in nn.iter().zip(&dists) {
            directed.insert((i as u32, j as u32), (-(d - rho).max(0.0) / sigma).exp());
        }
    }
    // fuzzy union: w_ij + w_ji − w_ij w_ji
    let mut edges: Vec<(u32, u32, f32)> = Vec::new();
    for (&(i, j), &w) in &directed {
        let back = directed.get(&(j, i)).copied().unwrap_or(0.0);
        if i < j || back == 0.0 {
            let (lo, hi) = if i < j { (i, j) } else { (j, i) };
            let union = w + back - w * back;
            if union > 0.0 {
                edges.push((lo, hi, union));
            }
        }
    }
    // both directions, so that every point is the moving end of its edges (as in UMAP); edges
    // too weak to be sampled within the epochs are dropped
    let max_w = edges.iter().map(|e| e.2).fold(0f32, f32::max);
    edges.retain(|e| e.2 >= max_w / epochs as f32);
    let mut both: Vec<(u32, u32, f32)> = edges.iter().flat_map(|&(i, j, w)| [(i, j, w), (j, i, w)]).collect();
    both.sort_by_key(|x| (x.0, x.1));
    both
}

/// `a`, `b` of `1 / (1 + a x^{2b})` fitted by least squares to 1 below `min_dist` and
/// `exp(-(x - min_dist) / spread)` above, on 300 points of [0, 3 spread] (UMAP's curve fit),
/// by a coarse-to-fine grid search.
fn fit_ab(spread: f32, min_dist: f32) -> (f32, f32) {
    let xs: Vec<f32> = (1..=300).map(|i| 3.0 * spread * i as f32 / 300.0).collect();
    let target: Vec<f32> =
        xs.iter().map(|&x| if x < min_dist { 1.0 } else { (-(x - min_dist) / spread).exp() }).collect();
    let loss = |a: f32, b: f32| -> f32 {
        xs.iter().zip(&target).map(|(&x, &t)| (1.0 / (1.0 + a * x.powf(2.0 * b)) - t).powi(2)).sum()
    };
    let (mut a, mut b) = (1.0f32, 1.0f32);
    let (mut step_a, mut step_b) = (1.0f32, 0.5f32);
    for _ in 0..40 {
        let mut best = (loss(a, b), a, b);
        for da in [-1.0, 0.0, 1.0] {
            for db in [-1.0, 0.0, 1.0] {
                let (na, nb) = (a + da * step_a, b + db * step_b);
                if na > 0.0 && nb > 0.0 {
                    let l = loss(na, nb);
                    if l < best.0 {
                        best = (l, na, nb);
                    }
                }
            }
        }
        if best.1 == a && best.2 == b {
            step_a /= 2.0;
            step_b /= 2.0;
        }
        (a, b) = (best.1, best.2);
    }
    (a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blobs(per: usize, seed: u64) -> (Vec<f32>, Vec<usize>) {
        let mut rng = Rng::new(seed);
        let centres = [[0.0f32; 8], [6.0; 8], [-6.0; 8]];
        let mut data = Vec::new();
        let mut truth = Vec::new();
        for (c, centre) in centres.iter().enumerate() {
            for _ in 0..per {
                data.extend(centre.iter().map(|m| m + rng.normal_f32()));
                truth.push(c);
            }
        }
        (data, truth)
    }

    #[test]
    fn curve_parameters_match_umap_for_its_defaults() {
        // umap-learn's find_ab_params(1.0, 0.1) ≈ (1.577, 0.895); (1.0, 0.0) ≈ (1.929, 0.792)
        let (a, b) = fit_ab(1.0, 0.1);
        assert!((a - 1.577).abs() < 0.03 && (b - 0.895).abs() < 0.01, "{a} {b}");
        let (a, b) = fit_ab(1.0, 0.0);
        assert!((a - 1.929).abs() < 0.03 && (b - 0.792).abs() < 0.01, "{a} {b}");
    }

    #[test]
    fn graph_is_symmetric_with_weights_in_unit_interval() {
        let (data, _) = blobs(20, 1);
        let edges = fuzzy_graph(&data, 8, 60, 10, 200);
        assert!(edges.iter().all(|e| e.0 != e.1 && e.2 > 0.0 && e.2 <= 1.0 + 1e-6));
        for e in &edges {
            assert!(edges.binary_search_by(|x| (x.0, x.1).cmp(&(e.1, e.0))).is_ok_and(|p| edges[p].2 == e.2));
        }
        // every point keeps its nearest neighbour at full strength
        for i in 0..60u32 {
            assert!(edges.iter().any(|e| e.0 == i && e.2 > 0.999), "point {i}");
        }
    }

    #[test]
    fn separates_blobs_and_is_deterministic() {
        let (data, truth) = blobs(40, 3);
        let c = UmapConfig::builder().n_neighbors(10).min_dist(0.0).epochs(200).seed(7).build().unwrap();
        let mut epochs = 0;
        let u = Umap::fit(&c, &data, 8, |_| epochs += 1).unwrap();
        assert_eq!(epochs, 200);
        assert_eq!(u.embedding.len(), 240);
        // each point's nearest embedded neighbour is from its own blob
        let y = &u.embedding;
        for i in 0..120 {
            let nearest = (0..120)
                .filter(|&j| j != i)
                .min_by(|&p, &q| {
                    sq_dist(&y[2 * i..2 * i + 2], &y[2 * p..2 * p + 2])
                        .total_cmp(&sq_dist(&y[2 * i..2 * i + 2], &y[2 * q..2 * q + 2]))
                })
                .unwrap();
            assert_eq!(truth[nearest], truth[i], "point {i}");
        }
        let again = Umap::fit(&c, &data, 8, |_| ()).unwrap();
        assert_eq!(u.embedding, again.embedding);
        assert!(Umap::fit(&c, &data[..80], 8, |_| ()).is_err(), "10 rows, 10 neighbours");
        assert!(UmapConfig::builder().min_dist(2.0).build().is_err());
    }
}
