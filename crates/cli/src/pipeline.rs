//! `warmstart pipeline`: the main job end to end on a data directory.

use std::path::PathBuf;

use clap::Args;
use warmstart_store::Store;

use crate::embed::{self, EmbedArgs};
use crate::eval::{evaluate, EvalArgs};
use crate::ingest::{describe, read, write, IngestArgs, Records, Source};
use crate::vectors::CONTENT_ENCODER;
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
    /// Models in the leaderboards.
    #[arg(long, default_value = "random,pop,itemknn,als,bpr")]
    pub models: String,
    /// Cut-offs of the leaderboards.
    #[arg(long, default_value = "5,10,20")]
    pub k: String,
    /// Where run directories are written.
    #[arg(long, default_value = "runs")]
    pub runs_dir: PathBuf,
    /// Only ingest and print stats.
    #[arg(long)]
    pub skip_eval: bool,
    /// Do not train and publish the artifacts `warmstart serve` loads.
    #[arg(long)]
    pub skip_train: bool,
    /// Do not compute content vectors (the content models then leave the leaderboard).
    #[arg(long)]
    pub skip_embed: bool,
}

/// Datasets whose products are embedded by the main job (those with text and a
/// cross-site leaderboard).
const EMBEDDED: [&str; 1] = ["amazon-art-office"];

/// Content models added to the cold-start leaderboard when vectors exist.
const CONTENT_MODELS: &str = "content,content-pop,content-map,content-map-pop,content-pop-k3,content-map-pop-k2";

/// The two-tower model in both losses and GraphSAGE, on a small epoch budget, in the
/// cold-start leaderboards (`warmstart train two-tower|graphsage` and `eval --models ...`
/// train them fully).
const NEURAL_MODELS: &str = "two-tower:epochs=3,two-tower-bce:epochs=3";
/// GraphSAGE on a 5-epoch budget, in the Amazon cold-start leaderboard only (on CDRIB's 42,000
/// users one epoch takes about a minute; `eval --protocol cdrib --models graphsage` runs it there).
const GRAPHSAGE_MODELS: &str = "graphsage:epochs=5";
/// The default `serve` picks (the blend of item-kNN, RP3beta, ALS, popularity and brand-kNN,
/// weights from validation users), the members the other leaderboard models lack and user-kNN
/// (weight 0 in the blend on validation), in the cross-shop leaderboards, so the default
/// stands beside every single model with paired tests.
const DEFAULT_MODELS: &str = "rp3beta,brandknn,userknn,blend";

