//! `warmstart train image-encoder`: a dual encoder trained on a catalog's image–title pairs.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, Subcommand};
use rayon::prelude::*;
use warmstart_embed::dual::{prepare_image, TrainEvent};
use warmstart_embed::{fetch, ClipShape, DualConfig, DualTrainer, PairSet, TowerKind, TrainOptions};
use warmstart_store::Store;
use warmstart_viz::{LineChart, Series};

use crate::embed::{embed_store, EmbedArgs};
use crate::{progress, Cli};

/// `warmstart train ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum TrainCommand {
    /// Train a CLIP-style dual encoder (image tower + text head, InfoNCE) on a catalog's
    /// image–title pairs; the result is a model name for `warmstart embed`.
    ImageEncoder(ImageEncoderArgs),
    /// Train the two-tower model on every interaction of a dataset (early stopping on
    /// held-out cross-site users) and save it beside the store; `warmstart eval --models
    /// two-tower` trains its own copy per protocol.
    TwoTower(TwoTowerArgs),
    /// Train GraphSAGE on the cross-shop product graph of a dataset (early stopping on
    /// held-out cross-site users) and save it beside the store; `warmstart eval --models
    /// graphsage` trains its own copy per protocol.
    Graphsage(GraphSageArgs),
    /// Train any model by name (`warmstart train itemknn`, `warmstart train model two-tower`),
    /// measure the fit on held-out cross-site users and publish a versioned artifact that
    /// `warmstart serve` loads.
    Model(TrainModelArgs),
    /// `warmstart train NAME …` for any other model name: as `train model NAME …`.
    #[command(external_subcommand)]
    Other(Vec<String>),
}

/// Arguments of `warmstart train graphsage`.
#[derive(Debug, Clone, Args)]
pub struct GraphSageArgs {
    /// Dataset group.
    #[arg(long, default_value = "amazon-art-office")]
    pub dataset: String,
    /// Maximum epochs (early stopping may end sooner).
    #[arg(long, default_value_t = 20)]
    pub epochs: usize,
    /// Content vectors of the product nodes (a stored model id or TEXT+IMAGE[:w]; `none` for
    /// id embeddings only).
    #[arg(long, default_value = "minilm")]
    pub vectors: String,
    /// More hyper-parameters as KEY=VALUE (the keys of model names like
    /// `graphsage:fanouts=15/10:agg=max`: hidden, dim, fanouts, agg, dropout, loss, neg, batch,
    /// lr, wd, content_k, content_weight, targets, user_items, validation, patience, ids);
    /// repeatable.
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// Pictures and gallery, as for the two-tower model.
    #[command(flatten)]
    pub pictures: PictureArgs,
}

/// What `train two-tower` and `train graphsage` draw after training.
#[derive(Debug, Clone, Args)]
pub struct PictureArgs {
    /// Cross-site users held out of training for the gallery (their items on one shop are
    /// hidden and that shop's catalog is ranked from the rest); 0 = no gallery.
    #[arg(long, default_value_t = 12)]
    pub gallery_users: usize,
    /// Items drawn in the t-SNE maps (a seeded sample); 0 = no maps.
    #[arg(long, default_value_t = 2000)]
    pub map_items: usize,
    /// k of the k-means clustering of the item vectors.
    #[arg(long, default_value_t = 12)]
    pub clusters: usize,
    /// Seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Where run directories are written.
    #[arg(long, default_value = "runs")]
    pub runs_dir: PathBuf,
}

