//! Benchmark driver: trains our ALS (and BPR) on the exact training matrix of an evaluation
//! task and exports that matrix and the test cases, so `scripts/bench_als.py` can train
//! `implicit` on the same data and both are compared in one run.
//!
//! Usage: warmstart-bench als --store S --dataset D --protocol P --out DIR [--factors 64]
//!        [--iterations 15] [--threads 2]

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use warmstart_eval::runner::evaluate_fitted;
use warmstart_eval::{EvalConfig, Protocol, ProtocolOptions};
use warmstart_models::{Als, AlsConfig, Bpr, BprConfig, Recommender};
use warmstart_store::Store;

// mimalloc: candle allocates and frees large tensors per operation; glibc's malloc hands
// them back to the kernel each time, and the page faults cost about a sixth of embedding time.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
struct Args {
    /// Model to benchmark: als or bpr.
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
}

fn main() -> anyhow::Result<()> {
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
            let mut als = Als::new(c);
            als.fit_matrix(m)?;
            ("als".into(), als.iteration_seconds.clone(), Box::new(als))
        }
        "bpr" => {
            let c = BprConfig::builder().factors(a.factors).epochs(a.iterations).build()?;
            let mut bpr = Bpr::new(c);
            let t = std::time::Instant::now();
            bpr.fit_matrix(m)?;
            let per = t.elapsed().as_secs_f64() / a.iterations as f64;
            ("bpr".into(), vec![per; a.iterations], Box::new(bpr))
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
