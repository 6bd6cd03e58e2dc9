//! A learned blend of several models: each member's scores of the target shop are
//! standardised per request (z-scores over the shop's items), and the blend is their weighted
//! sum. The weights are chosen on validation users carved out of the training users (members
//! fitted without them; each has one shop's items hidden and ranked from the rest, as the
//! cold-start protocol does), by NDCG@10 over a grid on the simplex; then the members are fitted
//! again on all the training data. No test user ever informs the weights. A second weight
//! vector serves returning shoppers (histories holding items of the ranked shop): it is chosen
//! on one leave-one-item-out case per validation user, and cold-start requests never use it.

use std::ops::Range;
use std::path::Path;

use rayon::prelude::*;
use warmstart_core::{CsrMatrix, ItemId, Rng};

use crate::artifact::{ArtifactReader, ArtifactWriter};
use crate::{check, Error, Explanation, Fit, History, Recommender, Result, TrainData};

/// Kind of a saved blend.
pub(crate) const KIND: &str = "blend";

/// Fewest validation cases a history-length bucket needs for weights of its own (with
/// `by_history`); a smaller bucket keeps the overall weights.
pub const MIN_BUCKET_CASES: usize = 50;

/// History-length buckets of `by_history` (other-shop items: 1–2, 3–5, 6+; none counts as
/// the first).
fn history_bucket(n: usize) -> usize {
    match n {
        0..=2 => 0,
        3..=5 => 1,
        _ => 2,
    }
}
const BUCKETS: usize = 3;

/// Members of `blend`; `blend-content` adds `content`.
pub const DEFAULT_MEMBERS: [&str; 4] = ["itemknn", "rp3beta", "als", "pop"];

/// Hyper-parameters of [`Blend`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BlendConfig {
    members: Vec<String>,
    validation_share: f64,
    step: f32,
    seed: u64,
    threads: usize,
    /// Weights per history-length bucket as well (chosen on that bucket's validation users).
    #[serde(default)]
    by_history: bool,
    /// How each member's scores are put on one scale before they are weighted.
    #[serde(default)]
    normalisation: Normalisation,
    /// Weights for returning shoppers as well: chosen on one leave-one-item-out case per
    /// validation user (an item of theirs ranked in its shop from all their other items, that
    /// shop's included, as next-item protocols ask) and used when the history holds items of
    /// the ranked shop; histories from other shops only keep the cold-start weights.
    #[serde(default)]
    item_cases: bool,
    /// Disjoint validation folds (each `validation_share` of the cross-shop training users,
    /// members fitted without that fold): the weights are chosen on the cases of every fold
    /// together (cross-fitting), so more cases decide them at the cost of one member fit
    /// per fold.
    #[serde(default = "one_fold")]
    folds: usize,
}

/// Artifacts saved before folds existed were fitted on one fold.
fn one_fold() -> usize {
    1
}

/// How a blend puts its members' scores on one scale (per request, over the shop's items).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Normalisation {
    /// z-scores: `(s − mean) / sd`.
    #[default]
    Zscore,
    /// Reciprocal rank, `60 / (60 + rank)` (rank 0 the best; ties share the better rank), as
    /// reciprocal-rank fusion does: a member's few very high scores cannot dominate.
    Rank,
}

impl Normalisation {
    fn apply(self, scores: &mut [f32]) {
        match self {
            Normalisation::Zscore => standardise(scores),
            Normalisation::Rank => reciprocal_rank(scores),
        }
    }
}

/// Scores replaced by `K / (K + rank)` with `K` = 60 (non-finite scores rank last).
fn reciprocal_rank(scores: &mut [f32]) {
    const K: f32 = 60.0;
    let key = |x: f32| if x.is_finite() { x } else { f32::NEG_INFINITY };
    let mut order: Vec<u32> = (0..scores.len() as u32).collect();
    order.sort_unstable_by(|&a, &b| key(scores[b as usize]).total_cmp(&key(scores[a as usize])));
    let mut out = vec![0f32; scores.len()];
    let mut rank = 0usize;
    for (p, &i) in order.iter().enumerate() {
        if p > 0 && key(scores[i as usize]) != key(scores[order[p - 1] as usize]) {
            rank = p;
        }
        out[i as usize] = K / (K + rank as f32);
    }
    scores.copy_from_slice(&out);
}

