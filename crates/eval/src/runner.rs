//! Runs a model on a task: fit, fold in each case's user, rank, and score.

use std::collections::BTreeMap;
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;
use warmstart_core::{top_k, Dataset, ItemId, Rng};
use warmstart_models::{Fit, Recommender, TrainData};

use crate::metrics::{candidate_count, case_metrics, relevant_ranks};
use crate::protocol::{Candidates, Case, Task};
use crate::Result;

/// Evaluation settings.
#[derive(Debug, Clone)]
pub struct EvalConfig {
    /// Cut-offs.
    pub ks: Vec<usize>,
    /// Seed of the random tie-breaking.
    pub seed: u64,
    /// Content vectors of the dataset's items, for content models.
    pub item_vectors: Option<std::sync::Arc<warmstart_core::ItemVectors>>,
}

impl EvalConfig {
    /// The largest cut-off (length of the recommendation lists kept).
    pub fn max_k(&self) -> usize {
        self.ks.iter().copied().max().unwrap_or(10)
    }
}

/// One case's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    /// User.
    pub user: u32,
    /// Metric values.
    pub metrics: BTreeMap<String, f64>,
    /// Top `max_k` recommended items, best first.
    pub top: Vec<ItemId>,
    /// Ranked candidate items with their rank-derived scores (only when asked for).
    #[serde(skip)]
    pub ranking: Vec<ItemId>,
    /// Other-site history length.
    pub other_site_history: usize,
    /// Dominant category of the history.
    pub dominant_category: String,
}

/// Scores one case: candidates are shuffled (seeded) so that ties are broken at random,
/// owned items are excluded, relevant items are ranked.
pub fn run_case(
    model: &dyn Recommender,
    d: &Dataset,
    task: &Task,
    case: &Case,
    cfg: &EvalConfig,
    case_index: usize,
    keep_ranking: bool,
) -> Result<CaseResult> {
    let range = d.sites[task.target as usize].items.clone();
    let site_scores = warmstart_models::masked_scores(model, &case.history, range.clone(), &case.exclude)?;
    let mut cands: Vec<ItemId> = match &case.candidates {
        Candidates::Site => range.clone().collect(),
        Candidates::List(l) => l.clone(),
    };
    Rng::new(cfg.seed ^ (case_index as u64).wrapping_mul(0x9e3779b97f4a7c15) ^ case.user as u64).shuffle(&mut cands);
    let scores: Vec<f32> = cands
        .iter()
        .map(|&i| if range.contains(&i) { site_scores[(i - range.start) as usize] } else { f32::NEG_INFINITY })
        .collect();
    // position of each relevant item in the candidate list (first occurrence)
    let mut first_pos: std::collections::HashMap<ItemId, usize> =
        std::collections::HashMap::with_capacity(case.relevant.len());
    for (p, &i) in cands.iter().enumerate() {
        if case.relevant.binary_search(&i).is_ok() {
            first_pos.entry(i).or_insert(p);
        }
    }
    let positions: Vec<usize> = case.relevant.iter().filter_map(|i| first_pos.get(i).copied()).collect();
    let mut ranks = relevant_ranks(&scores, &positions);
    ranks.resize(case.relevant.len(), None); // relevant items that are not candidates count as misses
    let metrics = case_metrics(&ranks, candidate_count(&scores), &cfg.ks);
    let n_keep = if keep_ranking { cands.len() } else { cfg.max_k() };
    let order = top_k(&scores, n_keep);
    let top: Vec<ItemId> = order.iter().take(cfg.max_k()).map(|&p| cands[p]).collect();
    let ranking = if keep_ranking { order.iter().map(|&p| cands[p]).collect() } else { Vec::new() };
    Ok(CaseResult {
        user: case.user,
        metrics,
        top,
        ranking,
        other_site_history: case.other_site_history,
        dominant_category: dominant_category(d, &case.history),
    })
}

