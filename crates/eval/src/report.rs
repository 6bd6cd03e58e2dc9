//! Leaderboards: the results of a run as a table, JSON, CSV and Markdown in a run directory.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use warmstart_core::{Dataset, ItemId};

use crate::protocol::{Candidates, Case};
use crate::runner::{history_bucket, TaskResult};
use crate::stats::{paired_t_test, MeanCi, PairedTest};
use crate::{Error, Result};

/// Metrics shown in the leaderboard table, at the cut-off `k`.
pub fn table_metrics(k: usize) -> Vec<String> {
    ["ndcg", "recall", "precision", "map", "hit"]
        .iter()
        .map(|m| format!("{m}@{k}"))
        .chain(["mrr".to_string(), "auc".to_string(), "coverage@10".to_string()])
        .collect()
}

/// Cross-validated metrics of a model on a direction.
#[derive(Debug, Clone, Serialize)]
pub struct CvResult {
    /// Model.
    pub model: String,
    /// Direction (without the fold suffix).
    pub task: String,
    /// Folds.
    pub folds: usize,
    /// Mean and 95% CI per metric over folds.
    pub metrics: BTreeMap<String, MeanCi>,
}

/// A paired comparison of two models on the same cases.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// Task.
    pub task: String,
    /// Metric compared.
    pub metric: String,
    /// First model.
    pub a: String,
    /// Second model.
    pub b: String,
    /// The test.
    pub test: PairedTest,
}

/// The default model against the best other single model on the cases of one history-length
/// segment (other-site items: 0, 1–2, 3–5, 6+) of a task.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentCheck {
    /// Task.
    pub task: String,
    /// Segment, e.g. `history=1-2`.
    pub segment: String,
    /// Metric compared.
    pub metric: String,
    /// The default model.
    pub default: String,
    /// The best other single model on this segment's cases.
    pub best: String,
    /// Paired test of default − best on the segment's cases.
    pub test: PairedTest,
}

impl SegmentCheck {
    /// The rule: the default is never below the best single model by more than one standard
    /// error of the paired difference.
    pub fn holds(&self) -> bool {
        self.test.mean_difference >= -self.test.standard_error
    }
}

/// Checks the default model against the best other single model (blends other than the
/// default are not single models) in every history-length segment of every task that has the
/// default; segments with fewer than two cases are skipped.
pub fn segment_checks(details: &[TaskResult], default: &str, metric: &str) -> Vec<SegmentCheck> {
    let mut out = Vec::new();
    let mut tasks: Vec<&str> = details.iter().map(|d| d.task.as_str()).collect();
    tasks.dedup();
    for task in tasks {
        let rs: Vec<&TaskResult> = details.iter().filter(|d| d.task == task).collect();
        let Some(def) = rs.iter().find(|r| r.model == default) else { continue };
        let singles: Vec<&&TaskResult> = rs
            .iter()
            .filter(|r| r.model != default && !r.model.starts_with("blend") && r.per_case.len() == def.per_case.len())
            .collect();
        let mut buckets: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, c) in def.per_case.iter().enumerate() {
            buckets.entry(history_bucket(c.other_site_history)).or_default().push(i);
        }
        let vals = |r: &TaskResult, idx: &[usize]| -> Vec<f64> {
            idx.iter().map(|&i| r.per_case[i].metrics.get(metric).copied().unwrap_or(0.0)).collect()
        };
        for (bucket, idx) in buckets {
            if idx.len() < 2 {
                continue;
            }
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
            let Some(best) = singles.iter().max_by(|a, b| mean(&vals(a, &idx)).total_cmp(&mean(&vals(b, &idx)))) else {
                continue;
            };
            out.push(SegmentCheck {
                task: task.to_string(),
                segment: format!("history={bucket}"),
                metric: metric.to_string(),
                default: default.to_string(),
                best: best.model.clone(),
                test: paired_t_test(&vals(def, &idx), &vals(best, &idx)),
            });
        }
    }
    out
}

