//! `warmstart train MODEL`: any model by name, measured on a hold-out and published as a
//! versioned artifact that `warmstart serve` loads.

use super::*;

/// Arguments of `warmstart train MODEL`.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "warmstart train")]
pub struct TrainModelArgs {
    /// Model name: pop, itemknn, rp3beta, ease, brandknn, catknn, userknn, dae, blend, als, bpr,
    /// content, content-pop, content-map, content-map-pop (`-kN` for N interests),
    /// two-tower[-bce|-attn|-ids][:key=value…], graphsage[-max|-bce][:key=value…]; `:key=value`
    /// parameters also for ease, brandknn, userknn, dae, blend, bpr.
    pub model: String,
    /// Dataset group.
    #[arg(long, default_value = "amazon-art-office")]
    pub dataset: String,
    /// Content vectors of models that read content (`none`: id-only two-tower / GraphSAGE).
    #[arg(long, default_value = "minilm")]
    pub vectors: String,
    /// Share of cross-site users held out to measure the fitted model (0: train on everything,
    /// no evaluation).
    #[arg(long, default_value_t = 0.1)]
    pub holdout: f64,
    /// Seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Threads (0: all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

/// `warmstart train MODEL`: fit once, measure on the hold-out, publish a versioned artifact.
pub(super) fn model(cli: &Cli, a: &TrainModelArgs) -> anyhow::Result<()> {
    use warmstart_app::train::{train, TrainOptions};
    let started = Instant::now();
    let store = Store::open(&cli.store_path())?;
    let vectors = if a.vectors == "none" { None } else { Some(a.vectors.parse()?) };
    let opts =
        TrainOptions { holdout_share: a.holdout, seed: a.seed, threads: a.threads, vectors, ..Default::default() };
    let pb = progress(0, cli.json, &format!("train {}", a.model));
    pb.enable_steady_tick(std::time::Duration::from_millis(200));
    let t = train(&store, &a.dataset, &a.model, &opts, &mut |stage| pb.set_message(stage.to_string()))?;
    pb.finish_and_clear();
    let m = &t.artifact.manifest;
    if cli.json {
        println!("{}", serde_json::json!({"dir": t.artifact.dir, "manifest": m}));
        return Ok(());
    }
    println!(
        "{} v{} on {} ({} items): fitted in {:.1}s, published in {:.1}s",
        m.model,
        m.version,
        m.dataset,
        m.items,
        m.training.seconds,
        started.elapsed().as_secs_f64()
    );
    for note in &m.training.notes {
        println!("  {note}");
    }
    if let Some(e) = &m.evaluation {
        for task in &e.tasks {
            println!(
                "  {}: NDCG@10 {:.4}, recall@10 {:.4} ({} held-out users)",
                task.task,
                task.metrics.get("ndcg@10").copied().unwrap_or(f64::NAN),
                task.metrics.get("recall@10").copied().unwrap_or(f64::NAN),
                task.cases
            );
        }
    }
    for ix in &m.index {
        println!("  ANN index {}: {} vectors in {:.1}s", ix.site, ix.items, ix.build_seconds);
    }
    println!("artifact: {}", t.artifact.dir.display());
    Ok(())
}
