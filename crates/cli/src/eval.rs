//! `warmstart eval` and `warmstart tune`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use warmstart_core::{Dataset, HistoryWeights};
use warmstart_eval::protocol::{self, Candidates};
use warmstart_eval::report::{Comparison, CvResult, RunReport};
use warmstart_eval::runner::{fit_and_evaluate, fit_evaluate_keep, ranked_cases, TaskResult};
use warmstart_eval::stats::{mean_ci, paired_t_test};
use warmstart_eval::{grid, EvalConfig, Protocol, ProtocolOptions, Task};
use warmstart_store::Store;

use crate::vectors::{load_vectors, VectorSpec, CONTENT_ENCODER};
use crate::{progress, Cli};

/// Arguments of `warmstart eval`.
#[derive(Debug, Clone, Args)]
pub struct EvalArgs {
    /// cold-start, cdrib, loo or random.
    #[arg(long, default_value = "cold-start")]
    pub protocol: String,
    /// Dataset group in the store (default: amazon-art-office for cold-start and loo,
    /// cdrib-game-video for cdrib, movielens-100k for random).
    #[arg(long)]
    pub dataset: Option<String>,
    /// Models, comma-separated: random, pop, itemknn, als, bpr.
    #[arg(long, default_value = "random,pop,itemknn,als,bpr")]
    pub models: String,
    /// Content vectors and history weights.
    #[command(flatten)]
    pub input: ModelInputArgs,
    /// Cut-offs, comma-separated.
    #[arg(long, default_value = "5,10,20")]
    pub k: String,
    /// k-fold cross-validation over users (cold-start protocol); `--folds` alone means 5.
    #[arg(long, num_args = 0..=1, default_missing_value = "5")]
    pub folds: Option<usize>,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Worker threads for training (0 = all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Where run directories are written.
    #[arg(long, default_value = "runs")]
    pub runs_dir: PathBuf,
    /// Also write TREC run and qrels files (full rankings of up to --trec-cases cases per
    /// task) into this directory, for checking the metrics with an independent tool.
    #[arg(long)]
    pub trec_dir: Option<PathBuf>,
    /// Cases per task in the TREC files.
    #[arg(long, default_value_t = 300)]
    pub trec_cases: usize,
    /// Also write every task's test and validation cases (user, relevant items, candidates)
    /// into `cases/` of the run directory, for judging a peer on exactly the same cases
    /// (`per_case.csv` holds every model's metrics per case).
    #[arg(long)]
    pub write_cases: bool,
    /// The model `warmstart serve` uses by default: when it is among --models, the run checks
    /// it against the best single model in every history-length segment (within one standard
    /// error of the paired difference).
    #[arg(long, default_value = "blend")]
    pub default_model: String,
}

pub(crate) fn parse_ks(s: &str) -> anyhow::Result<Vec<usize>> {
    let ks: Vec<usize> = s
        .split(',')
        .map(|x| x.trim().parse::<usize>().with_context(|| format!("--k: `{x}` is not a number")))
        .collect::<Result<_, _>>()?;
    anyhow::ensure!(!ks.is_empty() && ks.iter().all(|&k| k > 0), "--k needs positive cut-offs");
    Ok(ks)
}

fn default_dataset(p: Protocol) -> &'static str {
    match p {
        Protocol::ColdStart | Protocol::Loo => "amazon-art-office",
        Protocol::Cdrib => "cdrib-game-video",
        Protocol::Random => "movielens-100k",
    }
}