/// Most frequent second-level category (else first-level) among the history items.
pub fn dominant_category(d: &Dataset, history: &[(ItemId, f32)]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for &(i, _) in history {
        let cat = &d.products[i as usize].category;
        if let Some(c) = cat.get(1).or(cat.first()) {
            *counts.entry(c.as_str()).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))
        .map(|(c, _)| c.to_string())
        .unwrap_or_else(|| "none".into())
}

/// Evaluates a fitted model on `cases` in parallel.
pub fn run_cases(
    model: &dyn Recommender,
    d: &Dataset,
    task: &Task,
    cases: &[Case],
    cfg: &EvalConfig,
) -> Result<Vec<CaseResult>> {
    cases.par_iter().enumerate().map(|(i, c)| run_case(model, d, task, c, cfg, i, false)).collect()
}

/// Full rankings of the first `limit` cases (for run files checked by an independent
/// implementation).
pub fn ranked_cases(
    model: &dyn Recommender,
    d: &Dataset,
    task: &Task,
    cfg: &EvalConfig,
    limit: usize,
) -> Result<Vec<CaseResult>> {
    let cases = &task.test[..task.test.len().min(limit)];
    cases.par_iter().enumerate().map(|(i, c)| run_case(model, d, task, c, cfg, i, true)).collect()
}

/// Means of each metric over case results.
pub fn mean_metrics(results: &[CaseResult]) -> BTreeMap<String, f64> {
    let mut sum: BTreeMap<String, f64> = BTreeMap::new();
    for r in results {
        for (k, v) in &r.metrics {
            *sum.entry(k.clone()).or_default() += v;
        }
    }
    let n = results.len().max(1) as f64;
    sum.into_iter().map(|(k, v)| (k, v / n)).collect()
}

/// Catalog coverage, intra-list diversity and novelty of the top-`k` lists.
pub fn beyond_accuracy(d: &Dataset, task: &Task, results: &[CaseResult], k: usize) -> BTreeMap<String, f64> {
    let range = d.sites[task.target as usize].items.clone();
    let mut seen = vec![false; range.len()];
    let pop: Vec<usize> = {
        let t = task.train.transpose();
        (0..t.n_rows()).map(|i| t.row_nnz(i)).collect()
    };
    let n_users = task.train.n_rows().max(1) as f64;
    let (mut ild_sum, mut ild_n, mut nov_sum, mut nov_n) = (0f64, 0usize, 0f64, 0usize);
    for r in results {
        let top = &r.top[..r.top.len().min(k)];
        for &i in top {
            if range.contains(&i) {
                seen[(i - range.start) as usize] = true;
            }
            nov_sum += -((pop[i as usize] as f64 + 1.0) / (n_users + 1.0)).log2();
            nov_n += 1;
        }
        if top.len() > 1 {
            let mut s = 0f64;
            let mut n = 0usize;
            for a in 0..top.len() {
                for b in a + 1..top.len() {
                    s +=
                        category_distance(&d.products[top[a] as usize].category, &d.products[top[b] as usize].category);
                    n += 1;
                }
            }
            ild_sum += s / n as f64;
            ild_n += 1;
        }
    }
    let mut m = BTreeMap::new();
    m.insert(format!("coverage@{k}"), seen.iter().filter(|s| **s).count() as f64 / range.len().max(1) as f64);
    m.insert(format!("diversity@{k}"), if ild_n > 0 { ild_sum / ild_n as f64 } else { 0.0 });
    m.insert(format!("novelty@{k}"), if nov_n > 0 { nov_sum / nov_n as f64 } else { 0.0 });
    m
}

/// 1 minus the share of the category path two items have in common (0 = same category).
pub fn category_distance(a: &[String], b: &[String]) -> f64 {
    let depth = a.len().max(b.len());
    if depth == 0 {
        return 0.0;
    }
    let common = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    1.0 - common as f64 / depth as f64
}

