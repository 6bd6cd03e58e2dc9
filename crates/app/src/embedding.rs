//! Content vectors for a store's products: every tower of an encoder over the products whose
//! vectors are missing or stale (the store caches them by model and content hash), committed
//! in chunks so that an interrupted run keeps what it finished. `warmstart embed`, the
//! pipeline and the commands that need vectors first all call [`embed_store`].

use std::time::Instant;

use rayon::prelude::*;
use warmstart_embed::{product_text, ImageEncoder, LoadedModel, TextEncoder};
use warmstart_store::{EmbedCandidate, Store, VectorDtype};

use crate::{Error, Result};

/// What to embed and how.
#[derive(Debug, Clone)]
pub struct EmbedOptions {
    /// A model name `LoadedModel::load` reads (fetched or trained).
    pub model: String,
    /// Only this dataset group's products (default: all).
    pub dataset: Option<String>,
    /// Texts or images per encoder call.
    pub batch: usize,
    /// Text batches encoded at once, one per worker.
    pub workers: usize,
    /// Vectors written per store transaction.
    pub commit_every: usize,
    /// How the vectors are stored.
    pub dtype: VectorDtype,
    /// Run the text tower (where the model has one).
    pub text: bool,
    /// Run the image tower (where the model has one).
    pub images: bool,
    /// At most this many images.
    pub image_limit: Option<usize>,
}

impl EmbedOptions {
    /// Texts only, with the defaults of `warmstart embed` (batch 8, one worker per core).
    pub fn text_only(model: &str, dataset: Option<String>) -> EmbedOptions {
        EmbedOptions {
            model: model.into(),
            dataset,
            batch: 8,
            workers: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            commit_every: 2048,
            dtype: VectorDtype::F32,
            text: true,
            images: false,
            image_limit: None,
        }
    }
}

/// Progress of [`embed_store`]: a stage starts with its number of items, items get done.
pub enum EmbedProgress<'a> {
    /// A tower starts on `total` items.
    Start {
        /// What is embedded, e.g. `texts (minilm)`.
        what: &'a str,
        /// Items to embed.
        total: u64,
    },
    /// This many more items are done.
    Done(u64),
    /// The tower finished.
    Finish,
}

/// Embeds what is missing or stale in `store` with every tower asked for; returns the summary.
pub fn embed_store(
    store: &mut Store,
    o: &EmbedOptions,
    progress: &mut dyn FnMut(EmbedProgress),
) -> Result<serde_json::Value> {
    if o.batch == 0 || o.commit_every == 0 {
        return Err(Error::bad("batch", "the batch and commit sizes must be positive"));
    }
    let model = LoadedModel::load(&warmstart_store::home_dir(), &o.model)?;
    let mut parts = Vec::new();
    if let (Some(tower), true) = (model.text(), o.text) {
        parts.push(embed_texts(store, tower, o, progress)?);
    }
    if let (Some(tower), true) = (model.image(), o.images) {
        parts.push(embed_images(store, tower, o, progress)?);
    }
    Ok(serde_json::json!({ "model": o.model, "dtype": o.dtype.as_str(), "parts": parts }))
}

/// The text a product is embedded from.
pub fn text_of(c: &EmbedCandidate) -> String {
    product_text(&c.title, c.brand.as_deref(), c.category.as_deref(), c.description.as_deref(), &c.attributes)
}