/// The leaderboards of the main job: (protocol, dataset). `loo` is URLLM's next-item protocol
/// on Amazon (returning shoppers: histories hold items of the target's own shop).
const LEADERBOARDS: [(&str, &str); 4] = [
    ("cold-start", "amazon-art-office"),
    ("cdrib", "cdrib-game-video"),
    ("loo", "amazon-art-office"),
    ("random", "movielens-100k"),
];

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
    let started = std::time::Instant::now();
    let mut stages = StageTimes::default();
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
        let t = std::time::Instant::now();
        let ia = args(source, path, a.fashion_shops);
        let import = read(&ia, cli.json)?;
        let summary = write(&mut store, &import, cli.json)?;
        stages.push("ingest", dir, t);
        if !cli.json {
            println!("{}", describe(&import, &summary));
        }
    }
    anyhow::ensure!(found > 0, "no dataset found under {} (set --data or WARMSTART_DATA)", a.data.display());
    let t = std::time::Instant::now();
    let st = store.stats()?;
    stages.push("stats", "all", t);
    if !cli.json {
        print!("\n{}", stats::render(&st));
    }
    let present: Vec<String> = store.datasets()?.into_iter().map(|d| d.0).collect();
    let mut embedded: Vec<&str> = Vec::new();
    if !a.skip_embed {
        for dataset in EMBEDDED.iter().filter(|d| present.iter().any(|p| p == *d)) {
            let t = std::time::Instant::now();
            let ea = EmbedArgs::text_only(CONTENT_ENCODER, Some(dataset.to_string()));
            let summary = embed::embed_store(&mut store, &ea, cli.json)?;
            stages.push("embed", dataset, t);
            if !cli.json {
                println!("embedded {dataset}: {summary}");
            }
            embedded.push(dataset);
        }
    }
    let mut boards = Vec::new();
    if !a.skip_eval {
        for (protocol, dataset) in LEADERBOARDS {
            if !present.iter().any(|d| d == dataset) {
                continue;
            }
            let ea = EvalArgs {
                protocol: protocol.into(),
                dataset: Some(dataset.into()),
                models: match protocol {
                    "cold-start" if embedded.contains(&dataset) => {
                        format!("{},{DEFAULT_MODELS},{CONTENT_MODELS},{NEURAL_MODELS},{GRAPHSAGE_MODELS}", a.models)
                    }
                    "cold-start" | "cdrib" => format!("{},{DEFAULT_MODELS},{NEURAL_MODELS}", a.models),
                    "loo" => format!("{},{DEFAULT_MODELS}", a.models),
                    _ => a.models.clone(),
                },
                k: a.k.clone(),
                input: Default::default(),
                folds: None,
                seed: 42,
                threads: 0,
                runs_dir: a.runs_dir.clone(),
                trec_dir: None,
                trec_cases: 0,
                write_cases: false,
                default_model: "blend".into(),
            };
            let t = std::time::Instant::now();
            let (report, dir) = evaluate(&store, &ea, cli.json)?;
            stages.push("leaderboard", &format!("{protocol} on {dataset}"), t);
            if !cli.json {
                println!("\n== {protocol} on {dataset} ==");
                print!("{}", report.table());
                println!("wrote {}", dir.display());
            }
            boards.push(report);
        }
    }
    // artifacts `warmstart serve` loads: the collaborative baselines on every dataset group
    // that has two or more sites, and a content model where MiniLM vectors exist
    let mut artifacts = Vec::new();
    if !a.skip_train {
        for dataset in present.iter().filter(|d| SERVED.contains(&d.as_str())) {
            // the blend (item-kNN, RP3beta, ALS, popularity; weights from validation users) is
            // the default `serve` picks when its hold-out NDCG@10 is the best
            let mut models = vec!["pop", "itemknn", "als", "blend"];
            if embedded.contains(&dataset.as_str()) {
                models.push("content-pop");
            }
            for model in models {
                let opts = warmstart_app::train::TrainOptions::default();
                let started_train = std::time::Instant::now();
                let t = warmstart_app::train::train(&store, dataset, model, &opts, &mut |_| {})?;
                stages.push("train", &format!("{dataset}/{model}"), started_train);
                let m = &t.artifact.manifest;
                let ndcg = m.evaluation.as_ref().and_then(|e| e.mean("ndcg@10"));
                if !cli.json {
                    println!(
                        "trained {dataset}/{model} v{} in {:.1}s (hold-out NDCG@10 {})",
                        m.version,
                        m.training.seconds,
                        ndcg.map(|v| format!("{v:.4}")).unwrap_or_else(|| "–".into())
                    );
                }
                artifacts.push(serde_json::json!({"dataset": dataset, "model": model, "version": m.version, "dir": t.artifact.dir, "ndcg@10": ndcg}));
            }
        }
    }
    let total = started.elapsed().as_secs_f64();
    if cli.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "stats": st, "leaderboards": boards, "artifacts": artifacts,
                "stages": stages.0, "seconds": total,
            }))?
        );
    } else {
        print!("\n{}", stages.table(total));
    }
    Ok(())
}

/// Wall-clock seconds of each pipeline stage, in order.
#[derive(Default)]
struct StageTimes(Vec<serde_json::Value>);

impl StageTimes {
    fn push(&mut self, stage: &str, what: &str, since: std::time::Instant) {
        self.0.push(serde_json::json!({"stage": stage, "what": what, "seconds": since.elapsed().as_secs_f64()}));
    }

    /// A table of the stages, their seconds and share of the total, and totals per stage kind.
    fn table(&self, total: f64) -> String {
        let mut out = String::from("| stage | what | seconds | share |\n|---|---|---|---|\n");
        let mut per_kind: Vec<(String, f64)> = Vec::new();
        for s in &self.0 {
            let (stage, what, secs) = (
                s["stage"].as_str().unwrap_or(""),
                s["what"].as_str().unwrap_or(""),
                s["seconds"].as_f64().unwrap_or(0.0),
            );
            out += &format!("| {stage} | {what} | {secs:.1} | {:.0}% |\n", 100.0 * secs / total.max(1e-9));
            match per_kind.iter_mut().find(|k| k.0 == stage) {
                Some(k) => k.1 += secs,
                None => per_kind.push((stage.to_string(), secs)),
            }
        }
        for (stage, secs) in per_kind {
            out += &format!("| **{stage}** | all | {secs:.1} | {:.0}% |\n", 100.0 * secs / total.max(1e-9));
        }
        out + &format!("| **total** | | {total:.1} | 100% |\n")
    }
}

/// Dataset groups whose models the pipeline publishes for `warmstart serve`.
const SERVED: &[&str] = &["amazon-art-office", "cdrib-game-video"];
