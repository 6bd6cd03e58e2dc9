//! `warmstart personas`: simulated shoppers from named personas on a catalog dealt into
//! shops, ranking their third shop from two others with text, image, texture and fused
//! vectors (5-fold cross-validation over shoppers).

use std::path::PathBuf;

use clap::Args;
use warmstart_embed::fuse;
use warmstart_eval::personas::{
    generate_shoppers, load_personas, parse_personas, persona_benchmark, shoppers_json, ItemFacets,
    PersonaBenchOptions, ShopperOptions, VectorSet, BUILTIN_PERSONAS,
};
use warmstart_store::Store;

use crate::embed::{embed_store, EmbedArgs};
use crate::eval::parse_ks;
use crate::vectors::load_one;
use crate::Cli;

/// Arguments of `warmstart personas`.
#[derive(Debug, Clone, Args)]
pub struct PersonasArgs {
    /// Dataset group with at least two shops (fashion-products ingested with --shops 3).
    #[arg(long, default_value = "fashion-products")]
    pub dataset: String,
    /// Personas file (TOML, see data/personas.toml; default: the built-in one).
    #[arg(long)]
    pub personas: Option<PathBuf>,
    /// Text vectors (a text model, or a text tower such as clip/text).
    #[arg(long, default_value = "minilm")]
    pub text: String,
    /// Image model: a trained dual encoder (`warmstart train image-encoder`) or clip; `none`
    /// leaves image vectors out.
    #[arg(long, default_value = "fashion-dual")]
    pub image: String,
    /// Shoppers per persona.
    #[arg(long, default_value_t = 40)]
    pub per_persona: usize,
    /// Cross-validation folds over shoppers.
    #[arg(long, default_value_t = 5)]
    pub folds: usize,
    /// Cut-offs.
    #[arg(long, default_value = "5,10")]
    pub k: String,
    /// Utility (0–1) from which an item counts as relevant for a persona.
    #[arg(long, default_value_t = 0.8)]
    pub relevant_at: f32,
    /// Seed of the simulation.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Where run directories are written.
    #[arg(long, default_value = "runs")]
    pub runs_dir: PathBuf,
    /// Also store every simulated shopper's interactions (users `persona:<name>:<n>`) as
    /// demo data; idempotent for the same seed.
    #[arg(long)]
    pub save: bool,
    /// Store the shoppers (as --save) and stop: no vectors, no benchmark (e.g. to train
    /// collaborative models on them for `experiments simulate --ground-truth personas`).
    #[arg(long)]
    pub save_only: bool,
    /// Write the shoppers (each one's history on the other shops by site and product id
    /// and kind, and the ids of their target shop's relevant items) to this JSON file and
    /// stop: the browser extension's tests replay them in a real browser.
    #[arg(long, value_name = "FILE")]
    pub export_shoppers: Option<PathBuf>,
}

/// Writes the shoppers' interactions into the store; returns how many were new.
fn save_shoppers(
    store: &mut Store,
    d: &warmstart_core::Dataset,
    personas: &[warmstart_eval::personas::Persona],
    shoppers: &[warmstart_eval::personas::Shopper],
    per_persona: usize,
) -> anyhow::Result<u64> {
    let mut rows = Vec::new();
    for (n, s) in shoppers.iter().enumerate() {
        let user = format!("persona:{}:{}", personas[s.persona].name, n % per_persona.max(1));
        for r in s.history.iter().chain(&s.target_history) {
            let p = &d.products[r.item as usize];
            rows.push(warmstart_core::Interaction {
                user: user.clone(),
                site: d.sites[p.site as usize].key.clone(),
                product: p.external_id.clone(),
                kind: r.kind,
                value: r.value,
                text: None,
                time: r.time,
                split: r.split,
            });
        }
    }
    let summary = store.write("personas", &[], &[], &rows, "simulated persona shoppers", &|_| {})?;
    Ok(summary.interactions_inserted)
}

