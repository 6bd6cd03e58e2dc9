//! `warmstart train two-tower | graphsage`: the neural models on every interaction of a dataset,
//! early stopping on held-out cross-site users, saved beside the store.

use super::*;

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

pub(super) fn two_tower(cli: &Cli, a: &TwoTowerArgs) -> anyhow::Result<()> {
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

pub(super) fn graphsage(cli: &Cli, a: &GraphSageArgs) -> anyhow::Result<()> {
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
        let held = warmstart_app::gallery::pick_users(&d, pictures.gallery_users, pictures.seed);
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
        let (file, summary) = warmstart_app::gallery::write_gallery(
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