/// Arguments of `warmstart train two-tower`.
#[derive(Debug, Clone, Args)]
pub struct TwoTowerArgs {
    /// Dataset group.
    #[arg(long, default_value = "amazon-art-office")]
    pub dataset: String,
    /// Loss: softmax (in-batch, logQ-corrected) or bce (sampled negatives).
    #[arg(long, default_value = "softmax")]
    pub loss: String,
    /// History pooling: mean or attention.
    #[arg(long, default_value = "mean")]
    pub pooling: String,
    /// Maximum epochs (early stopping may end sooner).
    #[arg(long, default_value_t = 25)]
    pub epochs: usize,
    /// Dimension of both towers' outputs.
    #[arg(long, default_value_t = 64)]
    pub dim: usize,
    /// Content vectors of the item tower (a stored model id or TEXT+IMAGE[:w]; `none` for id
    /// embeddings only).
    #[arg(long, default_value = "minilm")]
    pub vectors: String,
    /// More hyper-parameters as KEY=VALUE (the keys of model names like
    /// `two-tower:targets=8:uniform=256`: hidden, batch, lr, wd, neg, uniform, targets, history,
    /// patience, validation, ids, categorical, popularity, user_mlp); repeatable.
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// Pictures and gallery.
    #[command(flatten)]
    pub pictures: PictureArgs,
}

/// Arguments of `warmstart train image-encoder`.
#[derive(Debug, Clone, Args)]
pub struct ImageEncoderArgs {
    /// Dataset group whose products (with images) are the pairs.
    #[arg(long, default_value = "fashion-products")]
    pub dataset: String,
    /// Name of the trained model (saved in $WARMSTART_HOME/models/<name>).
    #[arg(long, default_value = "fashion-dual")]
    pub name: String,
    /// Image tower: cnn (trained from scratch) or clip (fine-tune the vision tower of --from).
    #[arg(long, default_value = "cnn")]
    pub tower: String,
    /// CLIP checkpoint to fine-tune (model name, e.g. clip or fashion-clip), with --tower clip.
    #[arg(long, default_value = "clip")]
    pub from: String,
    /// Sentence model whose frozen vectors the text head reads (CNN tower; the CLIP tower
    /// reads its own checkpoint's text vectors).
    #[arg(long, default_value = "minilm")]
    pub text_model: String,
    /// Passes over the training pairs.
    #[arg(long, default_value_t = 8)]
    pub epochs: usize,
    /// Pairs per step (in-batch negatives).
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    /// Peak learning rate (AdamW, warm-up then cosine decay).
    #[arg(long, default_value_t = 2e-3)]
    pub lr: f64,
    /// Dimension of the shared space.
    #[arg(long, default_value_t = 128)]
    pub dim: usize,
    /// Pairs held out for retrieval recall@1/@10.
    #[arg(long, default_value_t = 1000)]
    pub held_out: usize,
    /// Use only the first N pairs (by product id), e.g. for a quick run.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Seed of initialisation, split, order and augmentation.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Where run directories are written.
    #[arg(long, default_value = "runs")]
    pub runs_dir: PathBuf,
}

/// `warmstart train`.
pub fn run(cli: &Cli, c: &TrainCommand) -> anyhow::Result<()> {
    match c {
        TrainCommand::ImageEncoder(a) => image_encoder(cli, a),
        TrainCommand::TwoTower(a) => two_tower(cli, a),
        TrainCommand::Graphsage(a) => graphsage(cli, a),
        TrainCommand::Model(a) => model(cli, a),
        TrainCommand::Other(args) => {
            use clap::Parser;
            let a = TrainModelArgs::try_parse_from(
                std::iter::once("warmstart train".to_string()).chain(args.iter().cloned()),
            )?;
            model(cli, &a)
        }
    }
}

/// What reading the pairs found.
#[derive(Debug, Default, serde::Serialize)]
struct PairStats {
    products: usize,
    pairs: usize,
    without_image: usize,
    without_text: usize,
    unreadable_images: usize,
}

