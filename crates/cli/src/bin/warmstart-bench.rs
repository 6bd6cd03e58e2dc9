//! Benchmark driver: trains our ALS (and BPR) on the exact training matrix of an evaluation
//! task and exports that matrix and the test cases, so `scripts/bench_als.py` can train
//! `implicit` on the same data and both are compared in one run. `two-tower` exports the
//! two-tower model's training epochs (features, each epoch's fresh draw of examples, the
//! optimiser's constants) as `.npy` files for `scripts/two_tower_torch.py` and times our own
//! epochs on the same task.
//!
//! Usage: warmstart-bench als --store S --dataset D --protocol P --out DIR [--factors 64]
//!        [--iterations 15] [--threads 2]
//!        warmstart-bench two-tower --store S --dataset D --out DIR [--iterations 3] [--vectors minilm]
//!        warmstart-bench graphsage --store S --dataset D --out DIR [--iterations 3] [--vectors minilm]
//!        warmstart-bench export --store S --dataset D --protocol P --out DIR   (matrix and cases only)
//!
//! `graphsage` exports the first epoch's graph, features and links for
//! `scripts/graphsage_pyg.py` and times our own epochs (peak RSS included).

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use warmstart_eval::runner::evaluate_fitted;
use warmstart_eval::{EvalConfig, Protocol, ProtocolOptions};
use warmstart_models::{AlsConfig, BprConfig, Recommender};
use warmstart_store::Store;

// mimalloc: candle allocates and frees large tensors per operation; glibc's malloc hands
// them back to the kernel each time, and the page faults cost about a sixth of embedding time.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
struct Args {
    /// Model to benchmark: als, bpr, two-tower or graphsage; `export` writes the task's
    /// training matrix and test cases and stops.
    model: String,
    #[arg(long)]
    store: PathBuf,
    #[arg(long)]
    dataset: String,
    #[arg(long, default_value = "cold-start")]
    protocol: String,
    /// Which of the protocol's tasks (0 = first direction).
    #[arg(long, default_value_t = 0)]
    task: usize,
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 64)]
    factors: usize,
    #[arg(long, default_value_t = 15)]
    iterations: usize,
    #[arg(long, default_value_t = 2)]
    threads: usize,
    #[arg(long, default_value_t = 0.01)]
    regularization: f32,
    #[arg(long, default_value_t = 1.0)]
    alpha: f32,
    /// Content vectors of the two-tower item tower (`none` for ids only).
    #[arg(long, default_value = "minilm")]
    vectors: String,
    /// Two-tower or BPR parameters as KEY=VALUE (as in `two-tower:key=value` and
    /// `bpr:key=value` model names, e.g. `negatives=popularity`, `reg=0.01`).
    #[arg(long = "param")]
    params: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    warmstart_cli::one_elementwise_thread();
    let a = Args::parse();
    let store = Store::open(&a.store)?;
    let d = store.load_dataset(Some(&a.dataset))?;
    let p: Protocol = a.protocol.parse()?;
    let opts = ProtocolOptions::default();
    let task = match p {
        Protocol::ColdStart => {
            let (s, t) = warmstart_eval::protocol::directions(&d)[a.task];
            warmstart_eval::protocol::cold_start(&d, s, t, None, &opts)
        }
        Protocol::Random => warmstart_eval::protocol::random_split(&d, a.task as u32, &opts),
        _ => anyhow::bail!("benchmark supports cold-start and random"),
    };
    std::fs::create_dir_all(&a.out)?;
    if a.model == "two-tower" {
        return two_tower(&a, &store, &d, &task.train);
    }
    if a.model == "graphsage" {
        return graphsage(&a, &store, &d, &task.train);
    }
    // training matrix as coordinate triplets, test cases as JSON lines
    let m = &task.train;
    let mut coo = String::with_capacity(m.nnz() * 12);
    let _ = writeln!(coo, "{} {} {}", m.n_rows(), m.n_cols(), m.nnz());
    for u in 0..m.n_rows() {
        for (&i, &v) in m.row_indices(u).iter().zip(m.row_values(u)) {
            let _ = writeln!(coo, "{u} {i} {v}");
        }
    }
    std::fs::write(a.out.join("train.coo"), coo)?;
    let range = d.sites[task.target as usize].items.clone();
    let mut cases = String::new();
    for c in &task.test {
        let h: Vec<u32> = c.history.iter().map(|h| h.0).collect();
        let _ = writeln!(
            cases,
            "{}",
            serde_json::json!({"user": c.user, "history": h, "relevant": c.relevant, "exclude": c.exclude})
        );
    }
    std::fs::write(a.out.join("cases.jsonl"), cases)?;
    std::fs::write(a.out.join("target.json"), serde_json::json!({"start": range.start, "end": range.end}).to_string())?;
    if a.model == "export" {
        // the task's matrix and cases only (`scripts/check_userknn.sh`)
        return Ok(());
    }

    let cfg = EvalConfig { ks: vec![10], seed: 42, item_vectors: None };
    let (name, iter_secs, model): (String, Vec<f64>, Box<dyn Recommender>) = match a.model.as_str() {
        "als" => {
            let c = AlsConfig::builder()
                .factors(a.factors)
                .iterations(a.iterations)
                .threads(a.threads)
                .regularization(a.regularization)
                .alpha(a.alpha)
                .build()?;
            let als = c.fit_matrix(m)?;
            ("als".into(), als.iteration_seconds.clone(), Box::new(als))
        }
        "bpr" => {
            let mut b = BprConfig::builder().factors(a.factors).epochs(a.iterations).threads(a.threads);
            for kv in &a.params {
                let (k, v) = kv.split_once('=').with_context(|| format!("--param {kv}: KEY=VALUE"))?;
                b = b.set(k, v)?;
            }
            let c = b.build()?;
            let bpr = c.fit_matrix(m)?;
            ("bpr".into(), bpr.epoch_seconds.clone(), Box::new(bpr))
        }
        other => anyhow::bail!("unknown model {other}"),
    };
    let r = evaluate_fitted(model.as_ref(), &d, &task, &cfg, false, iter_secs.iter().sum()).context("evaluating")?;
    let mut sorted = iter_secs.clone();
    sorted.sort_by(f64::total_cmp);
    let out = serde_json::json!({
        "model": name, "task": task.name, "users": m.n_rows(), "items": m.n_cols(), "nnz": m.nnz(),
        "factors": a.factors, "iterations": a.iterations, "threads": a.threads,
        "seconds_per_iteration_median": sorted[sorted.len() / 2],
        "seconds_per_iteration_mean": iter_secs.iter().sum::<f64>() / iter_secs.len() as f64,
        "ndcg@10": r.metrics["ndcg@10"], "recall@10": r.metrics["recall@10"], "cases": r.cases,
    });
    println!("{out}");
    Ok(())
}

