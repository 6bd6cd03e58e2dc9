//! Named personas and the simulated shoppers drawn from them.
//!
//! A persona states preferences over catalog facets (gender, category, colour, usage,
//! season, pattern) with weights in `[0, 1]`; an item's utility for the persona is the
//! importance-weighted mean over the persona's facets of the weight of the item's value.
//! Each simulated shopper jitters the persona's weights, picks a target shop, and gets a
//! history on the other shops sampled by utility (softmax with a sharpness) plus uniform
//! noise. The benchmark hides nothing but the target shop: models rank its catalog from the
//! other-shop history, and items whose utility for the persona reaches `relevant_at` are
//! the relevant ones. Five-fold cross-validation over shoppers (the shoppers outside the
//! fold are the training users, and pick among variants of a vector set, e.g. fusion
//! weights) gives a mean and spread per persona.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use serde::{Deserialize, Serialize};
use warmstart_core::{
    CsrMatrix, Dataset, EventTime, HistoryWeights, InteractionKind, InteractionRow, ItemId, ItemVectors, Rng, SiteId,
    Split,
};
use warmstart_models::{Fit, Recommender, TrainData};

use crate::metrics::{case_metrics, relevant_ranks};
use crate::{Error, Result};

/// The facets a persona may state preferences on.
pub const FACETS: &[&str] = &["gender", "category", "colour", "usage", "season", "pattern"];

/// Title words that mark a pattern (a facet value the catalog has no column for).
pub const PATTERNS: &[(&str, &[&str])] = &[
    ("striped", &["stripe", "stripes", "striped"]),
    ("checked", &["check", "checks", "checked", "checkered", "plaid"]),
    ("printed", &["print", "printed", "graphic"]),
    ("floral", &["floral", "flower", "flowers"]),
    ("solid", &["solid", "plain"]),
];

/// The personas file shipped with warmstart (`data/personas.toml`).
pub const BUILTIN_PERSONAS: &str = include_str!("../../../data/personas.toml");

/// One persona: stated preferences.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Persona {
    /// Short name.
    pub name: String,
    /// Who this is.
    #[serde(default)]
    pub description: String,
    /// Whether the preferences are mostly visual (colour, pattern).
    #[serde(default)]
    pub visual: bool,
    /// Importance of each facet (default 1).
    #[serde(default)]
    pub importance: BTreeMap<String, f32>,
    /// Facet → value → weight in `[0, 1]`.
    pub facets: BTreeMap<String, BTreeMap<String, f32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PersonaFile {
    persona: Vec<Persona>,
}

/// Parses and checks a personas file (`source` names it in errors).
pub fn parse_personas(text: &str, source: &str) -> Result<Vec<Persona>> {
    let bad = |m: String| Error::Config(format!("{source}: {m}"));
    let file: PersonaFile = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
    if file.persona.is_empty() {
        return Err(bad("no [[persona]] entries".into()));
    }
    let mut names = std::collections::BTreeSet::new();
    for p in &file.persona {
        if !names.insert(p.name.clone()) {
            return Err(bad(format!("persona `{}` appears twice", p.name)));
        }
        if p.facets.is_empty() {
            return Err(bad(format!("persona `{}` states no preferences", p.name)));
        }
        for (facet, values) in &p.facets {
            if !FACETS.contains(&facet.as_str()) {
                return Err(bad(format!(
                    "persona `{}`: unknown facet `{facet}` (known: {})",
                    p.name,
                    FACETS.join(", ")
                )));
            }
            for (v, w) in values {
                if !(0.0..=1.0).contains(w) {
                    return Err(bad(format!("persona `{}`: {facet}.{v} = {w} is outside [0, 1]", p.name)));
                }
            }
        }
        for (facet, w) in &p.importance {
            if !(p.facets.contains_key(facet) && *w > 0.0 && w.is_finite()) {
                return Err(bad(format!(
                    "persona `{}`: importance of `{facet}` must be positive and name a stated facet",
                    p.name
                )));
            }
        }
    }
    Ok(file.persona)
}