/// Image–text pairs of `dataset`: products with a text vector of `text_id` and a readable
/// image, prepared at `height × width`.
fn load_pairs(
    store: &Store,
    dataset: &str,
    text_id: &str,
    (height, width, crop): (usize, usize, bool),
    limit: Option<usize>,
    json: bool,
) -> anyhow::Result<(PairSet, PairStats)> {
    let d = store.load_dataset(Some(dataset))?;
    let vectors = store.load_item_vectors(text_id, Some(dataset))?;
    let mut stats = PairStats { products: d.n_items(), ..Default::default() };
    let mut refs: Vec<(usize, String)> = Vec::new();
    for (i, p) in d.products.iter().enumerate() {
        match (&p.image, vectors.present.get(i).copied().unwrap_or(false)) {
            (None, _) => stats.without_image += 1,
            (_, false) => stats.without_text += 1,
            (Some(r), true) => refs.push((i, r.clone())),
        }
    }
    if let Some(l) = limit {
        refs.truncate(l);
    }
    let pb = progress(refs.len() as u64, json, "reading images");
    let mut raw: Vec<(usize, Vec<u8>)> = Vec::with_capacity(refs.len());
    warmstart_ingest::images::read_images(&refs, |i, bytes| {
        match bytes {
            Ok(b) => raw.push((i, b)),
            Err(_) => stats.unreadable_images += 1,
        }
        pb.inc(1);
        anyhow::Ok(())
    })?;
    pb.finish_and_clear();
    raw.sort_by_key(|r| r.0);
    let prepared: Vec<(usize, Option<Vec<u8>>)> = raw
        .par_iter()
        .map(|(i, b)| (*i, image::load_from_memory(b).ok().map(|img| prepare_image(&img, height, width, crop))))
        .collect();
    drop(raw);
    let mut set = PairSet::default();
    for (i, px) in prepared {
        let Some(px) = px else {
            stats.unreadable_images += 1;
            continue;
        };
        set.pixels.extend_from_slice(&px);
        set.text.extend_from_slice(vectors.row(i as u32));
        set.n += 1;
    }
    stats.pairs = set.n;
    Ok((set, stats))
}