/// Builder of [`BlendConfig`].
#[derive(Debug, Clone)]
pub struct BlendBuilder(BlendConfig);

impl BlendConfig {
    /// Starts a builder: item-kNN, RP3beta, ALS and popularity (the grid gives a member
    /// weight 0 when it does not help on validation), five validation folds of 10% of the
    /// cross-shop training users each, weight step 0.1, weights for returning shoppers too.
    pub fn builder() -> BlendBuilder {
        BlendBuilder(BlendConfig {
            members: DEFAULT_MEMBERS.iter().map(|m| m.to_string()).collect(),
            validation_share: 0.1,
            step: 0.1,
            seed: 42,
            threads: 0,
            by_history: false,
            normalisation: Normalisation::Zscore,
            item_cases: true,
            folds: 5,
        })
    }
    /// The member model names.
    pub fn members(&self) -> &[String] {
        &self.members
    }
}

impl BlendBuilder {
    /// Member model names (as `by_name` reads them).
    pub fn members(mut self, v: Vec<String>) -> Self {
        self.0.members = v;
        self
    }
    /// Share of the cross-shop training users that choose the weights.
    pub fn validation_share(mut self, v: f64) -> Self {
        self.0.validation_share = v;
        self
    }
    /// Grid step of the weights.
    pub fn step(mut self, v: f32) -> Self {
        self.0.step = v;
        self
    }
    /// Seed.
    pub fn seed(mut self, v: u64) -> Self {
        self.0.seed = v;
        self
    }
    /// Threads of members that use them (0: all cores).
    pub fn threads(mut self, v: usize) -> Self {
        self.0.threads = v;
        self
    }
    /// Also choose weights per history-length bucket (other-shop items 1–2, 3–5, 6+) on that
    /// bucket's validation users, where it has at least [`MIN_BUCKET_CASES`] of them.
    pub fn by_history(mut self, v: bool) -> Self {
        self.0.by_history = v;
        self
    }
    /// Also choose weights for histories that hold items of the ranked shop, on one
    /// leave-one-item-out case per validation user.
    pub fn item_cases(mut self, v: bool) -> Self {
        self.0.item_cases = v;
        self
    }
    /// How members' scores are put on one scale.
    pub fn normalisation(mut self, v: Normalisation) -> Self {
        self.0.normalisation = v;
        self
    }
    /// Validation folds (cross-fitting): `n` disjoint sets of validation users, each with
    /// members fitted without it.
    pub fn folds(mut self, n: usize) -> Self {
        self.0.folds = n;
        self
    }
    /// Validates.
    pub fn build(self) -> Result<BlendConfig> {
        let c = self.0;
        check("members", (2..=6).contains(&c.members.len()), c.members.len(), "must be 2 to 6 models")?;
        if let Some(m) = c.members.iter().find(|m| m.starts_with("blend")) {
            return Err(Error::ModelParameter(format!("a blend cannot contain a blend (`{m}`)")));
        }
        check(
            "validation_share",
            c.validation_share > 0.0 && c.validation_share < 0.5,
            c.validation_share,
            "must be in (0, 0.5)",
        )?;
        check("step", c.step > 0.0 && c.step <= 0.5, c.step, "must be in (0, 0.5]")?;
        check(
            "folds",
            c.folds >= 1 && c.folds as f64 * c.validation_share <= 1.0 + 1e-9,
            c.folds,
            "must be at least 1, and folds × validation share at most 1",
        )?;
        Ok(c)
    }
}

/// The fitted blend.
pub struct Blend {
    config: BlendConfig,
    /// The overall weights, then (with `by_history`) one vector per history-length bucket.
    weights: Vec<Vec<f32>>,
    /// Fitted members, `None` where the weight is 0.
    members: Vec<Option<Box<dyn Recommender>>>,
    /// The chosen weights and their validation NDCG@10, and each member's alone (empty when
    /// loaded).
    notes: Vec<String>,
}

/// Member scores standardised over the scored items: `(s - mean) / std` (0 when constant);
/// non-finite scores become the lowest finite one.
fn standardise(scores: &mut [f32]) {
    let finite: Vec<f32> = scores.iter().copied().filter(|x| x.is_finite()).collect();
    if finite.is_empty() {
        scores.fill(0.0);
        return;
    }
    let n = finite.len() as f64;
    let mean = finite.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = finite.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
    let low = finite.iter().copied().fold(f32::INFINITY, f32::min);
    let sd = var.sqrt();
    for s in scores.iter_mut() {
        let x = if s.is_finite() { *s } else { low };
        *s = if sd > 1e-12 { ((x as f64 - mean) / sd) as f32 } else { 0.0 };
    }
}

