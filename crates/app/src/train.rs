//! `warmstart train MODEL`: fit a named model once, measure that very fit on a hold-out of
//! cross-site users (every site a target), build ANN indexes over its item vectors, and
//! publish it all as one artifact version. The served model is the measured model.

use std::sync::Arc;
use std::time::Instant;

use warmstart_core::ItemVectors;
use warmstart_eval::protocol::serving_holdout;
use warmstart_eval::runner::evaluate_fitted;
use warmstart_eval::{EvalConfig, ProtocolOptions};
use warmstart_index::{Hnsw, HnswParams, Metric};
use warmstart_models::{Recommender, TrainData};
use warmstart_store::Store;

use crate::artifact::{self, ArtifactRef, Evaluation, IndexInfo, Manifest, TaskEvaluation, TrainingInfo};
use crate::vectors::{load_vectors, VectorSpec, CONTENT_ENCODER};
use crate::{Error, Result};

/// Options of a training run.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Share of cross-site users held out to measure the model; 0 trains on everything and
    /// records no evaluation.
    pub holdout_share: f64,
    /// Seed of the hold-out and the model.
    pub seed: u64,
    /// Threads of multi-threaded models (0: all cores).
    pub threads: usize,
    /// Content vectors (default: MiniLM for models that read content; `None` inside
    /// `Some` is never used: pass `vectors: None` for id-only two-tower / GraphSAGE).
    pub vectors: Option<VectorSpec>,
    /// Sites with at least this many items get an ANN index over the model's item vectors.
    pub index_min_items: usize,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            holdout_share: 0.1,
            seed: 42,
            threads: 0,
            vectors: Some(VectorSpec::Single(CONTENT_ENCODER.into())),
            index_min_items: 2000,
        }
    }
}

/// What a training run did.
pub struct Trained {
    /// The published artifact.
    pub artifact: ArtifactRef,
    /// The fitted model (as published).
    pub model: Box<dyn Recommender>,
}

/// Trains `model` on `dataset`, evaluates and publishes it. `progress` receives stage names.
pub fn train(
    store: &Store,
    dataset: &str,
    model: &str,
    opts: &TrainOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Trained> {
    let params = warmstart_models::by_name(model, opts.threads, opts.seed)?;
    if !(0.0..0.5).contains(&opts.holdout_share) {
        return Err(Error::bad("holdout", "the hold-out share must be in [0, 0.5)"));
    }
    progress("loading the dataset");
    let d = store.load_dataset(Some(dataset))?;
    if d.n_items() == 0 {
        return Err(Error::NotFound { what: "dataset", key: dataset.to_string() });
    }
    let spec = if warmstart_models::can_use_vectors(model) { opts.vectors.clone() } else { None };
    if warmstart_models::needs_vectors(model) && spec.is_none() {
        return Err(Error::bad("vectors", format!("{model} reads content vectors")));
    }
    let vectors: Option<Arc<ItemVectors>> = match &spec {
        None => None,
        Some(s) => {
            progress("loading content vectors");
            Some(Arc::new(load_vectors(store, dataset, &d, s, &mut |_| {})?))
        }
    };
    let popts = ProtocolOptions { seed: opts.seed, holdout_share: opts.holdout_share, ..Default::default() };
    let (tasks, matrix) = if opts.holdout_share > 0.0 {
        let tasks = serving_holdout(&d, &popts);
        let m = tasks.first().map(|t| t.train.clone()).unwrap_or_else(|| d.interaction_matrix());
        (tasks, m)
    } else {
        (Vec::new(), d.interaction_matrix())
    };
    progress(&format!("fitting {model}"));
    let started = Instant::now();
    let fitted = params.fit(&TrainData { dataset: &d, matrix: &matrix, item_vectors: vectors.as_deref() })?;
    let fit_seconds = started.elapsed().as_secs_f64();
    let evaluation = if tasks.iter().any(|t| !t.test.is_empty()) {
        progress("evaluating the fitted model");
        let cfg = EvalConfig { ks: vec![10, 20], seed: opts.seed, item_vectors: vectors.clone() };
        let mut out = Vec::new();
        for t in tasks.iter().filter(|t| !t.test.is_empty()) {
            let r = evaluate_fitted(fitted.as_ref(), &d, t, &cfg, false, fit_seconds)?;
            out.push(TaskEvaluation { task: r.task, cases: r.cases, metrics: r.metrics });
        }
        Some(Evaluation { protocol: tasks[0].notes.join("; "), tasks: out })
    } else {
        None
    };
    let manifest = Manifest {
        format: artifact::MANIFEST_FORMAT,
        model: model.to_string(),
        display_name: fitted.name(),
        dataset: dataset.to_string(),
        vectors: spec.as_ref().map(|s| s.to_string()),
        fingerprint: artifact::fingerprint(&d),
        items: d.n_items(),
        version: 0,
        created_unix: 0,
        training: TrainingInfo {
            seconds: fit_seconds,
            users: matrix.n_rows(),
            interactions: matrix.nnz(),
            holdout_share: opts.holdout_share,
            seed: opts.seed,
            notes: fitted.fit_notes(),
        },
        evaluation,
        index: Vec::new(),
    };
    progress("publishing");
    let root = artifact::root(store);
    let keys = artifact::item_keys(&d);
    let published = artifact::publish(&root, manifest, &keys, |dir, manifest| {
        fitted.save(&dir.join("model"))?;
        // ANN indexes over the model's own item vectors (content models use the catalog's
        // content-space index, kept beside the store)
        if let Some(space) = fitted.space().filter(|s| !s.cosine()) {
            let params = HnswParams::builder().m(16).ef_construction(200).ef_search(128).seed(opts.seed).build()?;
            for site in &d.sites {
                if site.n_items() < opts.index_min_items.max(1) {
                    continue;
                }
                let t = Instant::now();
                let mut ids = Vec::new();
                let mut data = Vec::new();
                for i in site.items.clone() {
                    if let Some(v) = space.item_vector(i) {
                        ids.push(i);
                        data.extend(v);
                    }
                }
                let index = Hnsw::build(&params, Metric::InnerProduct, space.dim(), &ids, &data)?;
                let file = format!("{}.hnsw", artifact::slug(&site.key));
                let ix_dir = dir.join("index");
                std::fs::create_dir_all(&ix_dir).map_err(|e| Error::io(&ix_dir, e))?;
                index.save(&ix_dir.join(&file))?;
                manifest.index.push(IndexInfo {
                    site: site.key.clone(),
                    file,
                    items: ids.len(),
                    build_seconds: t.elapsed().as_secs_f64(),
                });
            }
        }
        Ok(())
    })?;
    Ok(Trained { artifact: published, model: fitted })
}