fn image_encoder(cli: &Cli, a: &ImageEncoderArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let home = warmstart_store::home_dir();
    let tower = match a.tower.as_str() {
        "cnn" => TowerKind::Cnn,
        "clip" => TowerKind::Clip,
        t => anyhow::bail!("--tower {t}: expected cnn or clip"),
    };
    anyhow::ensure!(
        a.name != a.from && !fetch::MODELS.contains(&a.name.as_str()),
        "--name {} is taken by a fetched model",
        a.name
    );
    let (text_model, text_id) = match tower {
        TowerKind::Cnn => (a.text_model.clone(), a.text_model.clone()),
        TowerKind::Clip => (a.from.clone(), format!("{}/text", a.from)),
    };
    let mut store = Store::open(&cli.store_path())?;
    // the frozen text vectors the text head reads (cached by content hash)
    embed_store(&mut store, &EmbedArgs::text_only(&text_model, Some(a.dataset.clone())), cli.json)?;
    let text_dim = store.load_item_vectors(&text_id, Some(&a.dataset))?.dim;
    anyhow::ensure!(text_dim > 0, "no `{text_id}` vectors for {}", a.dataset);
    let (config, clip_dir) = match tower {
        TowerKind::Cnn => (DualConfig { dim: a.dim, ..DualConfig::cnn(&text_id, text_dim) }, None),
        TowerKind::Clip => {
            let dir = fetch::ensure(&home, &a.from)?;
            let shape = ClipShape::from_config(&dir.join("config.json"))?;
            (DualConfig { dim: a.dim, ..DualConfig::clip(&shape, &text_id, text_dim) }, Some(dir))
        }
    };
    let config = config.validate()?;
    let crop = tower == TowerKind::Clip;
    let (pairs, pair_stats) =
        load_pairs(&store, &a.dataset, &text_id, (config.image_height, config.image_width, crop), a.limit, cli.json)?;
    let opts = TrainOptions {
        epochs: a.epochs,
        batch: a.batch,
        learning_rate: a.lr,
        held_out: a.held_out,
        seed: a.seed,
        ..Default::default()
    }
    .validate(pairs.n)?;
    let mut trainer = match &clip_dir {
        None => DualTrainer::new(config, a.seed)?,
        Some(dir) => DualTrainer::from_clip(config, dir, a.seed)?,
    };
    let steps = (pairs.n - opts.held_out).div_ceil(opts.batch) * opts.epochs;
    let pb = progress(steps as u64, cli.json, &format!("training {}", a.name));
    let report = trainer.train(&pairs, opts, |e| match e {
        TrainEvent::Step { epoch, loss } => {
            pb.set_message(format!("epoch {epoch} loss {loss:.3}"));
            pb.inc(1);
        }
        TrainEvent::Epoch(r) => {
            let line = format!(
                "epoch {}: train loss {:.3}, held-out loss {:.3}, text→image R@1 {:.3} R@10 {:.3}, image→text R@10 {:.3}, τ {:.3}, {:.0}s",
                r.epoch,
                r.train_loss,
                r.held_out_loss,
                r.retrieval.text_to_image.at1,
                r.retrieval.text_to_image.at10,
                r.retrieval.image_to_text.at10,
                r.temperature,
                r.seconds
            );
            // a hidden bar (no terminal) swallows println: logs still get the epochs
            match (cli.json, pb.is_hidden()) {
                (true, _) => {}
                (false, true) => eprintln!("{line}"),
                (false, false) => pb.println(line),
            }
        }
    })?;
    pb.finish_and_clear();
    let model_dir = fetch::installed_dir(&home, &a.name);
    trainer.save(&model_dir)?;

    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let run_dir = a.runs_dir.join(format!("{stamp}-image-encoder-{}", a.name));
    std::fs::create_dir_all(&run_dir)?;
    let pictures = write_curves(&run_dir, &report)?;
    let last = report.epochs.last().map(|e| e.retrieval).unwrap_or(report.initial);
    let summary = serde_json::json!({
        "model": a.name,
        "model_dir": model_dir,
        "run_dir": run_dir,
        "tower": tower,
        "text_vectors": text_id,
        "pairs": pair_stats,
        "text_to_image": last.text_to_image,
        "image_to_text": last.image_to_text,
        "random": report.random,
        "before_training": report.initial,
        "pairs_per_second": report.pairs_per_second,
        "seconds_per_epoch": report.epochs.iter().map(|e| e.seconds).sum::<f64>() / report.epochs.len().max(1) as f64,
        "epochs": report.epochs,
        "pictures": pictures,
        "seconds": started.elapsed().as_secs_f64(),
    });
    let mut full = summary.clone();
    full["step_losses"] = serde_json::to_value(&report.step_losses)?;
    std::fs::write(run_dir.join("report.json"), serde_json::to_string_pretty(&full)?)?;
    if cli.json {
        println!("{summary}");
    } else {
        println!(
            "{}: {} pairs ({} held out), {:.0} pairs/s, {:.0}s per epoch",
            a.name,
            pair_stats.pairs,
            report.held_out_pairs,
            report.pairs_per_second,
            summary["seconds_per_epoch"].as_f64().unwrap_or(0.0)
        );
        println!(
            "held-out retrieval over {} pairs: text→image R@1 {:.3} R@10 {:.3}; image→text R@1 {:.3} R@10 {:.3} (random R@10 {:.3})",
            last.pool,
            last.text_to_image.at1,
            last.text_to_image.at10,
            last.image_to_text.at1,
            last.image_to_text.at10,
            report.random.text_to_image.at10
        );
        if pair_stats.unreadable_images + pair_stats.without_image > 0 {
            println!(
                "{} products without an image and {} unreadable images were left out (their vectors fall back to text)",
                pair_stats.without_image, pair_stats.unreadable_images
            );
        }
        println!("model: {} (use `warmstart embed --model {}`)", model_dir.display(), a.name);
        println!("run: {}", run_dir.display());
    }
    Ok(())
}