/// Exports the two-tower's first epoch and times our own training epochs on the same data.
fn two_tower(
    a: &Args,
    store: &Store,
    d: &warmstart_core::Dataset,
    m: &warmstart_core::CsrMatrix,
) -> anyhow::Result<()> {
    use warmstart_models::{TrainData, TwoTowerConfig};
    let vectors = if a.vectors == "none" { None } else { Some(store.load_item_vectors(&a.vectors, Some(&a.dataset))?) };
    // no validation: the epochs time training alone
    let mut b = TwoTowerConfig::builder().epochs(a.iterations).validation_share(0.0);
    for p in &a.params {
        let (k, v) = p.split_once('=').with_context(|| format!("--param {p}: expected KEY=VALUE"))?;
        b = b.set(k, v)?;
    }
    let config = b.build()?;
    let data = TrainData { dataset: d, matrix: m, item_vectors: vectors.as_ref() };
    let x = config.export(&data, a.iterations)?;
    let dir = &a.out;
    let n = d.n_items();
    if x.content_dim > 0 {
        warmstart_cli::npy::write(
            &dir.join("content.npy"),
            "<f4",
            &[n, x.content_dim],
            &warmstart_cli::npy::f32_bytes(&x.content),
        )?;
    }
    let mut features = Vec::with_capacity(n * x.features.len());
    for i in 0..n {
        features.extend(x.features.iter().map(|f| f.3[i] as i64));
    }
    warmstart_cli::npy::write(
        &dir.join("features.npy"),
        "<i8",
        &[n, x.features.len()],
        &warmstart_cli::npy::i64_bytes(features),
    )?;
    let ranges: Vec<i64> = x.site_ranges.iter().flat_map(|r| [r.start as i64, r.end as i64]).collect();
    warmstart_cli::npy::write(
        &dir.join("site_ranges.npy"),
        "<i8",
        &[x.site_ranges.len(), 2],
        &warmstart_cli::npy::i64_bytes(ranges),
    )?;
    warmstart_cli::npy::write(&dir.join("logq.npy"), "<f4", &[n], &warmstart_cli::npy::f32_bytes(&x.logq))?;
    // every epoch's examples, one after another; epoch_offsets.npy says where each starts
    let examples: Vec<&(u32, Vec<(u32, f32)>)> = x.epochs.iter().flatten().collect();
    let e = examples.len();
    let mut epoch_offsets = vec![0i64];
    for ep in &x.epochs {
        epoch_offsets.push(epoch_offsets.last().copied().unwrap_or(0) + ep.len() as i64);
    }
    warmstart_cli::npy::write(
        &dir.join("epoch_offsets.npy"),
        "<i8",
        &[epoch_offsets.len()],
        &warmstart_cli::npy::i64_bytes(epoch_offsets),
    )?;
    warmstart_cli::npy::write(
        &dir.join("targets.npy"),
        "<i8",
        &[e],
        &warmstart_cli::npy::i64_bytes(examples.iter().map(|t| t.0 as i64)),
    )?;
    let mut offsets = vec![0i64];
    for t in &examples {
        offsets.push(offsets.last().copied().unwrap_or(0) + t.1.len() as i64);
    }
    warmstart_cli::npy::write(
        &dir.join("history_offsets.npy"),
        "<i8",
        &[e + 1],
        &warmstart_cli::npy::i64_bytes(offsets),
    )?;
    let items: Vec<i64> = examples.iter().flat_map(|t| t.1.iter().map(|h| h.0 as i64)).collect();
    let weights: Vec<f32> = examples.iter().flat_map(|t| t.1.iter().map(|h| h.1)).collect();
    warmstart_cli::npy::write(
        &dir.join("history_items.npy"),
        "<i8",
        &[items.len()],
        &warmstart_cli::npy::i64_bytes(items),
    )?;
    warmstart_cli::npy::write(
        &dir.join("history_weights.npy"),
        "<f4",
        &[weights.len()],
        &warmstart_cli::npy::f32_bytes(&weights),
    )?;
    let c = &x.config;
    let cfg = serde_json::json!({
        "n_items": n, "content_dim": x.content_dim, "dim": c.dim, "hidden": c.hidden, "batch": c.batch,
        "learning_rate": c.learning_rate, "weight_decay": c.weight_decay,
        "loss": match c.loss { warmstart_models::TwoTowerLoss::Bce => "bce", warmstart_models::TwoTowerLoss::Softmax => "softmax" },
        "negatives": c.negatives,
        "pooling": match c.pooling { warmstart_models::Pooling::Mean => "mean", warmstart_models::Pooling::Attention => "attention" },
        "id_embedding": x.id_embedding, "id_dim": x.id_dim,
        "embeddings": x.features.iter().map(|f| serde_json::json!([f.0, f.1, f.2])).collect::<Vec<_>>(),
        "initial_scale": x.initial_scale, "warmup_steps": x.warmup_steps, "total_steps": x.total_steps,
        "uniform_negatives": c.uniform_negatives, "user_mlp": c.user_mlp, "lr_floor": x.lr_floor,
        "adam_betas": [x.adam.0, x.adam.1], "adam_eps": x.adam.2,
    });
    std::fs::write(dir.join("config.json"), serde_json::to_string_pretty(&cfg)?)?;
    // our epochs on the same task
    let mut secs = Vec::new();
    let mut losses = Vec::new();
    config.fit_with(&data, &mut |ep| {
        secs.push(ep.train_seconds);
        losses.push(ep.loss);
        eprintln!("warmstart epoch {}: {:.1}s, loss {:.4}", ep.epoch, ep.train_seconds, ep.loss);
    })?;
    let mut sorted = secs.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    println!(
        "{}",
        serde_json::json!({
            "framework": "warmstart", "threads": candle_core_threads(), "examples": e / x.epochs.len().max(1), "batch": c.batch,
            "epoch_seconds": secs, "epoch_seconds_median": median,
            "examples_per_second": (e / x.epochs.len().max(1)) as f64 / median.max(1e-9),
            "loss": losses,
        })
    );
    Ok(())
}