/// Every weight vector of `m` non-negative multiples of `step` summing to 1.
fn simplex(m: usize, step: f32) -> Vec<Vec<f32>> {
    let units = (1.0 / step).round() as usize;
    let mut out = Vec::new();
    let mut cur = vec![0usize; m];
    fn rec(i: usize, left: usize, cur: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
        if i + 1 == cur.len() {
            cur[i] = left;
            out.push(cur.clone());
            return;
        }
        for k in 0..=left {
            cur[i] = k;
            rec(i + 1, left - k, cur, out);
        }
    }
    let mut all = Vec::new();
    rec(0, units, &mut cur, &mut all);
    for w in all {
        out.push(w.iter().map(|&k| k as f32 / units as f32).collect());
    }
    out
}

/// Candidates per member in a validation case: each member's top items are scanned first
/// when counting the items that outrank a relevant one.
const CANDIDATES_PER_MEMBER: usize = 100;

/// One validation user's standardised member scores of the hidden shop, laid out for the grid
/// search: item-major (`members` scores per item), the union of every member's top
/// [`CANDIDATES_PER_MEMBER`] items first, then the rest.
struct ValidationCase {
    /// Scores, item-major, in `order`.
    scores: Vec<f32>,
    /// Position in the shop of each laid-out item.
    order: Vec<u32>,
    /// Laid-out items `0..candidates` are the members' top items (and the relevant ones).
    candidates: usize,
    /// Each member's lowest score among its top items: any item past `candidates` scores at
    /// most this under that member.
    thresholds: Vec<f32>,
    /// Laid-out positions of the relevant items.
    relevant: Vec<usize>,
    /// History-length bucket.
    bucket: usize,
    /// The history holds items of the ranked shop (a returning shopper's case).
    warm: bool,
}

impl ValidationCase {
    /// Lays out `per_member` scores (standardised, one vector per member over the shop's
    /// items) with the relevant positions `relevant`.
    fn new(per_member: &[Vec<f32>], relevant: &[usize], bucket: usize, warm: bool) -> ValidationCase {
        let n = per_member.first().map_or(0, Vec::len);
        let m = per_member.len();
        let top = CANDIDATES_PER_MEMBER.min(n);
        let mut is_candidate = vec![false; n];
        let mut thresholds = Vec::with_capacity(m);
        let mut idx: Vec<u32> = (0..n as u32).collect();
        for s in per_member {
            if top == 0 {
                thresholds.push(f32::NEG_INFINITY);
                continue;
            }
            if top < n {
                idx.select_nth_unstable_by(top - 1, |&a, &b| s[b as usize].total_cmp(&s[a as usize]));
            }
            thresholds.push(idx[..top].iter().map(|&i| s[i as usize]).fold(f32::INFINITY, f32::min));
            for &i in &idx[..top] {
                is_candidate[i as usize] = true;
            }
        }
        for &r in relevant {
            is_candidate[r] = true;
        }
        let mut order: Vec<u32> = (0..n as u32).filter(|&i| is_candidate[i as usize]).collect();
        let candidates = order.len();
        order.extend((0..n as u32).filter(|&i| !is_candidate[i as usize]));
        let mut scores = Vec::with_capacity(n * m);
        for &i in &order {
            scores.extend(per_member.iter().map(|s| s[i as usize]));
        }
        let mut at = vec![0usize; n];
        for (p, &i) in order.iter().enumerate() {
            at[i as usize] = p;
        }
        let relevant = relevant.iter().map(|&r| at[r]).collect();
        ValidationCase { scores, order, candidates, thresholds, relevant, bucket, warm }
    }

    /// The blended score of laid-out item `p`: the members' weighted sum in member order,
    /// skipping zero weights (the same float operations as serving's blend).
    fn blended(&self, w: &[f32], p: usize) -> f32 {
        let row = &self.scores[p * w.len()..(p + 1) * w.len()];
        let mut b = 0f32;
        for (wk, x) in w.iter().zip(row) {
            if *wk > 0.0 {
                b += wk * x;
            }
        }
        b
    }

