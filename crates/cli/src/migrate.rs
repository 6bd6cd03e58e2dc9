//! `warmstart migrate --from A --to B`: copies a whole store to another backend.

use std::path::PathBuf;

use clap::Args;

use crate::Cli;

/// Arguments of `warmstart migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Source store: an SQLite file or a postgres:// URL (default: the --store in effect).
    #[arg(long)]
    pub from: Option<PathBuf>,
    /// Destination store, which must be empty: an SQLite file or a postgres:// URL.
    #[arg(long)]
    pub to: PathBuf,
    /// Do not copy the trained models directory.
    #[arg(long)]
    pub no_models: bool,
}

pub(crate) fn run(cli: &Cli, a: &MigrateArgs) -> anyhow::Result<()> {
    let from = a.from.clone().unwrap_or_else(|| cli.store_path());
    let pb = crate::progress(0, cli.json, "migrate");
    let report = warmstart_app::migrate::migrate(&from, &a.to, !a.no_models, &|table, n| {
        pb.set_message(format!("{} {n} rows", table.name()));
        pb.tick();
    })?;
    pb.finish_and_clear();
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!("copied {} → {} in {:.1} s", report.from, report.to, report.seconds);
    for (table, n) in &report.rows {
        println!("  {table:<18} {n:>10}");
    }
    println!("  model files        {:>10}  (into {})", report.model_files, report.models_dir.display());
    println!("stats of the copy match the source:\n");
    print!("{}", crate::stats::render(&report.stats));
    Ok(())
}
