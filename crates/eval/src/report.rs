//! Leaderboards: the results of a run as a table, JSON, CSV and Markdown in a run directory.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::runner::TaskResult;
use crate::stats::{MeanCi, PairedTest};
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
        out
    }

    /// All metrics in long CSV form: `model,task,segment,metric,value`.
    pub fn csv(&self) -> String {
        let mut out = String::from("model,task,segment,metric,value\n");
        for d in &self.details {
            for (m, v) in &d.metrics {
                let _ = writeln!(out, "{},{},all,{},{}", d.model, d.task, m, v);
            }
            for (seg, ms) in &d.segments {
                for (m, v) in ms {
                    let _ = writeln!(out, "{},{},\"{}\",{},{}", d.model, d.task, seg.replace('"', "'"), m, v);
                }
            }
        }
        out
    }

    /// Writes `results.json`, `results.csv` and `leaderboard.md` into `dir` (created).
    pub fn write(&self, dir: &Path) -> Result<PathBuf> {
        std::fs::create_dir_all(dir).map_err(|e| Error::Io { path: dir.into(), source: e })?;
        let put = |name: &str, text: String| -> Result<()> {
            let p = dir.join(name);
            std::fs::write(&p, text).map_err(|e| Error::Io { path: p, source: e })
        };
        put("results.json", serde_json::to_string_pretty(self).unwrap_or_default())?;
        put("results.csv", self.csv())?;
        put("leaderboard.md", self.markdown())?;
        Ok(dir.to_path_buf())
    }
}