/// Loss and recall curves (SVG and PNG) in the run directory.
fn write_curves(dir: &Path, r: &warmstart_embed::TrainReport) -> anyhow::Result<Vec<PathBuf>> {
    let steps_per_epoch = r.step_losses.len() as f64 / r.epochs.len().max(1) as f64;
    let mut files = LineChart {
        title: "dual encoder: InfoNCE loss".into(),
        x_label: "epoch".into(),
        y_label: "loss".into(),
        series: vec![
            Series::new(
                "training step",
                r.step_losses.iter().enumerate().map(|(i, l)| ((i + 1) as f64 / steps_per_epoch, *l as f64)).collect(),
            ),
            Series::new(
                "held out (all held-out pairs as negatives)",
                r.epochs.iter().map(|e| (e.epoch as f64, e.held_out_loss)).collect(),
            ),
        ],
    }
    .write(&dir.join("loss"))?;
    let curve = |f: &dyn Fn(&warmstart_embed::Retrieval) -> f64| -> Vec<(f64, f64)> {
        std::iter::once((0.0, f(&r.initial)))
            .chain(r.epochs.iter().map(|e| (e.epoch as f64, f(&e.retrieval))))
            .collect()
    };
    let epochs = r.epochs.len() as f64;
    files.extend(
        LineChart {
            title: format!("held-out retrieval ({} pairs)", r.held_out_pairs),
            x_label: "epoch".into(),
            y_label: "recall".into(),
            series: vec![
                Series::new("text→image R@10", curve(&|x| x.text_to_image.at10)),
                Series::new("image→text R@10", curve(&|x| x.image_to_text.at10)),
                Series::new("text→image R@1", curve(&|x| x.text_to_image.at1)),
                Series::new(
                    "random R@10",
                    vec![(0.0, r.random.text_to_image.at10), (epochs, r.random.text_to_image.at10)],
                ),
            ],
        }
        .write(&dir.join("recall"))?,
    );
    Ok(files)
}

fn two_tower(cli: &Cli, a: &TwoTowerArgs) -> anyhow::Result<()> {
    use warmstart_models::{Pooling, Recommender, TwoTowerConfig, TwoTowerLoss};
    let started = Instant::now();
    let loss = match a.loss.as_str() {
        "softmax" => TwoTowerLoss::Softmax,
        "bce" => TwoTowerLoss::Bce,
        l => anyhow::bail!("--loss {l}: expected softmax or bce"),
    };
    let pooling = match a.pooling.as_str() {
        "mean" => Pooling::Mean,
        "attention" => Pooling::Attention,
        p => anyhow::bail!("--pooling {p}: expected mean or attention"),
    };
    let mut builder =
        TwoTowerConfig::builder().loss(loss).pooling(pooling).epochs(a.epochs).dim(a.dim).seed(a.pictures.seed);
    for p in &a.params {
        let (k, v) = p.split_once('=').ok_or_else(|| anyhow::anyhow!("--param {p}: expected KEY=VALUE"))?;
        builder = builder.set(k, v)?;
    }
    let config = builder.build()?;
    let setup = TrainSetup::load(cli, &a.dataset, &a.vectors, &a.pictures)?;
    let pb = progress(a.epochs as u64, cli.json, "training two-tower");
    let model = config.fit_with(&setup.data(), &mut |e| {
        epoch_line(cli, &pb, e.epoch, e.loss, e.validation_ndcg, e.examples, e.train_seconds);
    })?;
    pb.finish_and_clear();
    let model_dir = setup.store.models_dir().join(format!("two-tower-{}", a.dataset));
    model.save(&model_dir)?; // unversioned, for the pictures; serve loads `warmstart train model`
    let epochs = model.epochs();
    let extra = serde_json::json!({
        "model": "two-tower", "loss": a.loss, "pooling": a.pooling, "epochs": epochs,
    });
    report_trained(cli, &setup, &model, model.item_vectors(), &epochs, "two-tower", &model_dir, extra, started)
}

