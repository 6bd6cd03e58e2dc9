//! One evaluation run, as `warmstart eval` and `warmstart pipeline` make it: a protocol's
//! tasks on a dataset, every model fitted and judged on them (or k-fold cross-validated on the
//! cold-start protocol), the per-target results pooled where the protocol reports them
//! together, paired tests of each task's best model against the others, and the default
//! model's check in every history segment. The caller loads the data and writes the run
//! directory; progress goes to a callback.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use warmstart_core::Dataset;
use warmstart_models::Recommender;

use crate::protocol::{self, Candidates};
use crate::report::{cases_tsv, segment_checks, Comparison, CvResult, RunReport};
use crate::runner::{fit_and_evaluate, fit_evaluate_keep, mean_metrics, ranked_cases, segments, TaskResult};
use crate::stats::{mean_ci, paired_t_test};
use crate::{Error, EvalConfig, Protocol, ProtocolOptions, Result, Task};

/// The dataset group a protocol evaluates when none is named.
pub fn default_dataset(p: Protocol) -> &'static str {
    match p {
        Protocol::ColdStart | Protocol::Loo => "amazon-art-office",
        Protocol::Cdrib => "cdrib-game-video",
        Protocol::Random => "movielens-100k",
    }
}

/// The tasks of a protocol on a dataset.
pub fn tasks(p: Protocol, d: &Dataset, opts: &ProtocolOptions) -> Result<Vec<Task>> {
    let dirs = protocol::directions(d);
    let mut out = Vec::new();
    let need_two = |what: &str| Error::Config(format!("the {what} protocol needs a dataset with at least two sites"));
    match p {
        Protocol::ColdStart => {
            if dirs.is_empty() {
                return Err(need_two("cold-start"));
            }
            for (s, t) in dirs {
                out.push(protocol::cold_start(d, s, t, None, opts));
            }
        }
        Protocol::Cdrib => {
            if dirs.is_empty() {
                return Err(need_two("CDRIB"));
            }
            for (s, t) in dirs {
                let mut sampled = protocol::cdrib(d, s, t, opts);
                sampled.name = format!("{} (sampled)", sampled.name);
                let mut full = protocol::cold_start(d, s, t, None, opts);
                full.name = format!("{} (full)", full.name);
                out.push(sampled);
                out.push(full);
            }
        }
        Protocol::Loo => {
            for t in 0..d.sites.len() as u32 {
                out.push(protocol::leave_one_out(d, t, opts)?);
            }
        }
        Protocol::Random => {
            for t in 0..d.sites.len() as u32 {
                out.push(protocol::random_split(d, t, opts));
            }
        }
    }
    Ok(out)
}

/// A task name as a file name: `a→b (sampled)` → `a_to_b_sampled`.
pub fn file_stem(task: &str) -> String {
    let mapped: String = task
        .replace('→', "_to_")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
        .collect();
    mapped.split('_').filter(|p| !p.is_empty()).collect::<Vec<_>>().join("_")
}

/// The metric the paired tests compare: NDCG at 10, or at the first cut-off without 10.
pub fn main_metric(ks: &[usize]) -> String {
    format!("ndcg@{}", if ks.contains(&10) { 10 } else { ks[0] })
}

/// Paired tests of the best model against each other model on each task.
pub fn compare(details: &[TaskResult], metric: &str) -> Vec<Comparison> {
    let mut tasks: Vec<&str> = details.iter().map(|d| d.task.as_str()).collect();
    tasks.dedup();
    let mut out = Vec::new();
    for task in tasks {
        let rs: Vec<&TaskResult> = details.iter().filter(|d| d.task == task).collect();
        let Some(best) = rs
            .iter()
            .max_by(|a, b| a.metrics.get(metric).unwrap_or(&0.0).total_cmp(b.metrics.get(metric).unwrap_or(&0.0)))
        else {
            continue;
        };
        let vals = |r: &TaskResult| -> Vec<f64> {
            r.per_case.iter().map(|c| c.metrics.get(metric).copied().unwrap_or(0.0)).collect()
        };
        for other in rs.iter().filter(|r| r.model != best.model) {
            out.push(Comparison {
                task: task.to_string(),
                metric: metric.to_string(),
                a: best.model.clone(),
                b: other.model.clone(),
                test: paired_t_test(&vals(best), &vals(other)),
            });
        }
    }
    out
}