/// Everything a run produced.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// Protocol name.
    pub protocol: String,
    /// Dataset group.
    pub dataset: String,
    /// Cut-offs.
    pub ks: Vec<usize>,
    /// Seed.
    pub seed: u64,
    /// Git commit of the code, when known.
    pub git_commit: Option<String>,
    /// Unix time of the start.
    pub started_at: u64,
    /// Total seconds.
    pub seconds: f64,
    /// Choices made by the protocol.
    pub notes: Vec<String>,
    /// Model configuration strings.
    pub models: Vec<String>,
    /// `results[model][task][metric]`.
    pub results: BTreeMap<String, BTreeMap<String, BTreeMap<String, f64>>>,
    /// Per model and task: cases, timings, segments.
    pub details: Vec<TaskResult>,
    /// Cross-validation summaries (with `--folds`).
    pub cross_validation: Vec<CvResult>,
    /// Paired tests.
    pub comparisons: Vec<Comparison>,
    /// The default model against the best single model per history segment.
    pub segment_checks: Vec<SegmentCheck>,
}

impl RunReport {
    /// Adds a task result.
    pub fn push(&mut self, r: TaskResult) {
        self.results.entry(r.model.clone()).or_default().insert(r.task.clone(), r.metrics.clone());
        self.details.push(r);
    }

    /// The leaderboard as a fixed-width text table, one block per task.
    pub fn table(&self) -> String {
        let k = if self.ks.contains(&10) { 10 } else { self.ks[0] };
        let cols = table_metrics(k);
        let mut tasks: Vec<&str> = self.details.iter().map(|d| d.task.as_str()).collect();
        tasks.dedup();
        let mut out = String::new();
        for task in tasks {
            let _ = writeln!(out, "\n{task}");
            let _ = write!(out, "  {:<12} {:>6}", "model", "cases");
            for c in &cols {
                let _ = write!(out, " {:>12}", c);
            }
            let _ = writeln!(out, " {:>8}", "fit s");
            for d in self.details.iter().filter(|d| d.task == task) {
                let _ = write!(out, "  {:<12} {:>6}", d.model, d.cases);
                for c in &cols {
                    let _ = write!(out, " {:>12.4}", d.metrics.get(c).copied().unwrap_or(f64::NAN));
                }
                let _ = writeln!(out, " {:>8.2}", d.fit_seconds);
            }
            for d in self.details.iter().filter(|d| d.task == task) {
                for n in &d.fit_notes {
                    let _ = writeln!(out, "  {}: {n}", d.model);
                }
            }
        }
        for cv in &self.cross_validation {
            let m =
                |name: &str| cv.metrics.get(name).map(|x| format!("{:.4} ± {:.4}", x.mean, x.ci95)).unwrap_or_default();
            let _ = writeln!(
                out,
                "  cv {} {} ({} folds): ndcg@{k} {}  recall@{k} {}",
                cv.task,
                cv.model,
                cv.folds,
                m(&format!("ndcg@{k}")),
                m(&format!("recall@{k}"))
            );
        }
        for c in &self.comparisons {
            let _ = writeln!(
                out,
                "  paired t-test {} {}: {} - {} = {:+.4} (t = {:.2}, p = {:.2e}, n = {})",
                c.task, c.metric, c.a, c.b, c.test.mean_difference, c.test.t, c.test.p_value, c.test.n
            );
        }
        for c in &self.segment_checks {
            let _ = writeln!(
                out,
                "  segment {} {} ({} cases): {} - best single {} = {:+.4} ± {:.4} (1 s.e.) {}",
                c.task,
                c.segment,
                c.test.n,
                c.default,
                c.best,
                c.test.mean_difference,
                c.test.standard_error,
                if c.holds() { "ok" } else { "BELOW" }
            );
        }
        out
    }

