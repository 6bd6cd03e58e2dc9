//! Command-line front end of warmstart: argument parsing, progress display and output.

mod analyze;
mod embed;
mod eval;
mod experiments;
mod ingest;
mod item_maps;
mod migrate;
pub mod npy;
mod personas;
mod pipeline;
mod recommend;
mod serve;
mod stats;
mod train;
mod vectors;

use std::path::PathBuf;

use std::process::ExitCode;
pub use warmstart_app::embedding::text_of as embed_text_of;

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

/// warmstart: cross-shop cold-start recommendations.
#[derive(Debug, Parser)]
#[command(name = "warmstart", version, about)]
pub struct Cli {
    /// Store: an SQLite file or a postgres:// URL (default: $WARMSTART_HOME/store.sqlite, else
    /// ~/.local/share/warmstart/store.sqlite).
    #[arg(long, global = true, env = "WARMSTART_STORE")]
    pub store: Option<PathBuf>,
    /// Print machine-readable JSON on stdout instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Sub-commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Import a catalog or interaction log into the store (transactional and idempotent).
    Ingest(ingest::IngestArgs),
    /// Print what the store holds: sites, products, users, interactions, overlap, missing fields.
    Stats,
    /// Compute content vectors for the products in the store (cached by content hash).
    Embed(embed::EmbedArgs),
    /// Manage model files.
    #[command(subcommand)]
    Models(embed::ModelsCommand),
    /// Evaluate models on a protocol and print the leaderboard (results also in a run directory).
    Eval(eval::EvalArgs),
    /// Grid-search hyper-parameters on the validation cases.
    Tune(eval::TuneArgs),
    /// Rank a site's catalog for one user from their history on other sites (trained artifacts).
    Recommend(recommend::RecommendArgs),
    /// Serve recommendations over HTTP from the store's trained artifacts.
    Serve(serve::ServeArgs),
    /// Train a model (image-encoder: a dual encoder on a catalog's image–title pairs).
    #[command(subcommand)]
    Train(train::TrainCommand),
    /// Online experiments: reports from stored events, and simulated shoppers against a server.
    #[command(subcommand)]
    Experiments(experiments::ExperimentsCommand),
    /// Simulated shoppers from named personas: rank a third shop from two others with
    /// text, image, texture and fused vectors (cross-validated).
    Personas(personas::PersonasArgs),
    /// Cluster embedding sets and score the clusters (Fashion-MNIST reproduction, stored sets).
    #[command(subcommand)]
    Analyze(analyze::AnalyzeCommand),
    /// Copy a whole store to another backend (SQLite ⇄ PostgreSQL), with its trained models.
    Migrate(migrate::MigrateArgs),
    /// The main job end to end on a data directory: ingest every known dataset found, then stats.
    Pipeline(pipeline::PipelineArgs),
}

impl Cli {
    /// The store path in effect.
    pub fn store_path(&self) -> PathBuf {
        self.store.clone().unwrap_or_else(warmstart_store::default_store_path)
    }
}

/// A progress bar on stderr (hidden when output is JSON or stderr is not a terminal).
pub(crate) fn progress(len: u64, json: bool, what: &str) -> ProgressBar {
    if json {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{spinner} {prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg} (ETA {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb.set_prefix(what.to_string());
    pb
}

/// Runs the command line; returns the process exit code.
/// Runs candle's element-wise ops on the calling thread unless `CANDLE_NUM_THREADS` says
/// otherwise. Candle keeps a pool of its own for them whose idle workers spin for about a
/// millisecond after each op, on the cores that rayon (matrix products, the models' fused
/// ops, batch workers) needs next: measured on 2 cores, the two-tower epoch is 10–25% faster
/// and MiniLM embedding 2% faster without it. Call first thing in `main`, before any thread
/// starts.
pub fn one_elementwise_thread() {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
}

pub fn main() -> ExitCode {
    one_elementwise_thread();
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a parsed command line.
pub fn run(cli: &Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Ingest(args) => ingest::run(cli, args),
        Command::Stats => stats::run(cli),
        Command::Embed(args) => embed::run(cli, args),
        Command::Models(c) => embed::models(cli, c),
        Command::Eval(args) => eval::run(cli, args),
        Command::Tune(args) => eval::tune(cli, args),
        Command::Recommend(args) => recommend::run(cli, args),
        Command::Serve(args) => serve::run(cli, args),
        Command::Experiments(c) => experiments::run(cli, c),
        Command::Pipeline(args) => pipeline::run(cli, args),
        Command::Train(c) => train::run(cli, c),
        Command::Personas(args) => personas::run(cli, args),
        Command::Analyze(c) => analyze::run(cli, c),
        Command::Migrate(args) => migrate::run(cli, args),
    }
}