    /// NDCG@10 under weights `w`, exactly as ranking every item of the shop (ties go to the
    /// lower shop position) but counting only until a relevant item is known to be past 10:
    /// the members' top items come first, and the rest is scanned only when a relevant item
    /// could still be outranked by one of them (its blended score is at most the weighted
    /// sum of the member thresholds; float rounding is monotone, so the bound is exact).
    fn ndcg10(&self, w: &[f32], blended: &mut Vec<f32>) -> f64 {
        let n = self.order.len();
        blended.clear();
        blended.extend((0..self.candidates).map(|p| self.blended(w, p)));
        let mut bound = 0f32;
        for (wk, t) in w.iter().zip(&self.thresholds) {
            if *wk > 0.0 {
                bound += wk * t;
            }
        }
        let mut ranks: Vec<usize> = Vec::with_capacity(self.relevant.len());
        for &r in &self.relevant {
            let (sr, ir) = (blended[r], self.order[r]);
            let beats = |p: usize, x: f32| x > sr || (x == sr && self.order[p] < ir);
            let mut count = (0..self.candidates).filter(|&p| beats(p, blended[p])).take(10).count();
            if count < 10 && sr <= bound {
                if blended.len() < n {
                    let rest: Vec<f32> = (self.candidates..n).map(|p| self.blended(w, p)).collect();
                    blended.extend(rest);
                }
                count += (self.candidates..n).filter(|&p| beats(p, blended[p])).take(10 - count).count();
            }
            ranks.push(count + 1);
        }
        ranks.sort_unstable();
        let dcg: f64 = ranks.iter().filter(|&&k| k <= 10).map(|&k| 1.0 / ((k + 1) as f64).log2()).sum();
        let ideal: f64 = (1..=self.relevant.len().min(10)).map(|k| 1.0 / ((k + 1) as f64).log2()).sum();
        if ideal > 0.0 {
            dcg / ideal
        } else {
            0.0
        }
    }
}

impl BlendConfig {
    fn fit_members(&self, data: &TrainData) -> Result<Vec<Box<dyn Recommender>>> {
        self.members.iter().map(|m| crate::by_name(m, self.threads, self.seed)?.fit(data)).collect()
    }

    /// The validation cases of one fold: the members fitted without the users `validation`,
    /// each of them with one shop hidden and ranked from their other shops (a cold-start
    /// case), and, with `item_cases`, one item of theirs ranked in its shop from all their
    /// other items where those include items of that shop (a returning shopper's case).
    fn fold_cases(
        &self,
        data: &TrainData,
        validation: &[usize],
        rng: &mut Rng,
        item_rng: &mut Rng,
    ) -> Result<Vec<ValidationCase>> {
        let d = data.dataset;
        let m = data.matrix;
        let held: std::collections::HashSet<usize> = validation.iter().copied().collect();
        let triplets: Vec<(u32, u32, f32)> = (0..m.n_rows())
            .filter(|u| !held.contains(u))
            .flat_map(|u| m.row_indices(u).iter().zip(m.row_values(u)).map(move |(&i, &v)| (u as u32, i, v)))
            .collect();
        let reduced = CsrMatrix::from_triplets(m.n_rows(), m.n_cols(), &triplets);
        let part = TrainData { dataset: d, matrix: &reduced, item_vectors: data.item_vectors };
        let members = self.fit_members(&part)?;
        // a case: the members' normalised scores of the target shop for a history
        let case = |history: &[(ItemId, f32)], target: u32, relevant: &[ItemId]| -> Result<ValidationCase> {
            let range = d.sites[target as usize].items.clone();
            let mut per_member = Vec::with_capacity(members.len());
            for model in &members {
                let mut s = vec![0f32; range.len()];
                model.score(history, range.clone(), &mut s)?;
                self.normalisation.apply(&mut s);
                per_member.push(s);
            }
            let relevant: Vec<usize> = relevant.iter().map(|c| (c - range.start) as usize).collect();
            let other_shop = history.iter().filter(|(i, _)| !range.contains(i)).count();
            Ok(ValidationCase::new(&per_member, &relevant, history_bucket(other_shop), other_shop < history.len()))
        };
        let mut cases: Vec<ValidationCase> = Vec::new();
        for &u in validation {
            let cols = m.row_indices(u);
            let mut sites: Vec<u32> = cols.iter().map(|&c| d.site_of(c)).collect();
            sites.sort_unstable();
            sites.dedup();
            let target = sites[rng.below(sites.len())];
            let history: Vec<(ItemId, f32)> = cols
                .iter()
                .zip(m.row_values(u))
                .filter(|(c, _)| d.site_of(**c) != target)
                .map(|(&c, &v)| (c, v))
                .collect();
            let relevant: Vec<ItemId> = cols.iter().copied().filter(|&c| d.site_of(c) == target).collect();
            cases.push(case(&history, target, &relevant)?);
        }
        if self.item_cases {
            for &u in validation {
                let cols = m.row_indices(u);
                let k = item_rng.below(cols.len());
                let history: Vec<(ItemId, f32)> = cols
                    .iter()
                    .zip(m.row_values(u))
                    .enumerate()
                    .filter(|&(j, _)| j != k)
                    .map(|(_, (&c, &v))| (c, v))
                    .collect();
                let returning = case(&history, d.site_of(cols[k]), &[cols[k]])?;
                if returning.warm {
                    cases.push(returning);
                }
            }
        }
        Ok(cases)
    }

