//! `warmstart experiments`: an experiment's report from the store (JSON, HTML, charts, and
//! per-session counts for independent checks), and the shopper simulator against a running
//! server.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::json;
use warmstart_app::experiment::{report_from_store, Experiments};
use warmstart_app::experiment_pages::{write_report, write_sessions_csv};
use warmstart_app::simulate::{
    holdout_shoppers, offline_ndcg, run_experiment, summarize, write_ctr_chart, GroundTruth, SimulationOptions,
};
use warmstart_eval::personas::{load_personas, parse_personas, BUILTIN_PERSONAS};
use warmstart_server::client::HttpClient;
use warmstart_store::Store;

use crate::Cli;

/// Experiments.
#[derive(Debug, Subcommand)]
pub enum ExperimentsCommand {
    /// An experiment's report from the store's events: JSON on stdout with --json, else a
    /// table; --out writes report.json, report.html and charts.
    Report(ReportArgs),
    /// Simulated shoppers (the served models' hold-out users) against a running server:
    /// CTR per variant, A/B against offline NDCG@10, sample-ratio check, CTR over time.
    Simulate(SimulateArgs),
}

/// Arguments of `experiments report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The experiments file the server runs with.
    #[arg(long)]
    pub experiments: PathBuf,
    /// Experiment key.
    #[arg(long)]
    pub key: String,
    /// Directory for report.json, report.html, ctr.svg/png, ctr_by_position.svg/png.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also write per-session counts (variant, impressions, clicks, carts, purchases) as CSV,
    /// for checks with other tools.
    #[arg(long)]
    pub sessions_csv: Option<PathBuf>,
}

/// Arguments of `experiments simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// The server (`http://host:port`).
    #[arg(long)]
    pub server: String,
    /// Dataset group whose hold-out shoppers are simulated.
    #[arg(long)]
    pub dataset: String,
    /// Target site (the shop they have never used).
    #[arg(long)]
    pub site: String,
    /// Experiments to run, one after another, on the same shopper sequence (repeatable).
    #[arg(long = "experiment", required = true)]
    pub experiments: Vec<String>,
    /// The experiments file the server runs with (for offline NDCG@10 per variant).
    #[arg(long)]
    pub experiments_file: PathBuf,
    /// Sessions per experiment.
    #[arg(long, default_value_t = 10_000)]
    pub sessions: usize,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Sessions per point of the CTR-over-time curve.
    #[arg(long, default_value_t = 1000)]
    pub window: usize,
    /// Where clicks come from: `held-out` (the items hold-out shoppers really chose on the
    /// target shop) or `personas` (their persona's utility; users from `personas --save-only`).
    #[arg(long, default_value = "held-out")]
    pub ground_truth: String,
    /// Personas file for `--ground-truth personas` (default: the built-in one).
    #[arg(long)]
    pub personas: Option<PathBuf>,
    /// A broken client: VARIANT=SHARE drops that share of the variant's sessions' events.
    #[arg(long)]
    pub drop: Option<String>,
    /// Output directory.
    #[arg(long)]
    pub out: PathBuf,
}

/// `warmstart experiments …`.
pub fn run(cli: &Cli, cmd: &ExperimentsCommand) -> anyhow::Result<()> {
    match cmd {
        ExperimentsCommand::Report(a) => report(cli, a),
        ExperimentsCommand::Simulate(a) => simulate(cli, a),
    }
}

fn report(cli: &Cli, a: &ReportArgs) -> anyhow::Result<()> {
    let xs = Experiments::load(&a.experiments)?;
    let x = xs.get(&a.key).with_context(|| format!("{}: no experiment `{}`", a.experiments.display(), a.key))?;
    let store = Store::open(&cli.store_path())?;
    let r = report_from_store(&store, x)?;
    if let Some(path) = &a.sessions_csv {
        write_sessions_csv(&store, &a.key, path)?;
    }
    if let Some(dir) = &a.out {
        for f in write_report(&r, dir)? {
            eprintln!("wrote {}", f.display());
        }
    }
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    println!("experiment {} ({:?}; control {}; winner {})", r.experiment, r.allocation, r.control, r.winner);
    println!(
        "{:<16} {:>9} {:>11} {:>8} {:>8} {:>19} {:>9} {:>10}",
        "variant", "sessions", "impressions", "clicks", "CTR %", "95% CI", "lift %", "p"
    );
    for v in &r.variants {
        let (lift, p) = v
            .lift
            .as_ref()
            .map(|l| (format!("{:+.1}", 100.0 * l.relative), format!("{:.2e}", l.p_value)))
            .unwrap_or_default();
        println!(
            "{:<16} {:>9} {:>11} {:>8} {:>8.3} {:>19} {:>9} {:>10}",
            v.name,
            v.sessions,
            v.impressions,
            v.clicks,
            100.0 * v.ctr.value,
            format!("[{:.3}, {:.3}]", 100.0 * v.ctr.lo, 100.0 * v.ctr.hi),
            lift,
            p
        );
    }
    if let Some(s) = &r.sample_ratio {
        println!(
            "sample ratio: chi2 {:.2} (df {}), p {:.2e}{}",
            s.chi2,
            s.df,
            s.p_value,
            if s.mismatch { " — MISMATCH: do not trust this comparison" } else { "" }
        );
    }
    Ok(())
}

