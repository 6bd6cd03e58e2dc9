//! `warmstart train image-encoder`: a dual encoder trained on a catalog's image–title pairs.

use super::*;

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

pub(super) fn image_encoder(cli: &Cli, a: &ImageEncoderArgs) -> anyhow::Result<()> {
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
