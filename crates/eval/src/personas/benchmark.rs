//! The persona benchmark: models rank each shopper's target shop from their other-shop
//! history, cross-validated over shoppers, with a mean and spread per persona.

use std::collections::BTreeMap;

use serde::Serialize;
use warmstart_core::{CsrMatrix, Dataset, HistoryWeights, ItemVectors};
use warmstart_models::{Fit, Recommender, TrainData};

use super::{ItemFacets, Persona, Shopper};
use crate::metrics::{case_metrics, relevant_ranks};
use crate::{Error, Result};

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