/// Exports GraphSAGE's epochs and times our own training epochs on the same data.
fn graphsage(
    a: &Args,
    store: &Store,
    d: &warmstart_core::Dataset,
    matrix: &warmstart_core::CsrMatrix,
) -> anyhow::Result<()> {
    use warmstart_cli::npy::{f32_bytes, i64_bytes, write};
    use warmstart_models::{GraphSageConfig, TrainData};
    let vectors = if a.vectors == "none" { None } else { Some(store.load_item_vectors(&a.vectors, Some(&a.dataset))?) };
    let mut b = GraphSageConfig::builder().epochs(a.iterations).validation_share(0.0);
    for p in &a.params {
        let (k, v) = p.split_once('=').ok_or_else(|| anyhow::anyhow!("--param {p}: expected KEY=VALUE"))?;
        b = b.set(k, v)?;
    }
    let config = b.build()?;
    let data = TrainData { dataset: d, matrix, item_vectors: vectors.as_ref() };
    let x = config.export(&data, a.iterations)?;
    let dir = &a.out;
    let n = x.n_items;
    if x.content_dim > 0 {
        write(&dir.join("content.npy"), "<f4", &[n, x.content_dim], &f32_bytes(&x.content))?;
    }
    write(&dir.join("site.npy"), "<i8", &[n], &i64_bytes(x.site.iter().map(|v| *v as i64)))?;
    write(&dir.join("popularity.npy"), "<i8", &[n], &i64_bytes(x.popularity.iter().map(|v| *v as i64)))?;
    // the first epoch's graph and links at the top, later epochs' in epoch2/, epoch3/, ...
    for (e, g) in x.epochs.iter().enumerate() {
        let dir = if e == 0 { dir.clone() } else { dir.join(format!("epoch{}", e + 1)) };
        std::fs::create_dir_all(&dir)?;
        write(&dir.join("offsets.npy"), "<i8", &[g.offsets.len()], &i64_bytes(g.offsets.iter().map(|v| *v as i64)))?;
        write(
            &dir.join("neighbours.npy"),
            "<i8",
            &[g.neighbours.len()],
            &i64_bytes(g.neighbours.iter().map(|v| *v as i64)),
        )?;
        write(&dir.join("weights.npy"), "<f4", &[g.weights.len()], &f32_bytes(&g.weights))?;
        write(
            &dir.join("links.npy"),
            "<i8",
            &[g.links.len(), 2],
            &i64_bytes(g.links.iter().flat_map(|l| [l.0 as i64, l.1 as i64])),
        )?;
    }
    write(&dir.join("logq.npy"), "<f4", &[n], &f32_bytes(&x.logq))?;
    let ranges = x.site_ranges.iter().flat_map(|r| [r.start as i64, r.end as i64]);
    write(&dir.join("site_ranges.npy"), "<i8", &[x.site_ranges.len(), 2], &i64_bytes(ranges))?;
    let c = &x.config;
    let cfg = serde_json::json!({
        "n_items": n, "n_users": x.n_users, "n_sites": x.n_sites, "content_dim": x.content_dim,
        "id_embedding": x.id_embedding, "hidden": c.hidden, "dim": c.dim, "fanouts": c.fanouts,
        "aggregator": match c.aggregator { warmstart_models::Aggregator::Mean => "mean", warmstart_models::Aggregator::MaxPool => "max" },
        "loss": match c.loss { warmstart_models::GraphSageLoss::Bce => "bce", warmstart_models::GraphSageLoss::Softmax => "softmax" },
        "negatives": c.negatives, "batch": c.batch, "dropout": c.dropout, "user_items": c.user_items,
        "learning_rate": c.learning_rate, "weight_decay": c.weight_decay, "initial_scale": std::f32::consts::LN_10,
    });
    std::fs::write(dir.join("config.json"), serde_json::to_string_pretty(&cfg)?)?;
    let mut secs = Vec::new();
    let mut losses = Vec::new();
    config.fit_with(
        &data,
        &mut |ep| {
            secs.push(ep.train_seconds);
            losses.push(ep.loss);
            eprintln!("warmstart epoch {}: {:.1}s, loss {:.4}", ep.epoch, ep.train_seconds, ep.loss);
        },
        &mut |_, _, _| {},
    )?;
    let mut sorted = secs.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    println!(
        "{}",
        serde_json::json!({
            "framework": "warmstart", "threads": candle_core_threads(), "links": x.epochs[0].links.len(), "batch": c.batch,
            "epoch_seconds": secs, "epoch_seconds_median": median, "links_per_second": x.epochs[0].links.len() as f64 / median.max(1e-9),
            "loss": losses, "peak_rss_mib": peak_rss_mib(),
        })
    );
    Ok(())
}

/// Peak resident memory of this process (Linux `VmHWM`), MiB.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse::<f64>().ok().map(|kb| kb / 1024.0)
}

/// Threads candle's CPU kernels use (`RAYON_NUM_THREADS`, else all cores).
fn candle_core_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
}