    /// Fits the members without the validation users (per fold), chooses the weights on
    /// them, and fits the members again on everything.
    pub fn fit_blend(&self, data: &TrainData) -> Result<Blend> {
        let d = data.dataset;
        let m = data.matrix;
        // validation users: training users active on two or more shops
        let mut cross: Vec<usize> = (0..m.n_rows())
            .filter(|&u| {
                let mut sites: Vec<u32> = m.row_indices(u).iter().map(|&i| d.site_of(i)).collect();
                sites.dedup();
                sites.sort_unstable();
                sites.dedup();
                sites.len() >= 2
            })
            .collect();
        let mut rng = Rng::new(self.seed ^ 0x0042_4c45_4e44);
        rng.shuffle(&mut cross);
        let n_val = ((cross.len() as f64) * self.validation_share).round() as usize;
        if n_val < 10 {
            return Err(Error::BadData(format!(
                "a blend needs validation users: {} training users are active on two shops",
                cross.len()
            )));
        }
        let grid = simplex(self.members.len(), self.step);
        // NDCG@10 of every case under every weight vector (grid-major), over every fold:
        // hidden-shop cases and returning shoppers' cases apart
        let mut cold_ndcg: Vec<Vec<f64>> = vec![Vec::new(); grid.len()];
        let mut warm_ndcg: Vec<Vec<f64>> = vec![Vec::new(); grid.len()];
        let mut cold_buckets: Vec<usize> = Vec::new();
        let mut item_rng = Rng::new(self.seed ^ 0x4954_454d);
        for fold in 0..self.folds {
            let mut validation: Vec<usize> = cross[fold * n_val..((fold + 1) * n_val).min(cross.len())].to_vec();
            validation.sort_unstable();
            let cases = self.fold_cases(data, &validation, &mut rng, &mut item_rng)?;
            let per_case: Vec<Vec<f64>> = grid
                .par_iter()
                .map(|w| {
                    let mut blended = Vec::new();
                    cases.iter().map(|case| case.ndcg10(w, &mut blended)).collect()
                })
                .collect();
            for (g, scores) in per_case.into_iter().enumerate() {
                for (case, x) in cases.iter().zip(scores) {
                    if case.warm {
                        warm_ndcg[g].push(x);
                    } else {
                        cold_ndcg[g].push(x);
                    }
                }
            }
            cold_buckets.extend(cases.iter().filter(|c| !c.warm).map(|c| c.bucket));
        }
        // the best weight vector on a subset of the cases (the first on ties), and its mean
        let best_on = |table: &[Vec<f64>], subset: &[usize]| -> Option<(f64, usize)> {
            let mut best: Option<(f64, usize)> = None;
            for (g, scores) in table.iter().enumerate() {
                let mean = subset.iter().map(|&c| scores[c]).sum::<f64>() / subset.len().max(1) as f64;
                if best.is_none_or(|b| mean > b.0 + 1e-12) {
                    best = Some((mean, g));
                }
            }
            best
        };
        // the cold-start weights: on the hidden-shop cases
        let cold: Vec<usize> = (0..cold_buckets.len()).collect();
        let (score, g) = best_on(&cold_ndcg, &cold).ok_or_else(|| Error::BadData("empty weight grid".into()))?;
        let mut weights = vec![grid[g].clone()];
        let shown = |w: &[f32]| -> String {
            self.members.iter().zip(w).map(|(m, x)| format!("{m} {x:.2}")).collect::<Vec<_>>().join(", ")
        };
        let mut alone = vec![0f64; self.members.len()];
        for (w, scores) in grid.iter().zip(&cold_ndcg) {
            if let Some(k) = w.iter().position(|&x| x == 1.0) {
                alone[k] = cold.iter().map(|&c| scores[c]).sum::<f64>() / cold.len().max(1) as f64;
            }
        }
        let alone: Vec<String> = self.members.iter().zip(&alone).map(|(m, x)| format!("{m} {x:.4}")).collect();
        let mut notes = vec![format!(
            "cold-start weights {}: validation NDCG@10 {score:.4} on {} hidden-shop cases ({} fold{}; members alone: {})",
            shown(&grid[g]),
            cold.len(),
            self.folds,
            if self.folds == 1 { "" } else { "s" },
            alone.join(", ")
        )];
        if self.by_history {
            for bucket in 0..BUCKETS {
                let subset: Vec<usize> = cold.iter().copied().filter(|&c| cold_buckets[c] == bucket).collect();
                let chosen = if subset.len() >= MIN_BUCKET_CASES { best_on(&cold_ndcg, &subset) } else { None };
                let label = ["1-2", "3-5", "6+"][bucket];
                match chosen {
                    Some((mean, gb)) => {
                        weights.push(grid[gb].clone());
                        notes.push(format!(
                            "history {label} weights {}: validation NDCG@10 {mean:.4} on {} cases",
                            shown(&grid[gb]),
                            subset.len()
                        ));
                    }
                    None => weights.push(weights[0].clone()),
                }
            }
        }
        if self.item_cases {
            let warm: Vec<usize> = (0..warm_ndcg.first().map_or(0, Vec::len)).collect();
            match (warm.len() >= MIN_BUCKET_CASES).then(|| best_on(&warm_ndcg, &warm)).flatten() {
                Some((mean, gw)) => {
                    weights.push(grid[gw].clone());
                    notes.push(format!(
                        "returning-shopper weights {}: validation NDCG@10 {mean:.4} on {} leave-one-item-out cases",
                        shown(&grid[gw]),
                        warm.len()
                    ));
                }
                None => weights.push(weights[0].clone()),
            }
        }
        // members with weight 0 everywhere are dropped
        let used: Vec<f32> =
            (0..self.members.len()).map(|k| weights.iter().map(|w| w[k]).fold(0.0, f32::max)).collect();
        let members = self
            .members
            .iter()
            .zip(&used)
            .map(
                |(m, &w)| {
                    if w > 0.0 {
                        crate::by_name(m, self.threads, self.seed)?.fit(data).map(Some)
                    } else {
                        Ok(None)
                    }
                },
            )
            .collect::<Result<Vec<_>>>()?;
        Ok(Blend { config: self.clone(), weights, members, notes })
    }
}