    /// The leaderboard as Markdown.
    pub fn markdown(&self) -> String {
        let k = if self.ks.contains(&10) { 10 } else { self.ks[0] };
        let cols = table_metrics(k);
        let mut out = format!(
            "# {} on {}\n\nseed {}, commit {}\n\n",
            self.protocol,
            self.dataset,
            self.seed,
            self.git_commit.as_deref().unwrap_or("unknown")
        );
        for n in &self.notes {
            let _ = writeln!(out, "- {n}");
        }
        let mut tasks: Vec<&str> = self.details.iter().map(|d| d.task.as_str()).collect();
        tasks.dedup();
        for task in tasks {
            let _ = writeln!(out, "\n## {task}\n\n| model | cases | {} | fit s |", cols.join(" | "));
            let _ = writeln!(out, "|---|---:|{}---:|", "---:|".repeat(cols.len()));
            for d in self.details.iter().filter(|d| d.task == task) {
                let vals: Vec<String> =
                    cols.iter().map(|c| format!("{:.4}", d.metrics.get(c).copied().unwrap_or(f64::NAN))).collect();
                let _ = writeln!(out, "| {} | {} | {} | {:.2} |", d.model, d.cases, vals.join(" | "), d.fit_seconds);
            }
            let notes: Vec<String> = self
                .details
                .iter()
                .filter(|d| d.task == task)
                .flat_map(|d| d.fit_notes.iter().map(move |n| format!("- {}: {n}", d.model)))
                .collect();
            if !notes.is_empty() {
                let _ = writeln!(out, "\n{}", notes.join("\n"));
            }
        }
        if !self.comparisons.is_empty() {
            let _ = writeln!(out, "\n## Paired t-tests\n\n| task | metric | a | b | a − b | t | p | n |\n|---|---|---|---|---:|---:|---:|---:|");
            for c in &self.comparisons {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {:+.4} | {:.2} | {:.2e} | {} |",
                    c.task, c.metric, c.a, c.b, c.test.mean_difference, c.test.t, c.test.p_value, c.test.n
                );
            }
        }
        if !self.segment_checks.is_empty() {
            let _ = writeln!(out, "\n## The default against the best single model per history segment\n\n| task | segment | cases | default | best single | default − best | 1 s.e. | within 1 s.e. |\n|---|---|---:|---|---|---:|---:|---|");
            for c in &self.segment_checks {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {:+.4} | {:.4} | {} |",
                    c.task,
                    c.segment,
                    c.test.n,
                    c.default,
                    c.best,
                    c.test.mean_difference,
                    c.test.standard_error,
                    if c.holds() { "yes" } else { "**no**" }
                );
            }
        }
        out
    }

    /// All metrics in long CSV form: `model,task,segment,metric,value`.
    pub fn csv(&self) -> String {
        let mut out = String::from("model,task,segment,metric,value\n");
        for d in &self.details {
            let (model, task) = (csv_field(&d.model), csv_field(&d.task));
            for (m, v) in &d.metrics {
                let _ = writeln!(out, "{model},{task},all,{m},{v}");
            }
            for (seg, ms) in &d.segments {
                for (m, v) in ms {
                    let _ = writeln!(out, "{model},{task},{},{m},{v}", csv_field(seg));
                }
            }
        }
        out
    }

    /// Every case's metrics: `model,task,case,<metric>…` (cases numbered as in the task's
    /// test list), for paired tests against results computed elsewhere (a peer's run).
    pub fn per_case_csv(&self) -> String {
        let names: Vec<&String> = self
            .details
            .iter()
            .find_map(|d| d.per_case.first())
            .map(|c| c.metrics.keys().collect())
            .unwrap_or_default();
        let mut out = String::from("model,task,case");
        for n in &names {
            let _ = write!(out, ",{n}");
        }
        out.push('\n');
        for d in &self.details {
            for (i, c) in d.per_case.iter().enumerate() {
                let _ = write!(out, "{},{},{i}", csv_field(&d.model), csv_field(&d.task));
                for n in &names {
                    let _ = write!(out, ",{}", c.metrics.get(*n).copied().unwrap_or(f64::NAN));
                }
                out.push('\n');
            }
        }
        out
    }

    /// Writes `results.json`, `results.csv`, `per_case.csv` and `leaderboard.md` into `dir`
    /// (created).
    pub fn write(&self, dir: &Path) -> Result<PathBuf> {
        std::fs::create_dir_all(dir).map_err(|e| Error::Io { path: dir.into(), source: e })?;
        let put = |name: &str, text: String| -> Result<()> {
            let p = dir.join(name);
            std::fs::write(&p, text).map_err(|e| Error::Io { path: p, source: e })
        };
        put("results.json", serde_json::to_string_pretty(self).unwrap_or_default())?;
        put("results.csv", self.csv())?;
        put("per_case.csv", self.per_case_csv())?;
        put("leaderboard.md", self.markdown())?;
        Ok(dir.to_path_buf())
    }
}