fn graphsage(cli: &Cli, a: &GraphSageArgs) -> anyhow::Result<()> {
    use warmstart_models::{GraphSageConfig, Recommender};
    let started = Instant::now();
    let mut builder = GraphSageConfig::builder().epochs(a.epochs).seed(a.pictures.seed);
    for p in &a.params {
        let (k, v) = p.split_once('=').ok_or_else(|| anyhow::anyhow!("--param {p}: expected KEY=VALUE"))?;
        builder = builder.set(k, v)?;
    }
    let config = builder.build()?;
    let setup = TrainSetup::load(cli, &a.dataset, &a.vectors, &a.pictures)?;
    let pb = progress(a.epochs as u64, cli.json, "training GraphSAGE");
    let graph_pb = progress(0, cli.json, "content neighbours");
    let model = config.fit_with(
        &setup.data(),
        &mut |e| {
            graph_pb.finish_and_clear();
            epoch_line(cli, &pb, e.epoch, e.loss, e.validation_ndcg, e.examples, e.train_seconds);
        },
        &mut |_, done, total| {
            graph_pb.set_length(total as u64);
            graph_pb.set_position(done as u64);
        },
    )?;
    graph_pb.finish_and_clear();
    pb.finish_and_clear();
    let model_dir = setup.store.models_dir().join(format!("graphsage-{}", a.dataset));
    model.save(&model_dir)?; // unversioned, for the pictures; serve loads `warmstart train model`
    let epochs = model.epochs();
    let extra = serde_json::json!({ "model": "graphsage", "epochs": epochs });
    report_trained(cli, &setup, &model, model.item_vectors(), &epochs, "graphsage", &model_dir, extra, started)
}

/// Store, dataset, vectors, gallery users and training matrix of a `train` run.
struct TrainSetup<'a> {
    store: Store,
    d: warmstart_core::Dataset,
    vectors: Option<warmstart_core::ItemVectors>,
    held: std::collections::HashMap<warmstart_core::UserId, warmstart_core::SiteId>,
    matrix: warmstart_core::CsrMatrix,
    dataset: &'a str,
    vectors_name: &'a str,
    pictures: &'a PictureArgs,
}

impl<'a> TrainSetup<'a> {
    fn load(
        cli: &Cli,
        dataset: &'a str,
        vectors: &'a str,
        pictures: &'a PictureArgs,
    ) -> anyhow::Result<TrainSetup<'a>> {
        let store = Store::open(&cli.store_path())?;
        let d = store.load_dataset(Some(dataset))?;
        let loaded = if vectors == "none" {
            None
        } else {
            Some(crate::vectors::load_vectors(&store, dataset, &d, &vectors.parse()?)?)
        };
        let held = crate::gallery::pick_users(&d, pictures.gallery_users, pictures.seed);
        // binary, as the leaderboards measure
        let matrix = d.matrix(|r| held.get(&r.user) != Some(&d.site_of(r.item)), |_| 1.0).map_values(|_| 1.0);
        Ok(TrainSetup { store, d, vectors: loaded, held, matrix, dataset, vectors_name: vectors, pictures })
    }

    fn data(&self) -> warmstart_models::TrainData<'_> {
        warmstart_models::TrainData { dataset: &self.d, matrix: &self.matrix, item_vectors: self.vectors.as_ref() }
    }
}

/// One epoch's line above the progress bar.
fn epoch_line(
    cli: &Cli,
    pb: &indicatif::ProgressBar,
    epoch: usize,
    loss: f64,
    validation: Option<f64>,
    examples: usize,
    seconds: f64,
) {
    let line = format!(
        "epoch {epoch}: loss {loss:.4}, validation NDCG@10 {} ({examples} examples, {seconds:.1}s, {:.0} examples/s)",
        validation.map(|v| format!("{v:.4}")).unwrap_or_else(|| "–".into()),
        examples as f64 / seconds.max(1e-9)
    );
    match (cli.json, pb.is_hidden()) {
        (true, _) => {}
        (false, true) => eprintln!("{line}"),
        (false, false) => pb.println(line),
    }
    pb.inc(1);
}

