//! Choosing the blend's weights: cross-fitted validation cases, laid out so that a grid of
//! weight vectors is scored exactly and fast, and the fit that ends with the members refitted
//! on everything.

use rayon::prelude::*;
use warmstart_core::{CsrMatrix, ItemId, Rng};

use super::{history_bucket, Blend, BlendConfig, BUCKETS, MIN_BUCKET_CASES};
use crate::{Error, Recommender, Result, TrainData};

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
}

/// A validation case before it is scored: a history, the shop it ranks and its relevant items.
struct CaseSpec {
    history: Vec<(ItemId, f32)>,
    target: u32,
    relevant: Vec<ItemId>,
    /// A cold-start case whose history was cut short (chooses only the short-history weights).
    cut: bool,
}

/// A validation case graded: its NDCG@10 under every weight vector of the grid.
struct GradedCase {
    ndcg: Vec<f64>,
    /// History-length bucket (other-shop items).
    bucket: usize,
    /// The history holds items of the ranked shop (a returning shopper's case).
    warm: bool,
    /// Its history was cut to one or two items.
    cut: bool,
    /// Per member: its scores of the case were not all equal.
    varies: Vec<bool>,
}

impl ValidationCase {
    /// Lays out `per_member` scores (standardised, one vector per member over the shop's
    /// items) with the relevant positions `relevant`.
    fn new(per_member: &[Vec<f32>], relevant: &[usize]) -> ValidationCase {
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
        // candidates strongest first by the members' plain sum, so that counting the items
        // that outrank a relevant one meets ten of them early when there are ten
        let prior = |i: u32| -> f32 { per_member.iter().map(|s| s[i as usize]).sum() };
        let mut order: Vec<u32> = (0..n as u32).filter(|&i| is_candidate[i as usize]).collect();
        order.sort_by(|&a, &b| prior(b).total_cmp(&prior(a)).then(a.cmp(&b)));
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
        ValidationCase { scores, order, candidates, thresholds, relevant }
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
    /// the members' top items come first (strongest first, blended as they are met, so the
    /// count for a relevant item far down stops early at the tenth item above it), and the
    /// rest is scanned only when a relevant item could still be outranked by one of them (its
    /// blended score is at most the weighted sum of the member thresholds; float rounding is
    /// monotone, so the bound is exact).
    fn ndcg10(&self, w: &[f32]) -> f64 {
        let n = self.order.len();
        let mut bound = 0f32;
        for (wk, t) in w.iter().zip(&self.thresholds) {
            if *wk > 0.0 {
                bound += wk * t;
            }
        }
        let mut ranks: Vec<usize> = Vec::with_capacity(self.relevant.len());
        for &r in &self.relevant {
            let (sr, ir) = (self.blended(w, r), self.order[r]);
            let beats = |p: usize| {
                let x = self.blended(w, p);
                x > sr || (x == sr && self.order[p] < ir)
            };
            let mut count = (0..self.candidates).filter(|&p| beats(p)).take(10).count();
            if count < 10 && sr <= bound {
                count += (self.candidates..n).filter(|&p| beats(p)).take(10 - count).count();
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

    /// The validation cases of one fold, each as its NDCG@10 under every weight vector of
    /// `grid`: the members fitted without the users `validation`, each of them with one shop
    /// hidden and ranked from their other shops (a cold-start case), and, with `item_cases`,
    /// one item of theirs ranked in its shop from all their other items where those include
    /// items of that shop (a returning shopper's case). Cases are scored in parallel and
    /// dropped once graded, so a fold never holds more than one case per thread.
    fn fold_cases(
        &self,
        data: &TrainData,
        validation: &[usize],
        grid: &[Vec<f32>],
        rng: &mut Rng,
        item_rng: &mut Rng,
    ) -> Result<Vec<GradedCase>> {
        let d = data.dataset;
        let m = data.matrix;
        // the cases, drawn in order (one seeded sequence whatever the threads)
        let mut specs: Vec<CaseSpec> = Vec::new();
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
            specs.push(CaseSpec { history, target, relevant, cut: false });
        }
        if self.short_history {
            // each cold-start case again, its history cut to one or two of its items
            let mut short_rng = Rng::new(self.seed ^ 0x0053_484f_5254 ^ validation.first().map_or(0, |&u| u as u64));
            let cut: Vec<CaseSpec> = specs
                .iter()
                .filter(|spec| spec.history.len() >= 3)
                .map(|spec| {
                    let mut history = spec.history.clone();
                    short_rng.shuffle(&mut history);
                    history.truncate(1 + short_rng.below(2));
                    history.sort_unstable_by_key(|&(i, _)| i);
                    CaseSpec { history, target: spec.target, relevant: spec.relevant.clone(), cut: true }
                })
                .collect();
            specs.extend(cut);
        }
        if self.item_cases {
            for &u in validation {
                let cols = m.row_indices(u);
                let k = item_rng.below(cols.len());
                let target = d.site_of(cols[k]);
                let history: Vec<(ItemId, f32)> = cols
                    .iter()
                    .zip(m.row_values(u))
                    .enumerate()
                    .filter(|&(j, _)| j != k)
                    .map(|(_, (&c, &v))| (c, v))
                    .collect();
                // kept where the history holds items of the ranked shop
                if history.iter().any(|(c, _)| d.site_of(*c) == target) {
                    specs.push(CaseSpec { history, target, relevant: vec![cols[k]], cut: false });
                }
            }
        }
        let held: std::collections::HashSet<usize> = validation.iter().copied().collect();
        let triplets: Vec<(u32, u32, f32)> = (0..m.n_rows())
            .filter(|u| !held.contains(u))
            .flat_map(|u| m.row_indices(u).iter().zip(m.row_values(u)).map(move |(&i, &v)| (u as u32, i, v)))
            .collect();
        let reduced = CsrMatrix::from_triplets(m.n_rows(), m.n_cols(), &triplets);
        let part = TrainData { dataset: d, matrix: &reduced, item_vectors: data.item_vectors };
        let members = self.fit_members(&part)?;
        // each case: the members' normalised scores of the target shop, laid out, graded
        specs
            .par_iter()
            .map(|spec| -> Result<GradedCase> {
                let range = d.sites[spec.target as usize].items.clone();
                let mut per_member = Vec::with_capacity(members.len());
                let mut varies = Vec::with_capacity(members.len());
                for model in &members {
                    let mut s = vec![0f32; range.len()];
                    model.score(&spec.history, range.clone(), &mut s)?;
                    varies.push(s.iter().any(|&x| x != s[0]));
                    self.normalisation.apply(&mut s);
                    per_member.push(s);
                }
                let relevant: Vec<usize> = spec.relevant.iter().map(|c| (c - range.start) as usize).collect();
                let other_shop = spec.history.iter().filter(|(i, _)| !range.contains(i)).count();
                let case = ValidationCase::new(&per_member, &relevant);
                Ok(GradedCase {
                    ndcg: grid.iter().map(|w| case.ndcg10(w)).collect(),
                    bucket: history_bucket(other_shop),
                    warm: other_shop < spec.history.len(),
                    cut: spec.cut,
                    varies,
                })
            })
            .collect()
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
        // cold-start cases cut to one or two history items (with `short_history`), apart
        let mut cut_ndcg: Vec<Vec<f64>> = vec![Vec::new(); grid.len()];
        let mut item_rng = Rng::new(self.seed ^ 0x4954_454d);
        // members that scored some validation case other than constant
        let mut speaks = vec![false; self.members.len()];
        for fold in 0..self.folds {
            let mut validation: Vec<usize> = cross[fold * n_val..((fold + 1) * n_val).min(cross.len())].to_vec();
            validation.sort_unstable();
            for case in self.fold_cases(data, &validation, &grid, &mut rng, &mut item_rng)? {
                let table = if case.warm {
                    &mut warm_ndcg
                } else if case.cut {
                    &mut cut_ndcg
                } else {
                    &mut cold_ndcg
                };
                for (s, v) in speaks.iter_mut().zip(&case.varies) {
                    *s |= v;
                }
                for (column, x) in table.iter_mut().zip(case.ndcg) {
                    column.push(x);
                }
                if !case.warm && !case.cut {
                    cold_buckets.push(case.bucket);
                }
            }
        }
        // a member silent on every case (constant scores: say brand-kNN where no product has
        // a brand) only rescales the others; it keeps weight 0 unless every member is silent
        let allowed: Vec<bool> = grid
            .iter()
            .map(|w| !speaks.contains(&true) || w.iter().zip(&speaks).all(|(&x, &s)| s || x == 0.0))
            .collect();
        // the best weight vector on a subset of the cases (the first on ties), and its mean
        let best_on = |table: &[Vec<f64>], subset: &[usize]| -> Option<(f64, usize)> {
            let mut best: Option<(f64, usize)> = None;
            for (g, scores) in table.iter().enumerate().filter(|(g, _)| allowed[*g]) {
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
        let silent: Vec<&str> =
            self.members.iter().zip(&speaks).filter(|(_, &s)| !s).map(|(m, _)| m.as_str()).collect();
        let mut notes = vec![format!(
            "cold-start weights {}: validation NDCG@10 {score:.4} on {} hidden-shop cases ({} fold{}; members alone: {}){}",
            shown(&grid[g]),
            cold.len(),
            self.folds,
            if self.folds == 1 { "" } else { "s" },
            alone.join(", "),
            if silent.is_empty() {
                String::new()
            } else {
                format!("; constant on every case, so weight 0: {}", silent.join(", "))
            }
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
        if self.short_history {
            // the cut cases and the naturally short ones together
            let natural: Vec<usize> = cold.iter().copied().filter(|&c| cold_buckets[c] == 0).collect();
            let short: Vec<Vec<f64>> = cold_ndcg
                .iter()
                .zip(&cut_ndcg)
                .map(|(all, cut)| natural.iter().map(|&c| all[c]).chain(cut.iter().copied()).collect())
                .collect();
            let cases: Vec<usize> = (0..short.first().map_or(0, Vec::len)).collect();
            match (cases.len() >= MIN_BUCKET_CASES).then(|| best_on(&short, &cases)).flatten() {
                Some((mean, gs)) => {
                    let at_pooled = cases.iter().map(|&c| short[g][c]).sum::<f64>() / cases.len() as f64;
                    weights.push(grid[gs].clone());
                    notes.push(format!(
                        "short-history weights {}: validation NDCG@10 {mean:.4} on {} cases of 1–2 other-shop items ({} cut from longer histories; the cold-start weights: {at_pooled:.4})",
                        shown(&grid[gs]),
                        cases.len(),
                        cut_ndcg.first().map_or(0, Vec::len)
                    ));
                }
                None => weights.push(weights[0].clone()),
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

#[cfg(test)]
mod tests {
    use super::super::config::{reciprocal_rank, standardise};
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
            let laid_out = ValidationCase::new(&per_member, &relevant);
            for w in simplex(m, 0.25) {
                let want = ndcg10_every_item(&per_member, &w, &relevant);
                let got = laid_out.ndcg10(&w);
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
        let one = |s: &[f32], rel: &[usize]| ValidationCase::new(&[s.to_vec()], rel).ndcg10(&[1.0]);
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
            "blend:short=0",
            "blend:items=0:history=1:short=0",
            "blend:members=itemknn/shrink=200+rp3beta/alpha=0.1+als/factors=32/reg=10+pop:folds=3",
            "blend:members=ease/items=2000+userknn/k=100+brandknn/shrink=10",
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

    #[test]
    fn short_histories_take_their_own_weights() {
        let config =
            BlendConfig::builder().members(vec!["als".into(), "pop".into()]).short_history(true).build().unwrap();
        // the cold-start vector, the short histories', the returning shoppers'
        let weights = vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![0.5, 0.5]];
        let b = Blend { config, weights, members: vec![None, None], notes: Vec::new() };
        assert_eq!(b.weights_for(1, false), [0.0, 1.0]);
        assert_eq!(b.weights_for(2, false), [0.0, 1.0]);
        assert_eq!(b.weights_for(3, false), [1.0, 0.0]);
        assert_eq!(b.weights_for(1, true), [0.5, 0.5]);
    }
}