/// `warmstart personas`.
pub fn run(cli: &Cli, a: &PersonasArgs) -> anyhow::Result<()> {
    let personas = match &a.personas {
        Some(p) => load_personas(p)?,
        None => parse_personas(BUILTIN_PERSONAS, "data/personas.toml (built in)")?,
    };
    let mut store = Store::open(&cli.store_path())?;
    let d = store.load_dataset(Some(&a.dataset))?;
    anyhow::ensure!(
        d.sites.len() >= 2,
        "{} has {} shop(s); deal it into several (e.g. `warmstart ingest fashion DIR --shops 3`)",
        a.dataset,
        d.sites.len()
    );
    let attributes = store.product_attributes(Some(&a.dataset))?;
    let facets: Vec<ItemFacets> =
        d.products.iter().zip(&attributes).map(|(p, at)| ItemFacets::of(&p.category, &p.title, at)).collect();
    let shopper_opts = ShopperOptions { per_persona: a.per_persona, seed: a.seed, ..Default::default() };
    let shoppers = generate_shoppers(&personas, &d, &facets, &shopper_opts)?;
    let stored = if a.save || a.save_only {
        Some(save_shoppers(&mut store, &d, &personas, &shoppers, a.per_persona)?)
    } else {
        None
    };
    if let (Some(n), false) = (stored, cli.json) {
        eprintln!("stored {n} new interactions of {} simulated shoppers", shoppers.len());
    }
    if a.save_only {
        return Ok(());
    }
    if let Some(path) = &a.export_shoppers {
        let out = shoppers_json(&d, &personas, &facets, &shoppers, a.relevant_at);
        std::fs::write(path, serde_json::to_string_pretty(&out)?)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        if !cli.json {
            eprintln!("wrote {} shoppers to {}", shoppers.len(), path.display());
        }
        return Ok(());
    }

    // vectors (computed when missing: cached by content hash)
    let mut embed = |model: &str, images: bool| -> anyhow::Result<()> {
        let mut args = EmbedArgs::text_only(model, Some(a.dataset.clone()));
        (args.no_text, args.no_images) = (images, !images);
        if images {
            args.batch = 64;
        }
        embed_store(&mut store, &args, cli.json).map(|_| ())
    };
    // `--text clip/text`: the model before the slash, the vectors by their full id
    embed(a.text.split('/').next().unwrap_or(&a.text), false)?;
    embed("texture", true)?;
    let with_image = a.image != "none";
    if with_image {
        embed(&a.image, true)?;
    }
    let text = load_one(&store, &a.text, &a.dataset, &d)?;
    let texture = load_one(&store, "texture/image", &a.dataset, &d)?;
    let single = |name: &str, v: &warmstart_core::ItemVectors| VectorSet {
        name: name.to_string(),
        variants: vec![(name.to_string(), v.clone())],
    };
    let mut sets = vec![single("text", &text), single("texture", &texture)];
    let look = if with_image {
        let image = load_one(&store, &format!("{}/image", a.image), &a.dataset, &d)?;
        sets.push(single("image", &image));
        let look = fuse(&image, &texture, 0.5)?.vectors;
        sets.push(single("image+texture", &look));
        look
    } else {
        texture.clone()
    };
    let weights = [0.3f32, 0.5, 0.7];
    let mut fused = Vec::new();
    for w in weights {
        fused.push((format!("text weight {w}"), fuse(&text, &look, w)?.vectors));
    }
    let fused_name = if with_image { "fused (text+image+texture)" } else { "fused (text+texture)" };
    sets.push(VectorSet { name: fused_name.into(), variants: fused });

    let ks = parse_ks(&a.k)?;
    let bench =
        PersonaBenchOptions { folds: a.folds, ks: ks.clone(), relevant_at: a.relevant_at, ..Default::default() };
    let make = || -> warmstart_eval::Result<Box<dyn warmstart_models::Fit>> {
        Ok(warmstart_models::by_name("content", 0, a.seed)?)
    };
    let started = std::time::Instant::now();
    let report = persona_benchmark(&d, &personas, &facets, &shoppers, &sets, &make, &bench)?;
    let kmax = ks.iter().max().copied().unwrap_or(10);
    let metrics = vec![format!("ndcg@{kmax}"), format!("precision@{kmax}")];
    let table = report.markdown(&metrics);
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let dir = a.runs_dir.join(format!("{stamp}-personas-{}", a.dataset));
    std::fs::create_dir_all(&dir)?;
    let out = serde_json::json!({
        "dataset": a.dataset,
        "personas": personas,
        "shoppers": shoppers.len(),
        "stored_interactions": stored,
        "shopper_options": shopper_opts,
        "options": bench,
        "report": report,
        "seconds": started.elapsed().as_secs_f64(),
        "run_dir": dir,
    });
    std::fs::write(dir.join("results.json"), serde_json::to_string_pretty(&out)?)?;
    std::fs::write(dir.join("table.md"), &table)?;
    if cli.json {
        println!("{out}");
    } else {
        println!(
            "{} shoppers ({} per persona), {} folds; relevant: utility ≥ {}; mean ± std over folds\n",
            shoppers.len(),
            a.per_persona,
            a.folds,
            a.relevant_at
        );
        println!("{table}");
        for (set, picks) in &report.picked {
            if sets.iter().any(|s| s.name == *set && s.variants.len() > 1) {
                println!("{set}: picked per fold on the training shoppers: {}", picks.join(", "));
            }
        }
        println!("run: {}", dir.display());
    }
    Ok(())
}