/// Curves, item maps, gallery and `report.json` of a trained model.
#[allow(clippy::too_many_arguments)]
fn report_trained(
    cli: &Cli,
    setup: &TrainSetup,
    model: &dyn warmstart_models::Recommender,
    item_vectors: Option<(&[f32], usize)>,
    epochs: &[warmstart_models::EpochReport],
    kind: &str,
    model_dir: &Path,
    extra: serde_json::Value,
    started: Instant,
) -> anyhow::Result<()> {
    let (d, p, dataset) = (&setup.d, setup.pictures, setup.dataset);
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let run_dir = p.runs_dir.join(format!("{stamp}-{kind}-{dataset}"));
    std::fs::create_dir_all(&run_dir)?;
    let mut pictures = LineChart {
        title: format!("{kind} training loss, {dataset}"),
        x_label: "epoch".into(),
        y_label: "loss".into(),
        series: vec![Series::new("training", epochs.iter().map(|e| (e.epoch as f64, e.loss)).collect())],
    }
    .write(&run_dir.join("loss"))?;
    let ndcg: Vec<(f64, f64)> = epochs.iter().filter_map(|e| e.validation_ndcg.map(|v| (e.epoch as f64, v))).collect();
    if !ndcg.is_empty() {
        pictures.extend(
            LineChart {
                title: format!("{kind} validation NDCG@10, {dataset}"),
                x_label: "epoch".into(),
                y_label: "NDCG@10".into(),
                series: vec![Series::new("held-out cross-site users", ndcg)],
            }
            .write(&run_dir.join("validation"))?,
        );
    }
    let mut clusters = serde_json::Value::Null;
    if let (Some((item_vectors, dim)), true) = (item_vectors, p.map_items > 0) {
        let (files, summary) = crate::item_maps::item_maps(
            &run_dir,
            d,
            item_vectors,
            dim,
            &crate::item_maps::ItemMapOptions {
                label: &format!("{kind} items, {dataset}"),
                map_items: p.map_items,
                clusters: p.clusters,
                seed: p.seed,
                quiet: cli.json,
            },
        )?;
        pictures.extend(files);
        clusters = summary;
    }
    let mut gallery = serde_json::Value::Null;
    if !setup.held.is_empty() {
        let (file, summary) = crate::gallery::write_gallery(
            &run_dir.join("gallery.html"),
            d,
            model,
            &setup.held,
            &format!("{kind} cold-start recommendations, {dataset}"),
        )?;
        pictures.push(file);
        gallery = summary;
    }
    let mut summary = serde_json::json!({
        "name": model.name(), "dataset": dataset, "vectors": setup.vectors_name, "model_dir": model_dir,
        "run_dir": run_dir, "pictures": pictures, "clusters": clusters, "gallery": gallery,
        "seconds": started.elapsed().as_secs_f64(),
    });
    if let (Some(s), Some(e)) = (summary.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    std::fs::write(run_dir.join("report.json"), serde_json::to_string_pretty(&summary)?)?;
    if cli.json {
        println!("{summary}");
    } else {
        println!("{kind} on {dataset}: {} epochs in {:.0}s", epochs.len(), started.elapsed().as_secs_f64());
        println!("model: {}\nrun: {}", model_dir.display(), run_dir.display());
    }
    Ok(())
}

/// Arguments of `warmstart train MODEL`.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "warmstart train")]
pub struct TrainModelArgs {
    /// Model name: pop, itemknn, als, bpr, content, content-pop, content-map, content-map-pop
    /// (`-kN` for N interests), two-tower[-bce|-attn|-ids][:key=value…], graphsage[-max|-bce][:key=value…].
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
pub fn model(cli: &Cli, a: &TrainModelArgs) -> anyhow::Result<()> {
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
