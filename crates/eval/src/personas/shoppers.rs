//! Simulated shoppers drawn from personas: a jittered persona, a target shop, and a history
//! on the other shops sampled by utility with noise.

use std::ops::Range;

use serde::Serialize;
use warmstart_core::{Dataset, EventTime, InteractionKind, InteractionRow, ItemId, Rng, SiteId, Split};

use super::{ItemFacets, Persona};
use crate::{Error, Result};

/// How shoppers are simulated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShopperOptions {
    /// Shoppers per persona.
    pub per_persona: usize,
    /// History length on the other shops is drawn uniformly from this range.
    pub history: Range<usize>,
    /// Interactions on the target shop (the training users' only; test users' are hidden).
    pub target_history: usize,
    /// Share of history items drawn uniformly instead of by preference.
    pub noise: f32,
    /// Softmax sharpness over utilities (higher: closer to the persona).
    pub sharpness: f32,
    /// Log-normal jitter of each shopper's preference weights.
    pub jitter: f32,
    /// Seed.
    pub seed: u64,
}

impl Default for ShopperOptions {
    fn default() -> Self {
        ShopperOptions {
            per_persona: 40,
            history: 6..16,
            target_history: 8,
            noise: 0.15,
            sharpness: 10.0,
            jitter: 0.3,
            seed: 42,
        }
    }
}

/// One simulated shopper.
#[derive(Debug, Clone, PartialEq)]
pub struct Shopper {
    /// Index of the persona.
    pub persona: usize,
    /// Shop whose catalog is ranked.
    pub target: SiteId,
    /// Interactions on the other shops (user id = shopper index).
    pub history: Vec<InteractionRow>,
    /// Interactions on the target shop (used only when the shopper trains).
    pub target_history: Vec<InteractionRow>,
}

/// The shoppers as JSON for replaying elsewhere (`warmstart personas --export-shoppers`; the
/// browser extension's tests): each one's persona, target shop, history on the other shops by
/// site, product id and kind, and the ids of the target shop's items relevant to the persona.
pub fn shoppers_json(
    d: &Dataset,
    personas: &[Persona],
    facets: &[ItemFacets],
    shoppers: &[Shopper],
    relevant_at: f32,
) -> serde_json::Value {
    let list: Vec<serde_json::Value> = shoppers
        .iter()
        .map(|s| {
            let persona = &personas[s.persona];
            let target = &d.sites[s.target as usize];
            let history: Vec<serde_json::Value> = s
                .history
                .iter()
                .map(|r| {
                    let p = &d.products[r.item as usize];
                    serde_json::json!({"site": d.sites[p.site as usize].key, "id": p.external_id, "kind": r.kind.as_str()})
                })
                .collect();
            let relevant: Vec<&str> = target
                .items
                .clone()
                .filter(|&i| persona.utility(&facets[i as usize]) >= relevant_at)
                .map(|i| d.products[i as usize].external_id.as_str())
                .collect();
            serde_json::json!({"persona": persona.name, "target": target.key, "history": history, "relevant": relevant})
        })
        .collect();
    serde_json::json!({"relevant_at": relevant_at, "shoppers": list})
}

/// Draws shoppers: persona `p`'s shopper `j` targets shop `(p + j) mod shops` and gets a
/// history on every other shop of `d`. Deterministic for a seed.
pub fn generate_shoppers(
    personas: &[Persona],
    d: &Dataset,
    facets: &[ItemFacets],
    opts: &ShopperOptions,
) -> Result<Vec<Shopper>> {
    if d.sites.len() < 2 {
        return Err(Error::Config(format!("personas need at least two shops, the dataset has {}", d.sites.len())));
    }
    if facets.len() != d.n_items() {
        return Err(Error::Config(format!("{} item facets for {} items", facets.len(), d.n_items())));
    }
    if opts.history.is_empty() || opts.per_persona == 0 {
        return Err(Error::Config("shoppers need a non-empty history range and at least one per persona".into()));
    }
    // per target shop: the items of every other shop, and its own
    let pools: Vec<(Vec<ItemId>, Vec<ItemId>)> = d
        .sites
        .iter()
        .enumerate()
        .map(|(t, site)| {
            let other =
                d.sites.iter().enumerate().filter(|(s, _)| *s != t).flat_map(|(_, s)| s.items.clone()).collect();
            (other, site.items.clone().collect())
        })
        .collect();
    let mut rng = Rng::new(opts.seed);
    let mut out = Vec::new();
    for (p, persona) in personas.iter().enumerate() {
        for j in 0..opts.per_persona {
            let user = out.len() as u32;
            let target = ((p + j) % d.sites.len()) as SiteId;
            let prefs = persona.jittered(&mut rng, opts.jitter);
            let weight: Vec<f64> = facets
                .iter()
                .map(|f| (opts.sharpness as f64 * (persona.utility_with(&prefs, f) as f64 - 1.0)).exp())
                .collect();
            let len = opts.history.start + rng.below(opts.history.len());
            let (other, own) = &pools[target as usize];
            let history = draw(&mut rng, other, &weight, len, opts.noise, user, 0);
            let target_history = draw(&mut rng, own, &weight, opts.target_history, opts.noise, user, len);
            out.push(Shopper { persona: p, target, history, target_history });
        }
    }
    Ok(out)
}

/// `len` distinct items of `pool`: by `weight` (or uniformly with probability `noise`, as
/// views); preference picks are purchases, carts or wish-list adds.
fn draw(
    rng: &mut Rng,
    pool: &[ItemId],
    weight: &[f64],
    len: usize,
    noise: f32,
    user: u32,
    t0: usize,
) -> Vec<InteractionRow> {
    let mut cum = Vec::with_capacity(pool.len());
    let mut acc = 0f64;
    for &i in pool {
        acc += weight[i as usize];
        cum.push(acc);
    }
    let mut seen = std::collections::HashSet::new();
    let mut rows = Vec::with_capacity(len);
    let mut tries = 0;
    while rows.len() < len.min(pool.len()) && tries < len * 50 {
        tries += 1;
        let noisy = rng.unit_f32() < noise;
        let item = if noisy || acc <= 0.0 {
            pool[rng.below(pool.len())]
        } else {
            let x = rng.unit_f32() as f64 * acc;
            pool[cum.partition_point(|&c| c <= x).min(pool.len() - 1)]
        };
        if !seen.insert(item) {
            continue;
        }
        let kind = if noisy {
            InteractionKind::View
        } else {
            [InteractionKind::Purchase, InteractionKind::Purchase, InteractionKind::Cart, InteractionKind::Wishlist]
                [rng.below(4)]
        };
        rows.push(InteractionRow {
            user,
            item,
            kind,
            value: None,
            time: Some(EventTime::Sequence((t0 + rows.len()) as i64)),
            split: Split::Train,
        });
    }
    rows
}
