//! pgvector's HNSW index (through the PostgreSQL store) against warmstart's in-process HNSW
//! index, on the same vectors, queries and exact ground truth (the files of
//! `scripts/bench_ann.sh`), in one run: build time, then recall@k, p50/p99 latency and
//! queries/s of one client per search breadth, rounds alternating. `scripts/bench_pgvector.sh`
//! prepares the data and prints the table.
//!
//! ```text
//! warmstart-bench-pgvector --data DIR --postgres ADMIN_URL [--m 16] [--ef-construction 200]
//!                          [--ef 16,32,64,128] [--k 10] [--rounds 2] [--queries N]
//! ```
//! One JSON object per line on stdout.

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use warmstart_core::{Product, Site};
use warmstart_index::{Hnsw, HnswParams, Metric};
use warmstart_store::{PgStore, StoreBackend, TempDatabase, VectorDtype};

#[derive(Debug, Parser)]
struct Args {
    /// Directory with base.npy, queries.npy and gt.npy.
    #[arg(long)]
    data: PathBuf,
    /// Admin URL of the PostgreSQL server (a scratch database is created and dropped).
    #[arg(long, env = "WARMSTART_TEST_POSTGRES")]
    postgres: String,
    #[arg(long, default_value_t = 16)]
    m: usize,
    #[arg(long, default_value_t = 200)]
    ef_construction: usize,
    #[arg(long, default_value = "16,32,64,128")]
    ef: String,
    #[arg(long, default_value_t = 10)]
    k: usize,
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Queries used (default: all).
    #[arg(long)]
    queries: Option<usize>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// recall@k, p50 ms, p99 ms, queries/s of `search` over the queries.
fn measure(
    queries: &[f32],
    dim: usize,
    gt: &[i32],
    gk: usize,
    k: usize,
    mut search: impl FnMut(&[f32]) -> anyhow::Result<Vec<usize>>,
) -> anyhow::Result<(f64, f64, f64, f64)> {
    let nq = queries.len() / dim;
    let mut lat = Vec::with_capacity(nq);
    let mut hits = 0usize;
    let t0 = Instant::now();
    for q in 0..nq {
        let t = Instant::now();
        let found = search(&queries[q * dim..(q + 1) * dim])?;
        lat.push(t.elapsed().as_secs_f64() * 1e3);
        let truth = &gt[q * gk..q * gk + k];
        hits += found.iter().filter(|&&f| truth.contains(&(f as i32))).count();
    }
    let qps = nq as f64 / t0.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    Ok((hits as f64 / (nq * k) as f64, percentile(&lat, 0.5), percentile(&lat, 0.99), qps))
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let (n, dim, base) = warmstart_cli::npy::read_f32_matrix(&a.data.join("base.npy"))?;
    let (nq, qdim, mut queries) = warmstart_cli::npy::read_f32_matrix(&a.data.join("queries.npy"))?;
    let (gq, gk, gt) = warmstart_cli::npy::read_i32_matrix(&a.data.join("gt.npy"))?;
    anyhow::ensure!(qdim == dim && gq == nq && gk >= a.k, "base, queries and gt.npy do not match");
    if let Some(q) = a.queries.filter(|&q| q < nq) {
        queries.truncate(q * dim);
    }
    let efs: Vec<usize> = a.ef.split(',').map(|s| s.trim().parse()).collect::<Result<_, _>>()?;

    // the vectors as one shop's catalog in a PostgreSQL store, through the store's own API
    let db = TempDatabase::create(&a.postgres)?;
    let mut pg = PgStore::open(db.url())?;
    let site = Site { key: "bench".into(), name: "bench".into(), dataset: "bench".into() };
    let products: Vec<Product> = (0..n).map(|i| Product::new("bench", i.to_string(), format!("item {i}"))).collect();
    let t = Instant::now();
    pg.write("bench", &[site], &products, &[], "{}", &|_| {})?;
    let ids: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    let rows = pg.product_rows("bench", &ids)?;
    let mut row_of = std::collections::HashMap::new();
    let put: Vec<(i64, String, Vec<f32>)> = rows
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let (id, hash) = r.expect("just written");
            row_of.insert(id, i);
            (id, hash, base[i * dim..(i + 1) * dim].to_vec())
        })
        .collect();
    pg.put_embeddings("bench", &put, VectorDtype::F32)?;
    let load_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    pg.create_vector_index("bench", dim, a.m, a.ef_construction)?;
    let pg_build = t.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({"event": "build", "backend": "pgvector", "n": n, "dim": dim, "m": a.m,
            "ef_construction": a.ef_construction, "seconds": pg_build, "load_seconds": load_s})
    );
    let params = HnswParams::builder().m(a.m).ef_construction(a.ef_construction).seed(42).build()?;
    let keys: Vec<u32> = (0..n as u32).collect();
    let t = Instant::now();
    let ours = Hnsw::build(&params, Metric::Cosine, dim, &keys, &base)?;
    println!(
        "{}",
        serde_json::json!({"event": "build", "backend": "warmstart", "n": n, "dim": dim, "m": a.m,
            "ef_construction": a.ef_construction, "seconds": t.elapsed().as_secs_f64(), "threads": rayon::current_num_threads()})
    );
    for round in 1..=a.rounds {
        for &ef in &efs {
            let (recall, p50, p99, qps) = measure(&queries, dim, &gt, gk, a.k, |q| {
                Ok(ours.search(q, a.k, Some(ef.max(a.k)))?.into_iter().map(|(key, _)| key as usize).collect())
            })?;
            println!(
                "{}",
                serde_json::json!({"event": "search", "backend": "warmstart", "round": round, "ef": ef,
                    "recall": recall, "p50_ms": p50, "p99_ms": p99, "qps": qps})
            );
            let (recall, p50, p99, qps) = measure(&queries, dim, &gt, gk, a.k, |q| {
                Ok(pg.nearest("bench", q, a.k, ef.max(a.k))?.into_iter().map(|(id, _)| row_of[&id]).collect())
            })?;
            println!(
                "{}",
                serde_json::json!({"event": "search", "backend": "pgvector", "round": round, "ef": ef,
                    "recall": recall, "p50_ms": p50, "p99_ms": p99, "qps": qps})
            );
        }
    }
    Ok(())
}