fn embed_texts(
    store: &mut Store,
    encoder: &dyn TextEncoder,
    o: &EmbedOptions,
    progress: &mut dyn FnMut(EmbedProgress),
) -> Result<serde_json::Value> {
    let started = Instant::now();
    let id = encoder.id();
    let candidates = store.embed_candidates(&id, o.dataset.as_deref())?;
    let cached = candidates.iter().filter(|c| c.cached).count();
    let mut todo: Vec<(i64, String, String)> =
        candidates.iter().filter(|c| !c.cached).map(|c| (c.id, text_of(c), c.content_hash.clone())).collect();
    let empty = todo.iter().filter(|t| t.1.trim().is_empty()).count();
    todo.retain(|t| !t.1.trim().is_empty());
    // similar lengths in a batch waste less padding
    todo.sort_by_key(|t| t.1.len());
    progress(EmbedProgress::Start { what: &format!("embedding texts ({id})"), total: todo.len() as u64 });
    let (mut truncated, mut pending) = (0usize, Vec::new());
    let chunks: Vec<&[(i64, String, String)]> = todo.chunks(o.batch).collect();
    let batches: Vec<Vec<&str>> = chunks.iter().map(|c| c.iter().map(|t| t.1.as_str()).collect()).collect();
    warmstart_embed::parallel::encode_batches(encoder, &batches, o.workers.max(1), |i, result| {
        let (vecs, stats) = result?;
        truncated += stats.truncated;
        for (t, v) in chunks[i].iter().zip(vecs.chunks_exact(encoder.dim())) {
            pending.push((t.0, t.2.clone(), v.to_vec()));
        }
        if pending.len() >= o.commit_every {
            store.put_embeddings(&id, &pending, o.dtype)?;
            pending.clear();
        }
        progress(EmbedProgress::Done(chunks[i].len() as u64));
        Ok::<(), Error>(())
    })?;
    store.put_embeddings(&id, &pending, o.dtype)?;
    progress(EmbedProgress::Finish);
    let secs = started.elapsed().as_secs_f64();
    Ok(serde_json::json!({
        "model": id, "dim": encoder.dim(), "products": candidates.len(), "cached": cached,
        "embedded": todo.len(), "skipped": empty, "truncated": truncated, "window_tokens": encoder.max_len(),
        "seconds": secs, "per_second": todo.len() as f64 / secs.max(1e-9),
    }))
}

fn embed_images(
    store: &mut Store,
    encoder: &dyn ImageEncoder,
    o: &EmbedOptions,
    progress: &mut dyn FnMut(EmbedProgress),
) -> Result<serde_json::Value> {
    let started = Instant::now();
    let id = encoder.id();
    let candidates = store.embed_candidates(&id, o.dataset.as_deref())?;
    let cached = candidates.iter().filter(|c| c.cached).count();
    let mut refs: Vec<(usize, String)> = candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.cached)
        .filter_map(|(n, c)| c.image.clone().map(|r| (n, r)))
        .collect();
    let without = candidates.iter().filter(|c| !c.cached && c.image.is_none()).count();
    if let Some(limit) = o.image_limit {
        refs.truncate(limit);
    }
    progress(EmbedProgress::Start { what: &format!("embedding images ({id})"), total: refs.len() as u64 });
    let mut batch: Vec<(usize, Vec<u8>)> = Vec::with_capacity(o.batch);
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
        progress(EmbedProgress::Done(batch.len() as u64));
        batch.clear();
        if pending.len() >= o.commit_every || last {
            store.put_embeddings(&id, pending, o.dtype)?;
            pending.clear();
        }
        Ok::<(), Error>(())
    };
    warmstart_ingest::images::read_images(&refs, |n, bytes| {
        match bytes {
            Ok(b) => batch.push((n, b)),
            Err(_) => missing += 1,
        }
        if batch.len() >= o.batch {
            flush(&mut batch, &mut pending, false)?;
        }
        Ok::<(), Error>(())
    })?;
    flush(&mut batch, &mut pending, true)?;
    progress(EmbedProgress::Finish);
    let secs = started.elapsed().as_secs_f64();
    Ok(serde_json::json!({
        "model": id, "dim": encoder.dim(), "products": candidates.len(), "cached": cached, "embedded": embedded,
        "skipped": without, "unreadable": unreadable + missing, "seconds": secs, "per_second": embedded as f64 / secs.max(1e-9),
    }))
}