/// Reads a personas file.
pub fn load_personas(path: &Path) -> Result<Vec<Persona>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io { path: path.into(), source: e })?;
    parse_personas(&text, &path.display().to_string())
}

/// The facet values of one product.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ItemFacets {
    /// Values per facet (category holds the full path and its first level).
    pub values: BTreeMap<&'static str, Vec<String>>,
}

impl ItemFacets {
    /// Facets of a product from its category path, title and attributes (`gender`,
    /// `baseColour`/`colour`, `usage`, `season`); patterns come from title words.
    pub fn of(category: &[String], title: &str, attributes: &[(String, String)]) -> ItemFacets {
        let mut values: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
        if !category.is_empty() {
            values.insert("category", vec![category.join(" > "), category[0].clone()]);
        }
        for (k, v) in attributes {
            let facet = match k.as_str() {
                "gender" => "gender",
                "baseColour" | "colour" | "color" => "colour",
                "usage" => "usage",
                "season" => "season",
                _ => continue,
            };
            if !v.trim().is_empty() {
                values.entry(facet).or_default().push(v.trim().to_string());
            }
        }
        let words: Vec<String> = title.split(|c: char| !c.is_alphanumeric()).map(str::to_lowercase).collect();
        let patterns: Vec<String> = PATTERNS
            .iter()
            .filter(|(_, marks)| words.iter().any(|w| marks.contains(&w.as_str())))
            .map(|(p, _)| p.to_string())
            .collect();
        if !patterns.is_empty() {
            values.insert("pattern", patterns);
        }
        ItemFacets { values }
    }
}

impl Persona {
    /// Utility of an item in `[0, 1]` under `facets` (the persona's own, or a jittered copy).
    fn utility_with(&self, facets: &BTreeMap<String, BTreeMap<String, f32>>, item: &ItemFacets) -> f32 {
        let (mut sum, mut total) = (0f32, 0f32);
        for (facet, prefs) in facets {
            let imp = self.importance.get(facet).copied().unwrap_or(1.0);
            total += imp;
            let w = item
                .values
                .get(facet.as_str())
                .map(|vs| vs.iter().filter_map(|v| prefs.get(v)).copied().fold(0f32, f32::max))
                .unwrap_or(0.0);
            sum += imp * w;
        }
        if total > 0.0 {
            sum / total
        } else {
            0.0
        }
    }

    /// Utility of an item for this persona.
    pub fn utility(&self, item: &ItemFacets) -> f32 {
        self.utility_with(&self.facets, item)
    }

    fn jittered(&self, rng: &mut Rng, jitter: f32) -> BTreeMap<String, BTreeMap<String, f32>> {
        self.facets
            .iter()
            .map(|(f, vs)| {
                let vs =
                    vs.iter().map(|(v, w)| (v.clone(), (w * (jitter * rng.normal_f32()).exp()).min(1.0))).collect();
                (f.clone(), vs)
            })
            .collect()
    }
}

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

/// A named vector set; with several variants (e.g. fusion weights) each fold's training
/// shoppers pick the best by NDCG@10.
#[derive(Debug, Clone)]
pub struct VectorSet {
    /// Name in the report (e.g. `text`, `fused`).
    pub name: String,
    /// `(label, vectors)` candidates.
    pub variants: Vec<(String, ItemVectors)>,
}

/// Settings of the persona benchmark.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PersonaBenchOptions {
    /// Cross-validation folds over shoppers.
    pub folds: usize,
    /// Cut-offs.
    pub ks: Vec<usize>,
    /// Utility from which a target-shop item counts as relevant.
    pub relevant_at: f32,
    /// How histories are weighted.
    #[serde(skip)]
    pub history: HistoryWeights,
}

impl Default for PersonaBenchOptions {
    fn default() -> Self {
        PersonaBenchOptions { folds: 5, ks: vec![5, 10], relevant_at: 0.8, history: HistoryWeights::default() }
    }
}

/// Mean and standard deviation over folds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FoldStat {
    /// Mean of the fold means.
    pub mean: f64,
    /// Sample standard deviation of the fold means.
    pub std: f64,
}

