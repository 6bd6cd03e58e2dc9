//! `warmstart recommend`: rank a site's catalog for one stored user from their history on the
//! other sites with a trained artifact (through the same application layer as `warmstart
//! serve`; nothing is refitted), or rank it zero-shot for a free-text query through the text tower of the vectors' model.
//! Price band and category filters apply to both.

use anyhow::Context;
use clap::Args;
use warmstart_app::query::{stored_history, zero_shot};
use warmstart_app::request::{Filters, RecommendRequest};
use warmstart_app::{Service, ServiceOptions};
use warmstart_core::{Dataset, ItemId};
use warmstart_store::Store;

use crate::vectors::VectorSpec;
use crate::Cli;

/// Arguments of `warmstart recommend`.
#[derive(Debug, Clone, Args)]
pub struct RecommendArgs {
    /// Dataset group in the store.
    #[arg(long)]
    pub dataset: String,
    /// Site whose catalog is ranked.
    #[arg(long)]
    pub site: String,
    /// User key (as stored, e.g. `amazon:A7PVZNHRTX1J7`).
    #[arg(long, required_unless_present = "query")]
    pub user: Option<String>,
    /// Zero-shot: rank the catalog by similarity to this text (no user needed). The text
    /// tower of the `--vectors` model encodes it (clip/image vectors: CLIP's text tower).
    #[arg(long, conflicts_with = "user")]
    pub query: Option<String>,
    /// A trained model (`warmstart train MODEL`); default: the dataset's default artifact.
    #[arg(long)]
    pub model: Option<String>,
    /// Diversity 0–1 (maximal marginal relevance).
    #[arg(long)]
    pub diversity: Option<f32>,
    /// Content vectors (a stored model or TEXT+IMAGE[:w]).
    #[arg(long, default_value = "minilm")]
    pub vectors: VectorSpec,
    /// How many items.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Also use the user's history on the target site (otherwise only other sites: the cold start).
    #[arg(long)]
    pub include_target_history: bool,
    /// Only items at or above this price (USD); items without a price are dropped.
    #[arg(long)]
    pub min_price: Option<f64>,
    /// Only items at or below this price (USD); items without a price are dropped.
    #[arg(long)]
    pub max_price: Option<f64>,
    /// Only items whose category path contains this level (case-insensitive).
    #[arg(long)]
    pub category: Option<String>,
    /// Half-life of the history recency decay (days, or positions for sequences).
    #[arg(long)]
    pub half_life: Option<f64>,
}

/// Items of `range` the filters remove (the scoring core's filter, as the service applies it).
fn filtered_out(d: &Dataset, range: std::ops::Range<ItemId>, a: &RecommendArgs) -> anyhow::Result<Vec<ItemId>> {
    let f = warmstart_scoring::ItemFilter::builder()
        .min_price(a.min_price)
        .max_price(a.max_price)
        .category(a.category.as_deref())
        .build()?;
    Ok(range.filter(|&i| !f.allows(d.products[i as usize].price_usd, &d.products[i as usize].category)).collect())
}

/// `warmstart recommend`.
pub fn run(cli: &Cli, a: &RecommendArgs) -> anyhow::Result<()> {
    anyhow::ensure!(a.k > 0, "--k must be positive");
    let store = Store::open(&cli.store_path())?;
    let d = store.load_dataset(Some(&a.dataset))?;
    let site = d.site_by_key(&a.site)?;
    let range = d.sites[site as usize].items.clone();
    let exclude = filtered_out(&d, range.clone(), a)?;
    anyhow::ensure!(exclude.len() < range.len(), "no item of {} passes the price and category filters", a.site);
    let title = |i: u32| {
        let p = &d.products[i as usize];
        if p.title.is_empty() {
            format!("{} #{}", d.sites[p.site as usize].key, p.external_id)
        } else {
            p.title.clone()
        }
    };
    if let Some(q) = &a.query {
        let home = warmstart_store::home_dir();
        let top = zero_shot(&store, &a.dataset, &d, &a.vectors, &home, q, range, &exclude, a.k)?;
        if cli.json {
            let recs: Vec<serde_json::Value> = top
                .iter()
                .map(|&(i, s)| serde_json::json!({"product": d.products[i as usize].external_id, "title": title(i), "score": s}))
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &serde_json::json!({"query": q, "site": a.site, "recommendations": recs})
                )?
            );
        } else {
            println!("\"{q}\" on {}:", a.site);
            for (n, &(i, s)) in top.iter().enumerate() {
                println!("{:>3}. {} (cosine {:.4})", n + 1, title(i), s);
            }
        }
        return Ok(());
    }
    let user_key = a.user.as_deref().context("--user or --query is needed")?;
    // the user's history as a client would send it: known products by site and id
    let skip = (!a.include_target_history).then(|| range.clone());
    let history = stored_history(&d, user_key, skip).with_context(|| format!("in {}", a.dataset))?;
    anyhow::ensure!(!history.is_empty(), "{user_key} has no history outside {}", a.site);
    let opts = ServiceOptions { datasets: vec![a.dataset.clone()], ..Default::default() };
    let (service, _) = Service::open(&cli.store_path(), opts)?;
    let req = RecommendRequest {
        site: a.site.clone(),
        history,
        k: Some(a.k),
        model: a.model.clone(),
        filters: Filters { min_price: a.min_price, max_price: a.max_price, category: a.category.clone() },
        diversity: a.diversity,
        exact: true,
        ..Default::default()
    };
    let r = service.recommend(&req)?;
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "{} on {} from {} history items ({} v{}):",
            user_key,
            a.site,
            r.history.known + r.history.embedded,
            r.model,
            r.model_version
        );
        for (n, it) in r.items.iter().enumerate() {
            println!("{:>3}. {} (score {:.4})", n + 1, it.title, it.score);
            if let Some(e) = &it.explanation {
                println!("       {}", e.text);
            }
        }
    }
    Ok(())
}
