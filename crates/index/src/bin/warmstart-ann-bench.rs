//! Benchmark of `warmstart-index` against the files `scripts/bench_ann.py` reads too.
//!
//! ```text
//! warmstart-ann-bench prepare (--synthetic N --dim D [--seed S] | --vectors X.npy) [--queries Q] [--k K] --out DIR
//!     writes DIR/base.npy, DIR/queries.npy (unit-length f32) and DIR/gt.npy (exact top-K row ids, i4)
//! warmstart-ann-bench run --data DIR [--m 16] [--ef-construction 200] [--ef 16,32,64,128,256] [--k 10]
//!                         [--threads T] [--repeat 3] [--index PATH]
//!     builds, saves, re-opens (memory-mapped) and measures recall@K and single-thread queries/s
//! ```
//!
//! Every result is one JSON object per line on stdout; progress goes to stderr.

use std::collections::BinaryHeap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use warmstart_core::npy;
use warmstart_index::{dot, Hnsw, HnswParams, Metric};

type Res<T> = Result<T, String>;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = match args.first().map(String::as_str) {
        Some("prepare") => prepare(&Args::parse(&args[1..])),
        Some("run") => run(&Args::parse(&args[1..])),
        _ => Err("usage: warmstart-ann-bench (prepare|run) [options]; see the source header".into()),
    };
    if let Err(e) = out {
        eprintln!("warmstart-ann-bench: {e}");
        std::process::exit(1);
    }
}

struct Args(Vec<(String, String)>);

impl Args {
    fn parse(raw: &[String]) -> Args {
        let mut out = Vec::new();
        let mut it = raw.iter();
        while let Some(a) = it.next() {
            if let Some(name) = a.strip_prefix("--") {
                out.push((name.to_string(), it.next().cloned().unwrap_or_default()));
            }
        }
        Args(out)
    }
    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
    fn num<T: std::str::FromStr>(&self, name: &str, default: T) -> Res<T> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| format!("--{name}: cannot parse `{v}`")),
        }
    }
}

// ---------- .npy ----------

fn write_f32(path: &Path, rows: usize, cols: usize, v: &[f32]) -> Res<()> {
    npy::write(path, "<f4", &[rows, cols], &npy::f32_bytes(v)).map_err(|e| e.to_string())
}

fn read_f32(path: &Path) -> Res<(usize, usize, Vec<f32>)> {
    npy::read_f32_matrix(path).map_err(|e| e.to_string())
}

// ---------- data ----------

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn gauss(&mut self) -> f32 {
        ((-2.0 * self.unit().ln()).sqrt() * (std::f64::consts::TAU * self.unit()).cos()) as f32
    }
}

fn normalize(v: &mut [f32]) {
    let n = dot(v, v).sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

/// Gaussian mixture with low intrinsic dimension, like sentence embeddings: each cluster is a
/// centre plus a random 16-dimensional subspace (drawn from 128 shared directions, with its own
/// scales) plus a little isotropic noise; rows are unit length.
fn synthetic(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let clusters = (n / 1000).clamp(16, 1024);
    let mut rng = Rng(seed);
    let sd = 1.0 / (dim as f32).sqrt();
    let centres: Vec<f32> = (0..clusters * dim).map(|_| rng.gauss() * sd).collect();
    let basis: Vec<f32> = (0..128 * dim).map(|_| rng.gauss() * sd).collect();
    let spec: Vec<(usize, f32)> =
        (0..clusters * 16).map(|_| ((rng.next() % 128) as usize, 0.1 + 0.25 * rng.unit() as f32)).collect();
    let mut out = vec![0.0f32; n * dim];
    out.par_chunks_mut(dim).enumerate().for_each(|(i, row)| {
        let mut r = Rng(seed ^ (i as u64 + 1).wrapping_mul(0xD6E8_FEB8_6659_FD93));
        let c = (r.next() % clusters as u64) as usize;
        row.copy_from_slice(&centres[c * dim..(c + 1) * dim]);
        for &(b, s) in &spec[c * 16..(c + 1) * 16] {
            let z = r.gauss() * s;
            row.iter_mut().zip(&basis[b * dim..(b + 1) * dim]).for_each(|(x, y)| *x += z * y);
        }
        row.iter_mut().for_each(|x| *x += 0.1 * sd * r.gauss());
        normalize(row);
    });
    out
}

/// Exact top-`k` rows of `base` for every query (inner product), blocked for cache reuse.
fn ground_truth(base: &[f32], queries: &[f32], dim: usize, k: usize) -> Vec<i32> {
    let nq = queries.len() / dim;
    let per = nq.div_ceil(rayon::current_num_threads() * 4).max(1);
    let mut out = vec![0i32; nq * k];
    out.par_chunks_mut(per * k).zip(queries.par_chunks(per * dim)).for_each(|(out, qs)| {
        let mut heaps: Vec<BinaryHeap<(std::cmp::Reverse<Ord32>, i32)>> = vec![BinaryHeap::new(); qs.len() / dim];
        for (bi, block) in base.chunks(256 * dim).enumerate() {
            for (h, q) in heaps.iter_mut().zip(qs.chunks_exact(dim)) {
                for (j, v) in block.chunks_exact(dim).enumerate() {
                    let s = Ord32(dot(q, v));
                    let id = (bi * 256 + j) as i32;
                    if h.len() < k {
                        h.push((std::cmp::Reverse(s), id));
                    } else if h.peek().is_some_and(|w| s > w.0 .0) {
                        h.pop();
                        h.push((std::cmp::Reverse(s), id));
                    }
                }
            }
        }
        for (h, o) in heaps.into_iter().zip(out.chunks_mut(k)) {
            let mut v = h.into_sorted_vec();
            v.truncate(k);
            for (slot, (_, id)) in o.iter_mut().zip(v) {
                *slot = id;
            }
        }
    });
    out
}

#[derive(Clone, Copy, PartialEq)]
struct Ord32(f32);
impl Eq for Ord32 {}
impl PartialOrd for Ord32 {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Ord32 {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&o.0)
    }
}

