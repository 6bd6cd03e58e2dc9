//! Embedding benchmark driver.
//!
//! `text`: encodes product texts from a store with a text model (MiniLM by default) exactly
//! as `warmstart embed` does (sorted by length, batched), writes the texts and the vectors so
//! `scripts/bench_embed.py` can encode the same texts with sentence-transformers and compare
//! speed and values in one run.
//!
//! `clip-images`: writes a full-size CLIP ViT-B/32 checkpoint with seeded random weights,
//! loads it through the normal loading path and encodes catalog images from the store.
//!
//! Both print one JSON line (throughput, peak resident memory).

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use clap::{Parser, Subcommand};
use warmstart_embed::{write_random_checkpoint, ClipShape, LoadedModel};
use warmstart_store::Store;

// mimalloc: candle allocates and frees large tensors per operation; glibc's malloc hands
// them back to the kernel each time, and the page faults cost about a sixth of embedding time.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, Subcommand)]
enum What {
    /// Text encoder throughput on a store's product texts.
    Text {
        #[arg(long)]
        store: PathBuf,
        #[arg(long)]
        dataset: Option<String>,
        #[arg(long, default_value = "minilm")]
        model: String,
        /// How many texts (the first by product id).
        #[arg(long, default_value_t = 2000)]
        limit: usize,
        #[arg(long, default_value_t = 8)]
        batch: usize,
        /// Batches encoded at once, each on one core (1: one batch at a time, candle's
        /// kernels on every core).
        #[arg(long, default_value_t = 2)]
        workers: usize,
        /// Directory for texts.txt and vectors.f32.
        #[arg(long)]
        out: PathBuf,
    },
    /// Full-size CLIP ViT-B/32 (random weights) image throughput on a store's images.
    ClipImages {
        #[arg(long)]
        store: PathBuf,
        #[arg(long, default_value = "fashion-products")]
        dataset: String,
        #[arg(long, default_value_t = 128)]
        limit: usize,
        #[arg(long, default_value_t = 32)]
        batch: usize,
        /// Where the random checkpoint is written (reused when present).
        #[arg(long)]
        checkpoint: PathBuf,
    },
}

/// Peak resident set size of this process, in MiB (Linux; 0 elsewhere).
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<f64>().ok()))
        })
        .map(|kib| kib / 1024.0)
        .unwrap_or(0.0)
}

fn main() -> anyhow::Result<()> {
    warmstart_cli::one_elementwise_thread();
    let args = Args::parse();
    let threads = candle_threads();
    match args.what {
        What::Text { store, dataset, model, limit, batch, workers, out } => {
            anyhow::ensure!(batch > 0, "--batch must be positive");
            let store = Store::open(&store)?;
            let mut texts: Vec<String> = store
                .embed_candidates(&model, dataset.as_deref())?
                .iter()
                .map(|c| warmstart_cli::embed_text_of(c).replace(['\n', '\r'], " "))
                .filter(|t| !t.trim().is_empty())
                .take(limit)
                .collect();
            texts.sort_by_key(|t| t.len());
            let loaded = LoadedModel::load(&warmstart_store::home_dir(), &model)?;
            let enc = loaded.text().ok_or_else(|| anyhow::anyhow!("{model} has no text tower"))?;
            // no warm-up call: candle sizes its element-wise thread pool on first use, and the
            // workers need it single-threaded (see `embed::parallel`)
            let started = Instant::now();
            let batches: Vec<Vec<&str>> = texts.chunks(batch).map(|c| c.iter().map(String::as_str).collect()).collect();
            let mut parts: Vec<Vec<f32>> = vec![Vec::new(); batches.len()];
            let mut truncated = 0;
            warmstart_embed::parallel::encode_batches(enc, &batches, workers, |i, r| {
                let (v, stats) = r?;
                truncated += stats.truncated;
                parts[i] = v;
                anyhow::Ok(())
            })?;
            let vectors: Vec<f32> = parts.concat();
            let secs = started.elapsed().as_secs_f64();
            std::fs::create_dir_all(&out)?;
            std::fs::write(out.join("texts.txt"), texts.join("\n") + "\n")?;
            let mut f = std::fs::File::create(out.join("vectors.f32"))?;
            for x in &vectors {
                f.write_all(&x.to_le_bytes())?;
            }
            println!(
                "{}",
                serde_json::json!({
                    "model": enc.id(), "texts": texts.len(), "dim": enc.dim(), "batch": batch, "threads": threads,
                    "workers": workers,
                    "truncated": truncated, "window_tokens": enc.max_len(), "seconds": secs,
                    "texts_per_second": texts.len() as f64 / secs, "peak_rss_mib": peak_rss_mib(),
                })
            );
        }
        What::ClipImages { store, dataset, limit, batch, checkpoint } => {
            anyhow::ensure!(batch > 0, "--batch must be positive");
            if !checkpoint.join("model.safetensors").is_file() {
                write_random_checkpoint(&checkpoint, &ClipShape::vit_base_patch32(), 42)?;
            }
            let loaded = LoadedModel::load_dir(&checkpoint, "clip-random", &checkpoint)?;
            let enc = loaded.image().ok_or_else(|| anyhow::anyhow!("no image tower"))?;
            let store = Store::open(&store)?;
            let refs: Vec<(usize, String)> = store
                .embed_candidates(&enc.id(), Some(&dataset))?
                .into_iter()
                .filter_map(|c| c.image)
                .take(limit)
                .enumerate()
                .collect();
            anyhow::ensure!(!refs.is_empty(), "no images in {dataset}");
            let mut images = Vec::with_capacity(refs.len());
            warmstart_ingest::images::read_images(&refs, |_, bytes| {
                if let Ok(img) = bytes.map_err(anyhow::Error::msg).and_then(|b| Ok(image::load_from_memory(&b)?)) {
                    images.push(img);
                }
                anyhow::Ok(())
            })?;
            enc.encode_images(&images[..1])?; // warm-up
            let started = Instant::now();
            for chunk in images.chunks(batch) {
                enc.encode_images(chunk)?;
            }
            let secs = started.elapsed().as_secs_f64();
            println!(
                "{}",
                serde_json::json!({
                    "model": "clip-vit-b32 (random weights)", "images": images.len(), "batch": batch,
                    "threads": threads, "seconds": secs, "images_per_second": images.len() as f64 / secs,
                    "peak_rss_mib": peak_rss_mib(),
                })
            );
        }
    }
    Ok(())
}

/// Threads candle's CPU kernels use (`RAYON_NUM_THREADS`, else every core).
fn candle_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
}