/// A CSV field, quoted when it holds a comma, a quote or a line break (model names such as
/// `two-tower(softmax, d 64, ≤3 epochs)` do).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Cases as TSV (`case`, user key, relevant product ids, candidate product ids or `site` for
/// the whole target catalog; ids comma-separated), so that another implementation can be
/// judged on exactly the same cases.
pub fn cases_tsv(d: &Dataset, cases: &[Case]) -> String {
    let key = |i: &ItemId| d.products[*i as usize].external_id.as_str();
    let mut out = String::from("case\tuser\trelevant\tcandidates\n");
    for (n, c) in cases.iter().enumerate() {
        let relevant: Vec<&str> = c.relevant.iter().map(key).collect();
        let candidates = match &c.candidates {
            Candidates::Site => "site".to_string(),
            Candidates::List(l) => l.iter().map(key).collect::<Vec<_>>().join(","),
        };
        let _ = writeln!(out, "{n}\t{}\t{}\t{candidates}", d.users[c.user as usize], relevant.join(","));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::CaseResult;

    fn result(model: &str, values: &[(usize, f64)]) -> TaskResult {
        TaskResult {
            model: model.into(),
            task: "a→b".into(),
            cases: values.len(),
            metrics: BTreeMap::new(),
            segments: BTreeMap::new(),
            fit_seconds: 0.0,
            eval_seconds: 0.0,
            fit_notes: Vec::new(),
            per_case: values
                .iter()
                .map(|&(history, v)| CaseResult {
                    user: 0,
                    metrics: [("ndcg@10".to_string(), v)].into(),
                    top: Vec::new(),
                    ranking: Vec::new(),
                    other_site_history: history,
                    dominant_category: "none".into(),
                })
                .collect(),
        }
    }

    #[test]
    fn csv_fields_with_commas_are_quoted() {
        assert_eq!(csv_field("als"), "als");
        assert_eq!(csv_field("two-tower(softmax, d 64)"), "\"two-tower(softmax, d 64)\"");
        assert_eq!(csv_field("category=\"a\""), "\"category=\"\"a\"\"\"");
    }

    #[test]
    fn the_segment_check_finds_the_best_single_model_per_segment() {
        // short histories: the default loses clearly to `content`; long ones: it wins
        let short = [(1, 0.0), (2, 0.1), (1, 0.0), (2, 0.0)];
        let long = [(7, 0.5), (9, 0.4), (8, 0.6)];
        let default = result("blend", &[short.as_slice(), long.as_slice()].concat());
        let content = result(
            "content",
            &[[(1, 1.0), (2, 0.9), (1, 1.0), (2, 0.8)].as_slice(), [(7, 0.1), (9, 0.0), (8, 0.1)].as_slice()].concat(),
        );
        let knn = result(
            "itemknn",
            &[[(1, 0.0), (2, 0.0), (1, 0.0), (2, 0.1)].as_slice(), [(7, 0.4), (9, 0.5), (8, 0.5)].as_slice()].concat(),
        );
        let other_blend =
            result("blend-content", &[(1, 1.0), (2, 1.0), (1, 1.0), (2, 1.0), (7, 1.0), (9, 1.0), (8, 1.0)]);
        let checks = segment_checks(&[default, content, knn, other_blend], "blend", "ndcg@10");
        assert_eq!(checks.len(), 2);
        let (s, l) = (&checks[0], &checks[1]);
        assert_eq!((s.segment.as_str(), s.best.as_str(), s.test.n), ("history=1-2", "content", 4));
        assert!(!s.holds(), "0.025 against 0.925 is far more than one s.e. below");
        assert_eq!((l.segment.as_str(), l.best.as_str()), ("history=6+", "itemknn"));
        assert!(l.holds());
        assert!((l.test.mean_difference - (1.5 - 1.4) / 3.0).abs() < 1e-12);
    }
}