/// One result pooling the cases of several results of the same model (folds, or the
/// Art- and Office-target lines): accuracy metrics are recomputed over all cases,
/// per-list metrics (coverage, diversity, novelty) are averaged over the parts.
pub fn pool(parts: &[TaskResult], task: &str) -> Option<TaskResult> {
    let mut all = parts.first()?.clone();
    all.task = task.to_string();
    all.per_case = parts.iter().flat_map(|r| r.per_case.clone()).collect();
    all.cases = all.per_case.len();
    all.metrics = mean_metrics(&all.per_case);
    for name in parts[0].metrics.keys() {
        if !all.metrics.contains_key(name) {
            let mean = parts.iter().map(|r| r.metrics[name]).sum::<f64>() / parts.len() as f64;
            all.metrics.insert(name.clone(), mean);
        }
    }
    all.segments = segments(&all.per_case);
    all.fit_seconds = parts.iter().map(|r| r.fit_seconds).sum::<f64>() / parts.len() as f64;
    all.eval_seconds = parts.iter().map(|r| r.eval_seconds).sum();
    Some(all)
}

/// What a run evaluates.
#[derive(Debug, Clone)]
pub struct RunPlan {
    /// The protocol.
    pub protocol: Protocol,
    /// The dataset group's name (recorded in the report).
    pub dataset: String,
    /// Model names (`warmstart_models::by_name`).
    pub models: Vec<String>,
    /// k-fold cross-validation over users (cold-start protocol only).
    pub folds: Option<usize>,
    /// Protocol options (seed, history weights).
    pub options: ProtocolOptions,
    /// Training threads (0 = all).
    pub threads: usize,
    /// The serving default, checked against the best single model per history segment.
    pub default_model: String,
    /// Also hand back every task's test and validation cases as TSV files.
    pub write_cases: bool,
    /// Also write TREC run and qrels files of up to this many cases per task into a directory.
    pub trec: Option<(PathBuf, usize)>,
    /// The code's commit, when known (recorded in the report).
    pub git_commit: Option<String>,
}

/// How far a run is.
#[derive(Debug, Clone)]
pub enum RunProgress {
    /// A stage of `total` fits begins.
    Stage {
        /// Fits in the stage.
        total: u64,
        /// What the stage is.
        label: String,
    },
    /// A fit begins.
    Fitting(String),
    /// A fit and its evaluation are done.
    Fitted,
    /// The stage is over.
    StageDone,
}

/// The outcome of a run: its report and, with `write_cases`, the case files (name, text).
#[derive(Debug)]
pub struct RunOutput {
    /// The report.
    pub report: RunReport,
    /// `<task>.test.tsv` / `<task>.valid.tsv` files.
    pub cases: Vec<(String, String)>,
}

