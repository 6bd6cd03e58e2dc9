//! `warmstart eval` and `warmstart tune`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use warmstart_core::HistoryWeights;
use warmstart_eval::report::RunReport;
use warmstart_eval::run::{self, RunPlan, RunProgress};
use warmstart_eval::{grid, EvalConfig, Protocol, ProtocolOptions};
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

/// Runs an evaluation, writes its run directory and returns the report and the directory
/// (also used by `warmstart pipeline`).
pub(crate) fn evaluate(store: &Store, a: &EvalArgs, json: bool) -> anyhow::Result<(RunReport, PathBuf)> {
    let started = std::time::Instant::now();
    let p: Protocol = a.protocol.parse()?;
    let ks = parse_ks(&a.k)?;
    let dataset = a.dataset.clone().unwrap_or_else(|| run::default_dataset(p).to_string());
    let d = store.load_dataset(Some(&dataset))?;
    let options = ProtocolOptions { seed: a.seed, history: a.input.history_weights()?, ..Default::default() };
    let models: Vec<String> = a.models.split(',').map(|m| m.trim().to_string()).filter(|m| !m.is_empty()).collect();
    for m in &models {
        warmstart_models::by_name(m, a.threads, a.seed)?; // validate names before loading vectors
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
    let plan = RunPlan {
        protocol: p,
        dataset: dataset.clone(),
        models: models.clone(),
        folds: a.folds,
        options,
        threads: a.threads,
        default_model: a.default_model.clone(),
        write_cases: a.write_cases,
        trec: a.trec_dir.clone().map(|dir| (dir, a.trec_cases)),
        git_commit: git_commit(),
    };
    let mut bar: Option<indicatif::ProgressBar> = None;
    let out = run::run(&d, &plan, &cfg, &mut |event| match event {
        RunProgress::Stage { total, label } => bar = Some(progress(total, json, &label)),
        RunProgress::Fitting(message) => bar.iter().for_each(|pb| pb.set_message(message.clone())),
        RunProgress::Fitted => bar.iter().for_each(|pb| pb.inc(1)),
        RunProgress::StageDone => bar.take().iter().for_each(|pb| pb.finish_and_clear()),
    })?;
    let mut report = out.report;
    report.seconds = started.elapsed().as_secs_f64(); // loading the data included, as always
    let dir = a.runs_dir.join(format!("{}-{}-{}", report.started_at, p.as_str(), dataset));
    report.write(&dir)?;
    if !out.cases.is_empty() {
        let cases_dir = dir.join("cases");
        std::fs::create_dir_all(&cases_dir).with_context(|| format!("creating {}", cases_dir.display()))?;
        for (name, text) in out.cases {
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

fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
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
    let dataset = a.dataset.clone().unwrap_or_else(|| run::default_dataset(p).to_string());
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
    for task in run::tasks(p, &d, &opts)? {
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