fn prepare(a: &Args) -> Res<()> {
    let out = PathBuf::from(a.get("out").ok_or("--out DIR is required")?);
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let nq: usize = a.num("queries", 1000)?;
    let k: usize = a.num("k", 10)?;
    let seed: u64 = a.num("seed", 42)?;
    let t = Instant::now();
    let (source, dim, base, queries) = if let Some(path) = a.get("vectors") {
        let (rows, dim, mut all) = read_f32(Path::new(path))?;
        if rows <= nq {
            return Err(format!("{path}: {rows} rows, need more than --queries {nq}"));
        }
        all.par_chunks_mut(dim).for_each(normalize);
        // Hold out a seeded random sample of rows as queries.
        let mut order: Vec<usize> = (0..rows).collect();
        let mut rng = Rng(seed);
        for i in (1..rows).rev() {
            order.swap(i, (rng.next() % (i as u64 + 1)) as usize);
        }
        let (q_rows, b_rows) = order.split_at(nq);
        let mut b_rows = b_rows.to_vec();
        b_rows.sort_unstable();
        let pick = |rows: &[usize]| rows.iter().flat_map(|&r| all[r * dim..(r + 1) * dim].iter().copied()).collect();
        (path.to_string(), dim, pick(&b_rows), pick(q_rows))
    } else {
        let n: usize = a.num("synthetic", 100_000)?;
        let dim: usize = a.num("dim", 384)?;
        let all = synthetic(n + nq, dim, seed);
        let (b, q) = all.split_at(n * dim);
        (format!("synthetic(seed {seed})"), dim, b.to_vec(), q.to_vec())
    };
    let n = base.len() / dim;
    eprintln!("prepare: {n} x {dim} base, {nq} queries ({:.1}s); exact ground truth...", t.elapsed().as_secs_f64());
    let t_gt = Instant::now();
    let gt = ground_truth(&base, &queries, dim, k);
    let gt_s = t_gt.elapsed().as_secs_f64();
    write_f32(&out.join("base.npy"), n, dim, &base)?;
    write_f32(&out.join("queries.npy"), nq, dim, &queries)?;
    let gt_bytes: Vec<u8> = gt.iter().flat_map(|x| x.to_le_bytes()).collect();
    npy::write(&out.join("gt.npy"), "<i4", &[nq, k], &gt_bytes).map_err(|e| e.to_string())?;
    println!(
        "{{\"step\":\"prepare\",\"source\":\"{}\",\"n\":{n},\"dim\":{dim},\"queries\":{nq},\"k\":{k},\"ground_truth_s\":{gt_s:.2},\"total_s\":{:.2}}}",
        source.replace('"', "'"),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

fn run(a: &Args) -> Res<()> {
    let dir = PathBuf::from(a.get("data").ok_or("--data DIR is required")?);
    let m: usize = a.num("m", 16)?;
    let efc: usize = a.num("ef-construction", 200)?;
    let k: usize = a.num("k", 10)?;
    let repeat: usize = a.num("repeat", 3)?;
    let threads: usize = a.num("threads", std::thread::available_parallelism().map_or(1, |n| n.get()))?;
    let efs: Vec<usize> = a
        .get("ef")
        .unwrap_or("16,32,64,128,256")
        .split(',')
        .map(|s| s.trim().parse().map_err(|_| format!("--ef: bad value `{s}`")))
        .collect::<Res<_>>()?;
    let index_path = a.get("index").map(PathBuf::from).unwrap_or_else(|| dir.join("warmstart.wsann"));

    let (n, dim, base) = read_f32(&dir.join("base.npy"))?;
    let (nq, qdim, queries) = read_f32(&dir.join("queries.npy"))?;
    let (gq, gk, gt) = npy::read_i32_matrix(&dir.join("gt.npy")).map_err(|e| e.to_string())?;
    if qdim != dim || gq != nq || gk < k {
        return Err("base, queries and gt.npy do not match".into());
    }
    let rss_data = rss_kib("VmRSS:");

    let params = HnswParams::builder()
        .m(m)
        .ef_construction(efc)
        .ef_search(efs.first().copied().unwrap_or(64))
        .build()
        .map_err(|e| e.to_string())?;
    let keys: Vec<u32> = (0..n as u32).collect();
    eprintln!("warmstart: building {n} x {dim} (m {m}, ef_construction {efc}, {threads} threads)...");
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().map_err(|e| e.to_string())?;
    let t = Instant::now();
    let built =
        pool.install(|| Hnsw::build(&params, Metric::InnerProduct, dim, &keys, &base)).map_err(|e| e.to_string())?;
    let build_s = t.elapsed().as_secs_f64();
    let built_bytes = built.memory_bytes();
    let t = Instant::now();
    built.save(&index_path).map_err(|e| e.to_string())?;
    let save_s = t.elapsed().as_secs_f64();
    drop(built);
    drop(base);
    let t = Instant::now();
    let index = Hnsw::open(&index_path).map_err(|e| e.to_string())?;
    let open_s = t.elapsed().as_secs_f64();
    let file_bytes = std::fs::metadata(&index_path).map(|m| m.len()).unwrap_or(0);
    println!(
        "{{\"lib\":\"warmstart\",\"event\":\"build\",\"n\":{n},\"dim\":{dim},\"m\":{m},\"ef_construction\":{efc},\"threads\":{threads},\"build_s\":{build_s:.2},\"save_s\":{save_s:.2},\"open_s\":{open_s:.3},\"index_bytes\":{built_bytes},\"file_bytes\":{file_bytes}}}"
    );

    for &ef in &efs {
        // Warm-up, then the best of `repeat` timed passes, one query at a time on this thread.
        let mut results: Vec<Vec<(u32, f32)>> = Vec::with_capacity(nq);
        for q in queries.chunks_exact(dim).take(200) {
            index.search(q, k, Some(ef)).map_err(|e| e.to_string())?;
        }
        let mut best = f64::INFINITY;
        for _ in 0..repeat.max(1) {
            results.clear();
            let t = Instant::now();
            for q in queries.chunks_exact(dim) {
                results.push(index.search(q, k, Some(ef)).map_err(|e| e.to_string())?);
            }
            best = best.min(t.elapsed().as_secs_f64());
        }
        let mut hits = 0usize;
        for (i, r) in results.iter().enumerate() {
            let truth = &gt[i * gk..i * gk + k];
            hits += r.iter().filter(|(key, _)| truth.contains(&(*key as i32))).count();
        }
        let recall = hits as f64 / (nq * k) as f64;
        println!(
            "{{\"lib\":\"warmstart\",\"event\":\"search\",\"ef\":{ef},\"k\":{k},\"recall\":{recall:.4},\"qps\":{:.1},\"queries\":{nq}}}",
            nq as f64 / best
        );
    }
    println!(
        "{{\"lib\":\"warmstart\",\"event\":\"memory\",\"index_bytes\":{},\"rss_after_data_kib\":{rss_data},\"rss_kib\":{},\"peak_rss_kib\":{}}}",
        index.memory_bytes(),
        rss_kib("VmRSS:"),
        rss_kib("VmHWM:")
    );
    Ok(())
}