/// Builds the tasks of a protocol on a dataset.
pub(crate) fn tasks(p: Protocol, d: &Dataset, opts: &ProtocolOptions) -> anyhow::Result<Vec<Task>> {
    let dirs = protocol::directions(d);
    let mut out = Vec::new();
    match p {
        Protocol::ColdStart => {
            anyhow::ensure!(!dirs.is_empty(), "the cold-start protocol needs a dataset with at least two sites");
            for (s, t) in dirs {
                out.push(protocol::cold_start(d, s, t, None, opts));
            }
        }
        Protocol::Cdrib => {
            anyhow::ensure!(!dirs.is_empty(), "the CDRIB protocol needs a dataset with at least two sites");
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
fn file_stem(task: &str) -> String {
    let mapped: String = task
        .replace('→', "_to_")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
        .collect();
    mapped.split('_').filter(|p| !p.is_empty()).collect::<Vec<_>>().join("_")
}

fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main_metric(ks: &[usize]) -> String {
    format!("ndcg@{}", if ks.contains(&10) { 10 } else { ks[0] })
}

/// Paired tests of the best model against each other model on each task.
fn compare(details: &[TaskResult], metric: &str) -> Vec<Comparison> {
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
fn pool(parts: &[TaskResult], task: &str) -> Option<TaskResult> {
    let mut all = parts.first()?.clone();
    all.task = task.to_string();
    all.per_case = parts.iter().flat_map(|r| r.per_case.clone()).collect();
    all.cases = all.per_case.len();
    all.metrics = warmstart_eval::runner::mean_metrics(&all.per_case);
    for name in parts[0].metrics.keys() {
        if !all.metrics.contains_key(name) {
            let mean = parts.iter().map(|r| r.metrics[name]).sum::<f64>() / parts.len() as f64;
            all.metrics.insert(name.clone(), mean);
        }
    }
    all.segments = warmstart_eval::runner::segments(&all.per_case);
    all.fit_seconds = parts.iter().map(|r| r.fit_seconds).sum::<f64>() / parts.len() as f64;
    all.eval_seconds = parts.iter().map(|r| r.eval_seconds).sum();
    Some(all)
}

/// Runs an evaluation and returns its report (also used by `warmstart pipeline`).
pub(crate) fn evaluate(store: &Store, a: &EvalArgs, json: bool) -> anyhow::Result<(RunReport, PathBuf)> {
    let started = Instant::now();
    let p: Protocol = a.protocol.parse()?;
    let ks = parse_ks(&a.k)?;
    let dataset = a.dataset.clone().unwrap_or_else(|| default_dataset(p).to_string());
    let d = store.load_dataset(Some(&dataset))?;
    let opts = ProtocolOptions { seed: a.seed, history: a.input.history_weights()?, ..Default::default() };
    let models: Vec<String> = a.models.split(',').map(|m| m.trim().to_string()).filter(|m| !m.is_empty()).collect();
    for m in &models {
        warmstart_models::by_name(m, a.threads, a.seed)?; // validate names before any work
    }
    let item_vectors = if models.iter().any(|m| warmstart_models::needs_vectors(m)) {
        Some(std::sync::Arc::new(load_vectors(store, &dataset, &d, &a.input.vectors)?))
    } else if models.iter().any(|m| warmstart_models::can_use_vectors(m)) {
        // used when present (e.g. not on id-only data)
        load_vectors(store, &dataset, &d, &a.input.vectors).ok().map(std::sync::Arc::new)
    } else {
        None
    };
    let cfg = EvalConfig { ks: ks.clone(), seed: a.seed, item_vectors };
    let mut report = RunReport {
        protocol: p.as_str().into(),
        dataset: dataset.clone(),
        ks: ks.clone(),
        seed: a.seed,
        git_commit: git_commit(),
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
    let metric = main_metric(&ks);
    let mut cases_to_write: Vec<(String, String)> = Vec::new();
    if let Some(k) = a.folds {
        anyhow::ensure!(!a.write_cases, "--write-cases applies without --folds");
        anyhow::ensure!(p == Protocol::ColdStart, "--folds applies to the cold-start protocol");
        for (s, t) in protocol::directions(&d) {
            let folds = protocol::cold_start_folds(&d, s, t, k, &opts)?;
            let direction = format!("{}→{}", d.sites[s as usize].key, d.sites[t as usize].key);
            for n in &folds[0].notes {
                if !report.notes.contains(n) {
                    report.notes.push(n.clone());
                }
            }
            let pb = progress((models.len() * k) as u64, json, &direction);
            let mut pooled: Vec<TaskResult> = Vec::new();
            for m in &models {
                let mut per_fold: Vec<TaskResult> = Vec::new();
                for task in &folds {
                    let params = warmstart_models::by_name(m, a.threads, a.seed)?;
                    per_fold.push(fit_and_evaluate(params.as_ref(), &d, task, &cfg, false)?);
                    pb.inc(1);
                }
                let names: Vec<String> = per_fold[0].metrics.keys().cloned().collect();
                let metrics = names
                    .iter()
                    .map(|n| (n.clone(), mean_ci(&per_fold.iter().map(|r| r.metrics[n]).collect::<Vec<_>>())))
                    .collect();
                report.cross_validation.push(CvResult { model: m.clone(), task: direction.clone(), folds: k, metrics });
                pooled.extend(pool(&per_fold, &direction));
            }
            pb.finish_and_clear();
            report.comparisons.extend(compare(&pooled, &metric));
            report.segment_checks.extend(warmstart_eval::report::segment_checks(&pooled, &a.default_model, &metric));
            for r in pooled {
                report.push(r);
            }
        }
    } else {
        let tasks = tasks(p, &d, &opts)?;
        if a.write_cases {
            cases_to_write = tasks
                .iter()
                .flat_map(|t| {
                    let stem = file_stem(&t.name);
                    [
                        (format!("{stem}.test.tsv"), warmstart_eval::report::cases_tsv(&d, &t.test)),
                        (format!("{stem}.valid.tsv"), warmstart_eval::report::cases_tsv(&d, &t.valid)),
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
        let pb = progress((models.len() * tasks.len()) as u64, json, "evaluating");
        let mut details = Vec::new();
        for task in &tasks {
            for m in &models {
                pb.set_message(format!("{m} on {}", task.name));
                let params = warmstart_models::by_name(m, a.threads, a.seed)?;
                let (r, model) = fit_evaluate_keep(params.as_ref(), &d, task, &cfg, false)?;
                if let Some(dir) = &a.trec_dir {
                    write_trec(dir, model.as_ref(), &d, task, &cfg, a.trec_cases)?;
                }
                details.push(r);
                pb.inc(1);
            }
        }
        pb.finish_and_clear();
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
        report.segment_checks = warmstart_eval::report::segment_checks(&details, &a.default_model, &metric);
        for r in details {
            report.push(r);
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    let dir = a.runs_dir.join(format!("{}-{}-{}", report.started_at, p.as_str(), dataset));
    report.write(&dir)?;
    if !cases_to_write.is_empty() {
        let cases_dir = dir.join("cases");
        std::fs::create_dir_all(&cases_dir).with_context(|| format!("creating {}", cases_dir.display()))?;
        for (name, text) in cases_to_write {
            let path = cases_dir.join(name);
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        }
    }
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_string_pretty(&serde_json::json!({
            "protocol": p.as_str(), "dataset": dataset, "models": models, "ks": ks, "folds": a.folds, "seed": a.seed,
            "threads": a.threads, "git_commit": report.git_commit, "store": store.location(),
        }))?,
    )?;
    Ok((report, dir))
}

/// Writes `<model>.run`, `qrels.txt` and `<model>.metrics.json` for the first cases of a
/// full-ranking task.
fn write_trec(
    dir: &Path,
    model: &dyn warmstart_models::Recommender,
    d: &Dataset,
    task: &Task,
    cfg: &EvalConfig,
    limit: usize,
) -> anyhow::Result<()> {
    if task.test.iter().any(|c| matches!(c.candidates, Candidates::List(_))) {
        return Ok(()); // sampled candidates are not a TREC ranking
    }
    std::fs::create_dir_all(dir)?;
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
        metrics.insert(q, serde_json::to_value(&c.metrics)?);
    }
    std::fs::write(dir.join(format!("{}-{tag}.run", model.name())), run)?;
    std::fs::write(dir.join(format!("{tag}.qrels")), qrels)?;
    std::fs::write(dir.join(format!("{}-{tag}.metrics.json", model.name())), serde_json::to_string(&metrics)?)?;
    Ok(())
}

/// `warmstart eval`.
pub fn run(cli: &Cli, a: &EvalArgs) -> anyhow::Result<()> {
    let store = Store::open(&cli.store_path())?;
    let (report, dir) = evaluate(&store, a, cli.json)?;
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
        println!("\nwrote {}", dir.display());
    }
    Ok(())
}

/// Arguments of `warmstart tune`.
#[derive(Debug, Clone, Args)]
pub struct TuneArgs {
    /// Protocol (as for eval).
    #[arg(long, default_value = "cold-start")]
    pub protocol: String,
    /// Dataset group.
    #[arg(long)]
    pub dataset: Option<String>,
    /// Models to tune, comma-separated.
    #[arg(long, default_value = "itemknn,als,bpr")]
    pub models: String,
    /// Content vectors and history weights.
    #[command(flatten)]
    pub input: ModelInputArgs,
    /// Selection metric on the validation cases.
    #[arg(long, default_value = "ndcg@10")]
    pub metric: String,
    /// Seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Threads (0 = all).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

/// `warmstart tune`: grid search on the validation cases of every task.
pub fn tune(cli: &Cli, a: &TuneArgs) -> anyhow::Result<()> {
    let store = Store::open(&cli.store_path())?;
    let p: Protocol = a.protocol.parse()?;
    let dataset = a.dataset.clone().unwrap_or_else(|| default_dataset(p).to_string());
    let d = store.load_dataset(Some(&dataset))?;
    let opts = ProtocolOptions { seed: a.seed, history: a.input.history_weights()?, ..Default::default() };
    let k: usize = a.metric.split('@').nth(1).and_then(|k| k.parse().ok()).unwrap_or(10);
    let item_vectors = if a.models.split(',').any(|m| warmstart_models::needs_vectors(m.trim())) {
        Some(std::sync::Arc::new(load_vectors(&store, &dataset, &d, &a.input.vectors)?))
    } else {
        None
    };
    let cfg = EvalConfig { ks: vec![k], seed: a.seed, item_vectors };
    let mut all = serde_json::Map::new();
    for task in tasks(p, &d, &opts)? {
        for m in a.models.split(',').map(str::trim) {
            let quiet = cli.json;
            let results = grid::search(m, &d, &task, &cfg, &a.metric, a.threads, &|g| {
                if !quiet {
                    eprintln!(
                        "  {} {m} {}: {} = {:.4} ({:.1}s)",
                        task.name, g.params, a.metric, g.score, g.fit_seconds
                    );
                }
            })?;
            if !cli.json {
                println!("{} {m}: best {} ({} = {:.4})", task.name, results[0].params, a.metric, results[0].score);
            }
            all.insert(format!("{m} {}", task.name), serde_json::to_value(&results)?);
        }
    }
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&all)?);
    }
    Ok(())
}

/// What models read besides the training matrix: content vectors and history weights.
#[derive(Debug, Clone, Args)]
pub struct ModelInputArgs {
    /// Content vectors of content models: a stored model (minilm, clip/text, clip/image)
    /// or TEXT+IMAGE[:w] to fuse two with text weight w.
    #[arg(long, default_value = "minilm")]
    pub vectors: VectorSpec,
    /// Half-life of the history recency decay (days for timestamped data, positions for
    /// sequences); none by default.
    #[arg(long)]
    pub half_life: Option<f64>,
    /// Count every history interaction 1 (no kind weights or rating scaling).
    #[arg(long)]
    pub uniform_history: bool,
}

impl Default for ModelInputArgs {
    fn default() -> Self {
        ModelInputArgs { vectors: VectorSpec::Single(CONTENT_ENCODER.into()), half_life: None, uniform_history: false }
    }
}

impl ModelInputArgs {
    /// The history weights asked for.
    pub(crate) fn history_weights(&self) -> anyhow::Result<HistoryWeights> {
        if self.uniform_history {
            anyhow::ensure!(self.half_life.is_none(), "--uniform-history and --half-life exclude each other");
            return Ok(HistoryWeights::uniform());
        }
        Ok(HistoryWeights::builder().half_life(self.half_life).build()?)
    }
}