fn simulate(cli: &Cli, a: &SimulateArgs) -> anyhow::Result<()> {
    let xs = Experiments::load(&a.experiments_file)?;
    let store = Store::open(&cli.store_path())?;
    let personas = match (a.ground_truth.as_str(), &a.personas) {
        ("held-out", _) => Vec::new(),
        ("personas", Some(p)) => load_personas(p)?,
        ("personas", None) => parse_personas(BUILTIN_PERSONAS, "data/personas.toml (built in)")?,
        (other, _) => anyhow::bail!("--ground-truth {other}: held-out or personas"),
    };
    let truth = if personas.is_empty() { GroundTruth::HeldOut } else { GroundTruth::Personas(&personas) };
    let shoppers = holdout_shoppers(&store, &a.dataset, &a.site, truth)?;
    anyhow::ensure!(!shoppers.is_empty(), "no hold-out shoppers of {} on {}", a.dataset, a.site);
    let offline = offline_ndcg(&store, &a.dataset, &a.site)?;
    drop(store);
    eprintln!(
        "{} hold-out shoppers of {} (their {} items were never trained on; clicks by {})",
        shoppers.len(),
        a.dataset,
        a.site,
        a.ground_truth
    );
    let drop = a
        .drop
        .as_deref()
        .map(|d| -> anyhow::Result<(String, f64)> {
            let (v, s) = d.split_once('=').context("--drop VARIANT=SHARE")?;
            let share: f64 = s.parse().context("--drop: SHARE is a number in [0, 1]")?;
            anyhow::ensure!((0.0..=1.0).contains(&share), "--drop: SHARE is a number in [0, 1]");
            Ok((v.to_string(), share))
        })
        .transpose()?;
    let opts = SimulationOptions { sessions: a.sessions, seed: a.seed, window: a.window, drop, ..Default::default() };
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let mut client = HttpClient::new(&a.server)?;
    let mut runs = Vec::new();
    let mut summary = Vec::new();
    for key in &a.experiments {
        let x = xs.get(key).with_context(|| format!("{}: no experiment `{key}`", a.experiments_file.display()))?;
        let bar = crate::progress(a.sessions as u64, cli.json, &format!("simulating {key}"));
        let run = run_experiment(&mut client, &shoppers, &a.site, key, &opts, &mut |n| bar.set_position(n as u64))?;
        bar.finish_and_clear();
        write_report(&run.report, &a.out.join(key))?;
        let line = summarize(&run, x, &offline);
        if !cli.json {
            eprintln!("{}", serde_json::to_string(&line)?);
        }
        summary.push(line);
        runs.push(run);
    }
    let files = write_ctr_chart(
        &runs,
        &format!("{} on {}: cumulative CTR (seed {})", a.dataset, a.site, a.seed),
        &a.out.join("ctr_over_time"),
    )?;
    let out = json!({"dataset": a.dataset, "site": a.site, "ground_truth": a.ground_truth, "shoppers": shoppers.len(), "options": opts,
        "runs": summary, "curves": runs.iter().map(|r| json!({"experiment": r.experiment, "ctr_over_time": r.ctr_over_time, "cumulative_ctr": r.cumulative_ctr, "variant_sessions": r.variant_sessions})).collect::<Vec<_>>()});
    std::fs::write(a.out.join("simulation.json"), serde_json::to_string_pretty(&out)?)?;
    for f in files {
        eprintln!("wrote {}", f.display());
    }
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(())
}