/// Runs `plan` on the dataset `d` with the evaluation settings `cfg`.
pub fn run(d: &Dataset, plan: &RunPlan, cfg: &EvalConfig, progress: &mut dyn FnMut(RunProgress)) -> Result<RunOutput> {
    let started = Instant::now();
    let p = plan.protocol;
    let (models, opts) = (&plan.models, &plan.options);
    for m in models {
        warmstart_models::by_name(m, plan.threads, opts.seed)?; // validate names before any work
    }
    let mut report = RunReport {
        protocol: p.as_str().into(),
        dataset: plan.dataset.clone(),
        ks: cfg.ks.clone(),
        seed: opts.seed,
        git_commit: plan.git_commit.clone(),
        started_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        seconds: 0.0,
        notes: Vec::new(),
        models: models.clone(),
        results: Default::default(),
        details: Vec::new(),
        cross_validation: Vec::new(),
        comparisons: Vec::new(),
        segment_checks: Vec::new(),
    };
    let metric = main_metric(&cfg.ks);
    let mut cases = Vec::new();
    if let Some(k) = plan.folds {
        if plan.write_cases {
            return Err(Error::Config("writing the cases applies without folds".into()));
        }
        if p != Protocol::ColdStart {
            return Err(Error::Config("folds apply to the cold-start protocol".into()));
        }
        for (s, t) in protocol::directions(d) {
            let folds = protocol::cold_start_folds(d, s, t, k, opts)?;
            let direction = format!("{}→{}", d.sites[s as usize].key, d.sites[t as usize].key);
            for n in &folds[0].notes {
                if !report.notes.contains(n) {
                    report.notes.push(n.clone());
                }
            }
            progress(RunProgress::Stage { total: (models.len() * k) as u64, label: direction.clone() });
            let mut pooled: Vec<TaskResult> = Vec::new();
            for m in models {
                let mut per_fold: Vec<TaskResult> = Vec::new();
                for task in &folds {
                    progress(RunProgress::Fitting(format!("{m} on {}", task.name)));
                    let params = warmstart_models::by_name(m, plan.threads, opts.seed)?;
                    per_fold.push(fit_and_evaluate(params.as_ref(), d, task, cfg, false)?);
                    progress(RunProgress::Fitted);
                }
                let names: Vec<String> = per_fold[0].metrics.keys().cloned().collect();
                let metrics = names
                    .iter()
                    .map(|n| (n.clone(), mean_ci(&per_fold.iter().map(|r| r.metrics[n]).collect::<Vec<_>>())))
                    .collect();
                report.cross_validation.push(CvResult { model: m.clone(), task: direction.clone(), folds: k, metrics });
                pooled.extend(pool(&per_fold, &direction));
            }
            progress(RunProgress::StageDone);
            report.comparisons.extend(compare(&pooled, &metric));
            report.segment_checks.extend(segment_checks(&pooled, &plan.default_model, &metric));
            for r in pooled {
                report.push(r);
            }
        }
    } else {
        let tasks = tasks(p, d, opts)?;
        if plan.write_cases {
            cases = tasks
                .iter()
                .flat_map(|t| {
                    let stem = file_stem(&t.name);
                    [
                        (format!("{stem}.test.tsv"), cases_tsv(d, &t.test)),
                        (format!("{stem}.valid.tsv"), cases_tsv(d, &t.valid)),
                    ]
                })
                .collect();
        }
        for t in &tasks {
            for n in &t.notes {
                if !report.notes.contains(n) {
                    report.notes.push(n.clone());
                }
            }
        }
        progress(RunProgress::Stage { total: (models.len() * tasks.len()) as u64, label: "evaluating".into() });
        let mut details = Vec::new();
        for task in &tasks {
            for m in models {
                progress(RunProgress::Fitting(format!("{m} on {}", task.name)));
                let params = warmstart_models::by_name(m, plan.threads, opts.seed)?;
                let (r, model) = fit_evaluate_keep(params.as_ref(), d, task, cfg, false)?;
                if let Some((dir, limit)) = &plan.trec {
                    write_trec(dir, model.as_ref(), d, task, cfg, *limit)?;
                }
                details.push(r);
                progress(RunProgress::Fitted);
            }
        }
        progress(RunProgress::StageDone);
        if p == Protocol::Loo && tasks.len() > 1 {
            let pooled: Vec<TaskResult> = models
                .iter()
                .filter_map(|m| {
                    pool(&details.iter().filter(|d| &d.model == m).cloned().collect::<Vec<_>>(), "loo→all sites")
                })
                .collect();
            details.extend(pooled);
        }
        report.comparisons = compare(&details, &metric);
        report.segment_checks = segment_checks(&details, &plan.default_model, &metric);
        for r in details {
            report.push(r);
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(RunOutput { report, cases })
}

/// Writes `<model>.run`, `qrels.txt` and `<model>.metrics.json` for the first cases of a
/// full-ranking task (sampled-candidate tasks are skipped: they are not a TREC ranking).
pub fn write_trec(
    dir: &Path,
    model: &dyn Recommender,
    d: &Dataset,
    task: &Task,
    cfg: &EvalConfig,
    limit: usize,
) -> Result<()> {
    if task.test.iter().any(|c| matches!(c.candidates, Candidates::List(_))) {
        return Ok(());
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let tag = task.name.replace(['→', ' ', '(', ')', '/'], "_");
    let ranked = ranked_cases(model, d, task, cfg, limit)?;
    let (mut run, mut qrels) = (String::new(), String::new());
    let mut metrics = serde_json::Map::new();
    for (i, c) in ranked.iter().enumerate() {
        let q = format!("{tag}_{i}");
        for (rank, item) in c.ranking.iter().enumerate() {
            let _ = writeln!(run, "{q} Q0 {item} {} {} warmstart", rank + 1, c.ranking.len() - rank);
        }
        for item in &task.test[i].relevant {
            let _ = writeln!(qrels, "{q} 0 {item} 1");
        }
        metrics.insert(q, serde_json::to_value(&c.metrics).map_err(|e| Error::Config(e.to_string()))?);
    }
    let write = |name: String, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(io(&path))
    };
    write(format!("{}-{tag}.run", model.name()), run)?;
    write(format!("{tag}.qrels"), qrels)?;
    write(
        format!("{}-{tag}.metrics.json", model.name()),
        serde_json::to_string(&metrics).map_err(|e| Error::Config(e.to_string()))?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_stems_and_main_metric() {
        assert_eq!(file_stem("amazon-art→amazon-office (sampled)"), "amazon-art_to_amazon-office_sampled");
        assert_eq!(main_metric(&[5, 10, 20]), "ndcg@10");
        assert_eq!(main_metric(&[5, 20]), "ndcg@5");
    }
}