impl FoldStat {
    fn of(xs: &[f64]) -> FoldStat {
        let n = xs.len().max(1) as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = if xs.len() > 1 { xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
        FoldStat { mean, std: var.sqrt() }
    }
}

/// One row of the persona table.
#[derive(Debug, Clone, Serialize)]
pub struct PersonaRow {
    /// Persona (or `all`).
    pub persona: String,
    /// Whether its preferences are visual.
    pub visual: bool,
    /// Vector set.
    pub vectors: String,
    /// Metric → mean and spread over folds.
    pub metrics: BTreeMap<String, FoldStat>,
    /// Shoppers evaluated (over all folds).
    pub shoppers: usize,
}

/// The benchmark's result.
#[derive(Debug, Clone, Serialize)]
pub struct PersonaReport {
    /// Rows per persona and vector set, then `all`.
    pub rows: Vec<PersonaRow>,
    /// Variant picked in each fold, per vector set.
    pub picked: BTreeMap<String, Vec<String>>,
    /// Shoppers skipped because their target shop had no relevant item.
    pub skipped: usize,
}

/// Runs the persona benchmark: for each fold and vector set, `make_model()` is fitted on the
/// training shoppers' interactions with each variant's vectors; the variant best on the
/// training shoppers ranks the fold's shoppers' target shops from their other-shop history.
pub fn persona_benchmark(
    d: &Dataset,
    personas: &[Persona],
    facets: &[ItemFacets],
    shoppers: &[Shopper],
    sets: &[VectorSet],
    make_model: &dyn Fn() -> Result<Box<dyn Fit>>,
    opts: &PersonaBenchOptions,
) -> Result<PersonaReport> {
    if opts.folds < 2 || shoppers.len() < opts.folds {
        return Err(Error::Config(format!("{} shoppers cannot make {} folds", shoppers.len(), opts.folds)));
    }
    // relevant target-shop items per persona and shop (positions in the shop's range)
    let relevant: Vec<Vec<Vec<usize>>> = personas
        .iter()
        .map(|p| {
            d.sites
                .iter()
                .map(|s| {
                    s.items
                        .clone()
                        .filter(|&i| p.utility(&facets[i as usize]) >= opts.relevant_at)
                        .map(|i| (i - s.items.start) as usize)
                        .collect()
                })
                .collect()
        })
        .collect();
    let key = |m: &str, k: usize| format!("{m}@{k}");
    let ks = &opts.ks;
    let k_pick = *ks.iter().max().unwrap_or(&10);
    // per (set, persona): per-fold means of each metric; the same for all personas
    let mut per: BTreeMap<(usize, usize), BTreeMap<String, Vec<f64>>> = BTreeMap::new();
    let mut all: BTreeMap<usize, BTreeMap<String, Vec<f64>>> = BTreeMap::new();
    let mut counts: BTreeMap<(usize, usize), usize> = BTreeMap::new();
    let mut picked: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut skipped = 0usize;
    let evaluate = |model: &dyn Recommender, users: &[usize]| -> Result<Vec<(usize, BTreeMap<String, f64>)>> {
        let mut out = Vec::new();
        for &u in users {
            let s = &shoppers[u];
            let rel = &relevant[s.persona][s.target as usize];
            if rel.is_empty() {
                continue;
            }
            let range = d.sites[s.target as usize].items.clone();
            let mut scores = vec![0f32; range.len()];
            model.score(&opts.history.weigh(&s.history), range, &mut scores).map_err(Error::Model)?;
            let ranks = relevant_ranks(&scores, rel);
            out.push((u, case_metrics(&ranks, scores.len(), ks)));
        }
        Ok(out)
    };
    for fold in 0..opts.folds {
        let test: Vec<usize> = (0..shoppers.len()).filter(|u| u % opts.folds == fold).collect();
        let train: Vec<usize> = (0..shoppers.len()).filter(|u| u % opts.folds != fold).collect();
        let trip: Vec<(u32, u32, f32)> = train
            .iter()
            .flat_map(|&u| shoppers[u].history.iter().chain(&shoppers[u].target_history))
            .map(|r| (r.user, r.item, opts.history.weight(r, 0.0)))
            .collect();
        let matrix = CsrMatrix::from_triplets(shoppers.len(), d.n_items(), &trip);
        for (si, set) in sets.iter().enumerate() {
            let mut best: Option<(f64, Box<dyn Recommender>, String)> = None;
            for (label, vectors) in &set.variants {
                let model = make_model()?
                    .fit(&TrainData { dataset: d, matrix: &matrix, item_vectors: Some(vectors) })
                    .map_err(Error::Model)?;
                let score = if set.variants.len() == 1 {
                    0.0
                } else {
                    let res = evaluate(model.as_ref(), &train)?;
                    res.iter().map(|r| r.1[&key("ndcg", k_pick)]).sum::<f64>() / res.len().max(1) as f64
                };
                if best.as_ref().is_none_or(|b| score > b.0) {
                    best = Some((score, model, label.clone()));
                }
            }
            let Some((_, model, label)) = best else { continue };
            picked.entry(set.name.clone()).or_default().push(label);
            let res = evaluate(model.as_ref(), &test)?;
            if si == 0 {
                skipped += test.len() - res.len();
            }
            let mut sums: BTreeMap<usize, BTreeMap<String, (f64, usize)>> = BTreeMap::new();
            for (u, m) in &res {
                for (name, v) in m {
                    for p in [shoppers[*u].persona, usize::MAX] {
                        let e = sums.entry(p).or_default().entry(name.clone()).or_insert((0.0, 0));
                        e.0 += v;
                        e.1 += 1;
                    }
                }
                *counts.entry((si, shoppers[*u].persona)).or_default() += 1;
                *counts.entry((si, usize::MAX)).or_default() += 1;
            }
            for (p, m) in sums {
                let target = if p == usize::MAX { all.entry(si).or_default() } else { per.entry((si, p)).or_default() };
                for (name, (s, n)) in m {
                    target.entry(name).or_default().push(s / n as f64);
                }
            }
        }
    }
    let keep = |m: &BTreeMap<String, Vec<f64>>| -> BTreeMap<String, FoldStat> {
        m.iter()
            .filter(|(name, _)| ks.iter().any(|&k| **name == key("precision", k) || **name == key("ndcg", k)))
            .map(|(n, xs)| (n.clone(), FoldStat::of(xs)))
            .collect()
    };
    let mut rows = Vec::new();
    for (p, persona) in personas.iter().enumerate() {
        for (si, set) in sets.iter().enumerate() {
            if let Some(m) = per.get(&(si, p)) {
                rows.push(PersonaRow {
                    persona: persona.name.clone(),
                    visual: persona.visual,
                    vectors: set.name.clone(),
                    metrics: keep(m),
                    shoppers: counts.get(&(si, p)).copied().unwrap_or(0),
                });
            }
        }
    }
    for (si, set) in sets.iter().enumerate() {
        if let Some(m) = all.get(&si) {
            rows.push(PersonaRow {
                persona: "all".into(),
                visual: false,
                vectors: set.name.clone(),
                metrics: keep(m),
                shoppers: counts.get(&(si, usize::MAX)).copied().unwrap_or(0),
            });
        }
    }
    Ok(PersonaReport { rows, picked, skipped })
}

impl PersonaReport {
    /// A Markdown table: one row per persona, columns per vector set and metric.
    pub fn markdown(&self, metrics: &[String]) -> String {
        let mut sets: Vec<&str> = Vec::new();
        for r in &self.rows {
            if !sets.contains(&r.vectors.as_str()) {
                sets.push(&r.vectors);
            }
        }
        let mut out = String::from("| persona | visual |");
        for m in metrics {
            for s in &sets {
                out.push_str(&format!(" {m} {s} |"));
            }
        }
        out.push_str("\n|---|---|");
        for _ in 0..metrics.len() * sets.len() {
            out.push_str("---|");
        }
        out.push('\n');
        let mut personas: Vec<&str> = Vec::new();
        for r in &self.rows {
            if !personas.contains(&r.persona.as_str()) {
                personas.push(&r.persona);
            }
        }
        for p in personas {
            let rows: Vec<&PersonaRow> = self.rows.iter().filter(|r| r.persona == p).collect();
            let visual = rows.first().map(|r| r.visual).unwrap_or(false);
            out.push_str(&format!("| {p} | {} |", if visual { "yes" } else { "" }));
            for m in metrics {
                for s in &sets {
                    match rows.iter().find(|r| r.vectors == *s).and_then(|r| r.metrics.get(m)) {
                        Some(v) => out.push_str(&format!(" {:.3} ± {:.3} |", v.mean, v.std)),
                        None => out.push_str(" – |"),
                    }
                }
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warmstart_core::{DatasetBuilder, ProductMeta};

    const COLOURS: [&str; 3] = ["Red", "Black", "Blue"];
    const CATS: [&str; 2] = ["Topwear", "Shoes"];

    /// Three shops of 24 items: every colour × category × gender, four times over.
    fn catalog() -> (Dataset, Vec<ItemFacets>) {
        let mut b = DatasetBuilder::default();
        let mut facets = Vec::new();
        for shop in 0..3 {
            let s = b.push_site(&format!("shop-{shop}"), "shop", "test");
            for i in 0..24 {
                let (colour, cat, gender) = (COLOURS[i % 3], CATS[(i / 3) % 2], ["Men", "Women"][(i / 6) % 2]);
                let title = format!("{gender} {colour} {} {cat}", if i % 4 == 0 { "Striped" } else { "Plain" });
                b.push_product(ProductMeta {
                    site: s,
                    external_id: format!("{shop}-{i}"),
                    title: title.clone(),
                    brand: None,
                    category: vec!["Apparel".into(), cat.into()],
                    price_usd: None,
                    image: None,
                });
                let attrs =
                    vec![("gender".to_string(), gender.to_string()), ("baseColour".to_string(), colour.to_string())];
                facets.push(ItemFacets::of(&["Apparel".into(), cat.into()], &title, &attrs));
            }
        }
        (b.finish().unwrap(), facets)
    }

    fn personas() -> Vec<Persona> {
        parse_personas(
            r#"
[[persona]]
name = "red"
visual = true
importance = { colour = 2.0 }
facets.colour = { Red = 1.0 }
facets.gender = { Women = 1.0 }

[[persona]]
name = "shoes"
facets.category = { "Apparel > Shoes" = 1.0 }
"#,
            "test.toml",
        )
        .unwrap()
    }

    #[test]
    fn builtin_personas_parse_and_bad_files_name_the_problem() {
        let builtin = parse_personas(BUILTIN_PERSONAS, "personas.toml").unwrap();
        assert!(builtin.len() >= 8);
        assert!(builtin.iter().filter(|p| p.visual).count() >= 4);
        let err = |text: &str| parse_personas(text, "p.toml").unwrap_err().to_string();
        assert!(err("[[persona]]\nname = \"x\"\nfacets.mood = { happy = 1.0 }").contains("unknown facet `mood`"));
        assert!(err("[[persona]]\nname = \"x\"\nfacets.colour = { Red = 2.0 }").contains("colour.Red = 2"));
        assert!(err("[[persona]]\nname = \"x\"\nfacets.colour = { Red = 1.0 }\n[[persona]]\nname = \"x\"\nfacets.colour = { Red = 1.0 }")
            .contains("twice"));
        assert!(err("[[persona]]\nname = \"x\"\nimportance = { season = 1.0 }\nfacets.colour = { Red = 1.0 }")
            .contains("importance"));
        assert!(err("persona = 3").starts_with("p.toml"));
    }

    #[test]
    fn facets_and_utility_by_hand() {
        let f = ItemFacets::of(
            &["Apparel".into(), "Topwear".into()],
            "Turtle Check Men Navy Blue Shirt",
            &[("gender".into(), "Men".into()), ("baseColour".into(), "Navy Blue".into())],
        );
        assert_eq!(f.values["pattern"], vec!["checked"]);
        assert_eq!(f.values["category"], vec!["Apparel > Topwear", "Apparel"]);
        let p = &personas()[0];
        // colour (importance 2) misses, gender misses: 0; a red women's item: 1; red men's: 2/3
        assert_eq!(p.utility(&f), 0.0);
        let red_w = ItemFacets::of(&[], "x", &[("gender".into(), "Women".into()), ("baseColour".into(), "Red".into())]);
        let red_m = ItemFacets::of(&[], "x", &[("gender".into(), "Men".into()), ("baseColour".into(), "Red".into())]);
        assert_eq!(p.utility(&red_w), 1.0);
        assert!((p.utility(&red_m) - 2.0 / 3.0).abs() < 1e-6);
    }

    #[test]
    fn shoppers_are_deterministic_and_follow_their_persona() {
        let (d, facets) = catalog();
        let ps = personas();
        let opts = ShopperOptions { per_persona: 12, noise: 0.1, ..Default::default() };
        let a = generate_shoppers(&ps, &d, &facets, &opts).unwrap();
        assert_eq!(a, generate_shoppers(&ps, &d, &facets, &opts).unwrap());
        let other = generate_shoppers(&ps, &d, &facets, &ShopperOptions { seed: 7, ..opts.clone() }).unwrap();
        assert_ne!(a, other);
        let mut mean_utility = 0.0;
        let mut n = 0.0;
        for s in &a {
            assert!(opts.history.contains(&s.history.len()), "{}", s.history.len());
            assert!(s.history.iter().all(|r| d.site_of(r.item) != s.target), "history stays off the target shop");
            assert!(s.target_history.iter().all(|r| d.site_of(r.item) == s.target));
            for r in &s.history {
                mean_utility += ps[s.persona].utility(&facets[r.item as usize]);
                n += 1.0;
            }
        }
        // a uniform pick has mean utility ≈ 0.35 for both personas here
        assert!(mean_utility / n > 0.7, "{}", mean_utility / n);
    }

    #[test]
    fn benchmark_separates_informative_from_random_vectors() {
        let (d, facets) = catalog();
        let ps = personas();
        let shoppers =
            generate_shoppers(&ps, &d, &facets, &ShopperOptions { per_persona: 15, ..Default::default() }).unwrap();
        // informative: one-hot colour, category and gender; random: seeded noise
        let names = ["Red", "Black", "Blue", "Apparel > Topwear", "Apparel > Shoes", "Men", "Women"];
        let mut informative = ItemVectors { dim: names.len(), ..Default::default() };
        let mut rng = Rng::new(5);
        let mut random = ItemVectors { dim: 8, ..Default::default() };
        for f in &facets {
            let vals: Vec<&String> = f.values.values().flatten().collect();
            informative.data.extend(names.iter().map(|n| if vals.iter().any(|v| v == n) { 1.0 } else { 0.0 }));
            informative.present.push(true);
            random.data.extend((0..8).map(|_| rng.normal_f32()));
            random.present.push(true);
        }
        let sets = vec![
            VectorSet { name: "informative".into(), variants: vec![("x".into(), informative.clone())] },
            VectorSet { name: "random".into(), variants: vec![("a".into(), random), ("b".into(), informative)] },
        ];
        let make = || -> Result<Box<dyn Fit>> { Ok(warmstart_models::by_name("content", 1, 1)?) };
        let report =
            persona_benchmark(&d, &ps, &facets, &shoppers, &sets, &make, &PersonaBenchOptions::default()).unwrap();
        let get = |set: &str| {
            report.rows.iter().find(|r| r.persona == "all" && r.vectors == set).unwrap().metrics["ndcg@10"].mean
        };
        assert!(get("informative") > 0.8, "{}", get("informative"));
        // the variant set picks its informative member on the training shoppers in every fold
        assert_eq!(report.picked["random"], vec!["b"; 5]);
        assert!(report.markdown(&["ndcg@10".into()]).contains("| red | yes |"));
    }
}
