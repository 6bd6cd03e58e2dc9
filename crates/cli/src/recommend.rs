//! `warmstart recommend`: fit a model on a dataset and rank a site's catalog for one user
//! from their history on the other sites, with explanations where the model has them.

use anyhow::Context;
use clap::Args;
use warmstart_models::TrainData;
use warmstart_store::Store;

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
    #[arg(long)]
    pub user: String,
    /// Model: random, pop, itemknn, als, bpr.
    #[arg(long, default_value = "itemknn")]
    pub model: String,
    /// How many items.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Also use the user's history on the target site (otherwise only other sites: the cold start).
    #[arg(long)]
    pub include_target_history: bool,
}

/// `warmstart recommend`.
pub fn run(cli: &Cli, a: &RecommendArgs) -> anyhow::Result<()> {
    let store = Store::open(&cli.store_path())?;
    let d = store.load_dataset(Some(&a.dataset))?;
    let site = d.site_by_key(&a.site)?;
    let user =
        d.users.iter().position(|u| *u == a.user).with_context(|| format!("no user `{}` in {}", a.user, a.dataset))?
            as u32;
    let range = d.sites[site as usize].items.clone();
    let mut history: Vec<(u32, f32)> = d
        .interactions
        .iter()
        .filter(|r| r.user == user && (a.include_target_history || !range.contains(&r.item)))
        .map(|r| (r.item, 1.0))
        .collect();
    history.sort_unstable_by_key(|h| h.0);
    history.dedup_by_key(|h| h.0);
    // Train without this user's target-site interactions, as if they were new there.
    let train = d
        .matrix(|r| a.include_target_history || !(r.user == user && range.contains(&r.item)), |_| 1.0)
        .map_values(|_| 1.0);
    let mut model = warmstart_models::by_name(&a.model, 0, 42)?;
    let vectors = if warmstart_models::needs_vectors(&a.model) {
        Some(crate::eval::load_vectors(&store, &a.dataset, &d)?)
    } else {
        None
    };
    model.fit(&TrainData { dataset: &d, matrix: &train, item_vectors: vectors.as_ref() })?;
    let owned: Vec<u32> = history.iter().map(|h| h.0).filter(|i| range.contains(i)).collect();
    let top = model.recommend(&history, range, a.k, &owned)?;
    let items: Vec<u32> = top.iter().map(|t| t.0).collect();
    let why = model.explain(&history, &items).unwrap_or_default();
    let title = |i: u32| {
        let p = &d.products[i as usize];
        if p.title.is_empty() {
            format!("{} #{}", d.sites[p.site as usize].key, p.external_id)
        } else {
            p.title.clone()
        }
    };
    if cli.json {
        let recs: Vec<serde_json::Value> = top
            .iter()
            .map(|&(i, s)| {
                let because = why.iter().find(|w| w.item == i);
                serde_json::json!({
                    "product": d.products[i as usize].external_id, "title": title(i), "score": s,
                    "because_of": because.map(|w| d.products[w.because_of as usize].external_id.clone()),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "user": a.user, "site": a.site, "model": model.name(), "history": history.len(), "recommendations": recs })
            )?
        );
    } else {
        println!("{} on {} from {} history items ({}):", a.user, a.site, history.len(), model.name());
        for (n, &(i, s)) in top.iter().enumerate() {
            println!("{:>3}. {} (score {:.4})", n + 1, title(i), s);
            if let Some(w) = why.iter().find(|w| w.item == i) {
                println!("       because you engaged with: {}", title(w.because_of));
            }
        }
    }
    Ok(())
}