impl Fit for BlendConfig {
    fn name(&self) -> String {
        self.model_name()
    }
    fn fit(&self, data: &TrainData) -> Result<Box<dyn Recommender>> {
        Ok(Box::new(self.fit_blend(data)?))
    }
}

impl Blend {
    /// The members' overall weights, in member order.
    pub fn weights(&self) -> &[f32] {
        &self.weights[0]
    }

    /// The weights used for a history of `n` other-shop items, `warm` when it also holds
    /// items of the ranked shop.
    pub fn weights_for(&self, n: usize, warm: bool) -> &[f32] {
        if warm && self.config.item_cases {
            if let Some(w) = self.weights.last() {
                return w;
            }
        }
        let buckets = if self.config.by_history { BUCKETS } else { 0 };
        if buckets > 0 {
            return &self.weights[1 + history_bucket(n)];
        }
        &self.weights[0]
    }

    pub(crate) fn load(r: &ArtifactReader, item_vectors: Option<&warmstart_core::ItemVectors>) -> Result<Blend> {
        let config: BlendConfig = r.config()?;
        // the cold-start vector, one per history bucket (`by_history`), then the returning
        // shoppers' (`item_cases`); artifacts before `by_history` hold a single vector
        let weights: Vec<Vec<f32>> = r.extra().or_else(|_| r.extra::<Vec<f32>>().map(|w| vec![w]))?;
        let n = config.members.len();
        if weights.is_empty()
            || weights.len() != 1 + if config.by_history { BUCKETS } else { 0 } + usize::from(config.item_cases)
            || weights.iter().any(|w| w.len() != n || w.iter().any(|x| !x.is_finite()))
        {
            return Err(r.error(format!("weights of the wrong shape or not finite for {n} members")));
        }
        let members = (0..n)
            .map(|k| {
                if weights.iter().any(|w| w[k] > 0.0) {
                    crate::load(&member_dir(r.dir(), k), item_vectors).map(Some)
                } else {
                    Ok(None)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let sizes: Vec<usize> = members.iter().flatten().map(|m| m.n_items()).collect();
        if sizes.is_empty() || sizes.iter().any(|&n| n != sizes[0]) {
            return Err(r.error("no member, or members fitted on different items"));
        }
        Ok(Blend { config, weights, members, notes: Vec::new() })
    }
}

fn member_dir(dir: &Path, k: usize) -> std::path::PathBuf {
    dir.join(format!("member-{k}"))
}

impl BlendConfig {
    /// The name `by_name` reads back: `blend`, `blend-content` or `blend:members=a+b`.
    pub fn model_name(&self) -> String {
        let mut name = self.members_name();
        let defaults = BlendConfig::builder().0;
        if self.step != defaults.step {
            name += &format!(":step={}", self.step);
        }
        if self.validation_share != defaults.validation_share {
            name += &format!(":validation={}", self.validation_share);
        }
        if self.folds != defaults.folds {
            name += &format!(":folds={}", self.folds);
        }
        if self.normalisation == Normalisation::Rank {
            name += ":norm=rank";
        }
        if !self.item_cases {
            name += ":items=0";
        }
        if self.by_history {
            name += ":history=1";
        }
        name
    }

    fn members_name(&self) -> String {
        let m: Vec<&str> = self.members.iter().map(String::as_str).collect();
        if m == DEFAULT_MEMBERS {
            "blend".into()
        } else if m.len() == DEFAULT_MEMBERS.len() + 1
            && m[..DEFAULT_MEMBERS.len()] == DEFAULT_MEMBERS
            && m[4] == "content"
        {
            "blend-content".into()
        } else {
            format!("blend:members={}", self.members.join("+"))
        }
    }
}

impl Recommender for Blend {
    fn name(&self) -> String {
        self.config.model_name()
    }

    fn n_items(&self) -> usize {
        self.members.iter().flatten().next().map(|m| m.n_items()).unwrap_or(0)
    }

    fn score_items(&self, history: &History, items: Range<ItemId>, out: &mut [f32]) -> Result<()> {
        out.fill(0.0);
        let mut s = vec![0f32; out.len()];
        let other_shop = history.iter().filter(|(i, _)| !items.contains(i)).count();
        for (w, model) in self.weights_for(other_shop, other_shop < history.len()).iter().zip(&self.members) {
            if let Some(model) = model.as_ref().filter(|_| *w > 0.0) {
                model.score(history, items.clone(), &mut s)?;
                self.config.normalisation.apply(&mut s);
                for (o, x) in out.iter_mut().zip(&s) {
                    *o += w * x;
                }
            }
        }
        Ok(())
    }

    fn explain(&self, history: &History, items: &[ItemId]) -> Option<Vec<Explanation>> {
        let heaviest = self.weights[0].iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|e| e.0)?;
        self.members[heaviest].as_ref()?.explain(history, items)
    }

    fn fit_notes(&self) -> Vec<String> {
        self.notes.clone()
    }

    fn save(&self, dir: &Path) -> Result<()> {
        for (k, m) in self.members.iter().enumerate() {
            if let Some(m) = m {
                m.save(&member_dir(dir, k))?;
            }
        }
        ArtifactWriter::new(KIND, &self.config)?.extra(&self.weights)?.write(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NDCG@10 by ranking every item (the definition the grid search must reproduce).
    fn ndcg10_every_item(per_member: &[Vec<f32>], w: &[f32], relevant: &[usize]) -> f64 {
        let n = per_member[0].len();
        let blended: Vec<f32> = (0..n)
            .map(|i| {
                let mut b = 0f32;
                for (wk, s) in w.iter().zip(per_member) {
                    if *wk > 0.0 {
                        b += wk * s[i];
                    }
                }
                b
            })
            .collect();
        let mut ranks: Vec<usize> = relevant
            .iter()
            .map(|&r| 1 + (0..n).filter(|&i| blended[i] > blended[r] || (blended[i] == blended[r] && i < r)).count())
            .collect();
        ranks.sort_unstable();
        let dcg: f64 = ranks.iter().filter(|&&k| k <= 10).map(|&k| 1.0 / ((k + 1) as f64).log2()).sum();
        let ideal: f64 = (1..=relevant.len().min(10)).map(|k| 1.0 / ((k + 1) as f64).log2()).sum();
        dcg / ideal
    }

    #[test]
    fn the_grid_search_ranks_as_ranking_every_item() {
        let mut rng = Rng::new(7);
        let mut nonzero = 0;
        for case in 0..60 {
            let n = [5, 40, 150, 400, 1500][case % 5];
            let m = 2 + case % 3;
            // members that agree in part (a shared signal), coarse values for ties
            let shared: Vec<f32> = (0..n).map(|_| rng.unit_f32()).collect();
            let per_member: Vec<Vec<f32>> = (0..m)
                .map(|k| {
                    let mut s: Vec<f32> =
                        shared.iter().map(|&x| ((x * (k as f32 + 1.0) + rng.unit_f32()) * 8.0).round() / 8.0).collect();
                    standardise(&mut s);
                    s
                })
                .collect();
            let relevant: Vec<usize> = (0..1 + case % 3)
                .map(|_| rng.below(n))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            let laid_out = ValidationCase::new(&per_member, &relevant, 0, false);
            let mut buf = Vec::new();
            for w in simplex(m, 0.25) {
                let want = ndcg10_every_item(&per_member, &w, &relevant);
                let got = laid_out.ndcg10(&w, &mut buf);
                assert_eq!(got, want, "case {case}, n {n}, weights {w:?}");
                nonzero += usize::from(want > 0.0);
            }
        }
        assert!(nonzero > 100, "the cases must include hits ({nonzero})");
    }

    #[test]
    fn standardise_and_simplex() {
        let mut s = [1.0, 2.0, 3.0, f32::NEG_INFINITY];
        standardise(&mut s);
        assert!(s.iter().all(|x| x.is_finite()));
        assert!(s[2] > s[1] && s[1] > s[0] && s[3] == s[0]);
        let mut r = [0.5, f32::NAN, 2.0, 0.5];
        reciprocal_rank(&mut r);
        assert_eq!(r, [60.0 / 61.0, 60.0 / 63.0, 1.0, 60.0 / 61.0], "ties share the better rank, NaN last");
        let mut flat = [5.0; 3];
        standardise(&mut flat);
        assert_eq!(flat, [0.0; 3]);
        let g = simplex(3, 0.5);
        assert_eq!(g.len(), 6);
        assert!(g.iter().all(|w| (w.iter().sum::<f32>() - 1.0).abs() < 1e-6));
        let one = |s: &[f32], rel: &[usize]| {
            ValidationCase::new(&[s.to_vec()], rel, 0, false).ndcg10(&[1.0], &mut Vec::new())
        };
        assert_eq!(one(&[0.9, 0.1, 0.5], &[0]), 1.0);
        assert!((one(&[0.9, 0.1, 0.5], &[2]) - 1.0 / 3f64.log2()).abs() < 1e-12);
        assert!((one(&[0.5, 0.5], &[1]) - 1.0 / 3f64.log2()).abs() < 1e-12, "ties go to the lower position");
        for name in [
            "blend",
            "blend-content:step=0.05",
            "blend:members=als+pop:validation=0.2:history=1",
            "blend:norm=rank",
            "blend:items=0:history=1",
            "blend:folds=1:items=0",
            "blend:validation=0.05:folds=10",
        ] {
            let c = match crate::by_name(name, 1, 7) {
                Ok(f) => f.name(),
                Err(e) => panic!("{name}: {e}"),
            };
            assert_eq!(c, name, "a blend's name reads back as the same blend");
        }
        assert!(BlendConfig::builder().members(vec!["als".into()]).build().is_err());
        assert!(BlendConfig::builder().members(vec!["als".into(), "blend".into()]).build().is_err());
    }
}
