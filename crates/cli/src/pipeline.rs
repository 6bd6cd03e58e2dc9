//! `warmstart pipeline`: the main job end to end on a data directory.

use std::path::PathBuf;

use clap::Args;
use warmstart_store::Store;

use crate::ingest::{describe, read, write, IngestArgs, Records, Source};
use crate::{stats, Cli};

/// Arguments of `warmstart pipeline`.
#[derive(Debug, Clone, Args)]
pub struct PipelineArgs {
    /// Data directory holding the datasets (`fashion-products/`, `amazon-art-office/`,
    /// `cdrib-game-video/`, `movielens-100k/`).
    #[arg(long, env = "WARMSTART_DATA", default_value = "../shared/data")]
    pub data: PathBuf,
    /// Simulated shops to deal the fashion catalog into.
    #[arg(long, default_value_t = 3)]
    pub fashion_shops: usize,
}

fn args(source: Source, path: PathBuf, shops: usize) -> IngestArgs {
    IngestArgs {
        source,
        path,
        strict: false,
        shops,
        seed: 42,
        no_verify_images: false,
        overlap_users: warmstart_ingest::cdrib::OVERLAP_USERS,
        site: None,
        dataset: None,
        currency: None,
        records: Records::Products,
        map: None,
        delimiter: ",".into(),
        kind: "purchase".into(),
        user_prefix: String::new(),
    }
}

/// `warmstart pipeline`.
pub fn run(cli: &Cli, a: &PipelineArgs) -> anyhow::Result<()> {
    let mut store = Store::open(&cli.store_path())?;
    let sources = [
        (Source::FashionProducts, "fashion-products"),
        (Source::AmazonArtOffice, "amazon-art-office"),
        (Source::Cdrib, "cdrib-game-video"),
        (Source::Movielens100k, "movielens-100k"),
    ];
    let mut found = 0;
    for (source, dir) in sources {
        let path = a.data.join(dir);
        if !path.is_dir() {
            eprintln!("skipping {dir}: {} not found", path.display());
            continue;
        }
        found += 1;
        let ia = args(source, path, a.fashion_shops);
        let import = read(&ia, cli.json)?;
        let summary = write(&mut store, &import, cli.json)?;
        if !cli.json {
            println!("{}", describe(&import, &summary));
        }
    }
    anyhow::ensure!(found > 0, "no dataset found under {} (set --data or WARMSTART_DATA)", a.data.display());
    let st = store.stats()?;
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "stats": st }))?);
    } else {
        print!("\n{}", stats::render(&st));
    }
    Ok(())
}