/// Everything measured for one model on one task.
#[derive(Debug, Clone, Serialize)]
pub struct TaskResult {
    /// Model name.
    pub model: String,
    /// Task name.
    pub task: String,
    /// Cases evaluated.
    pub cases: usize,
    /// Mean metrics (accuracy and beyond-accuracy).
    pub metrics: BTreeMap<String, f64>,
    /// Mean metrics per segment (`history=1-2`, `category=...`), with the case count.
    pub segments: BTreeMap<String, BTreeMap<String, f64>>,
    /// Seconds to fit.
    pub fit_seconds: f64,
    /// Seconds to evaluate.
    pub eval_seconds: f64,
    /// What fitting chose (`Recommender::fit_notes`: a blend's weights), when anything.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fit_notes: Vec<String>,
    /// Per-case results (for paired tests and run files).
    #[serde(skip)]
    pub per_case: Vec<CaseResult>,
}

/// History-length bucket of the segments.
pub fn history_bucket(n: usize) -> &'static str {
    match n {
        0 => "0",
        1..=2 => "1-2",
        3..=5 => "3-5",
        _ => "6+",
    }
}

/// Means per segment: history-length buckets and dominant categories (categories with fewer
/// than 20 cases are pooled as `other`).
pub fn segments(results: &[CaseResult]) -> BTreeMap<String, BTreeMap<String, f64>> {
    let mut cat_count: BTreeMap<&str, usize> = BTreeMap::new();
    for r in results {
        *cat_count.entry(r.dominant_category.as_str()).or_default() += 1;
    }
    let mut groups: BTreeMap<String, Vec<CaseResult>> = BTreeMap::new();
    for r in results {
        groups.entry(format!("history={}", history_bucket(r.other_site_history))).or_default().push(r.clone());
        let c = if cat_count[r.dominant_category.as_str()] >= 20 { r.dominant_category.as_str() } else { "other" };
        groups.entry(format!("category={c}")).or_default().push(r.clone());
    }
    groups
        .into_iter()
        .map(|(k, v)| {
            let mut m = mean_metrics(&v);
            m.insert("cases".into(), v.len() as f64);
            (k, m)
        })
        .collect()
}

/// Fits `params` on the task's training matrix and evaluates the fitted model on the test
/// cases (or the validation cases when `validation` is set).
pub fn fit_and_evaluate(
    params: &dyn Fit,
    d: &Dataset,
    task: &Task,
    cfg: &EvalConfig,
    validation: bool,
) -> Result<TaskResult> {
    Ok(fit_evaluate_keep(params, d, task, cfg, validation)?.0)
}

/// Like [`fit_and_evaluate`], also handing back the fitted model (the artifact that was
/// measured).
pub fn fit_evaluate_keep(
    params: &dyn Fit,
    d: &Dataset,
    task: &Task,
    cfg: &EvalConfig,
    validation: bool,
) -> Result<(TaskResult, Box<dyn Recommender>)> {
    let t = Instant::now();
    let model =
        params.fit(&TrainData { dataset: d, matrix: &task.train, item_vectors: cfg.item_vectors.as_deref() })?;
    let fit_seconds = t.elapsed().as_secs_f64();
    Ok((evaluate_fitted(model.as_ref(), d, task, cfg, validation, fit_seconds)?, model))
}

/// Evaluates an already fitted model.
pub fn evaluate_fitted(
    model: &dyn Recommender,
    d: &Dataset,
    task: &Task,
    cfg: &EvalConfig,
    validation: bool,
    fit_seconds: f64,
) -> Result<TaskResult> {
    let t = Instant::now();
    let cases = if validation { &task.valid } else { &task.test };
    let per_case = run_cases(model, d, task, cases, cfg)?;
    let mut metrics = mean_metrics(&per_case);
    metrics.extend(beyond_accuracy(d, task, &per_case, cfg.max_k().min(10)));
    Ok(TaskResult {
        model: model.name(),
        task: task.name.clone(),
        cases: per_case.len(),
        segments: segments(&per_case),
        metrics,
        fit_seconds,
        eval_seconds: t.elapsed().as_secs_f64(),
        fit_notes: model.fit_notes(),
        per_case,
    })
}
