//! A simulator of shoppers for the online loop, since no real traffic exists offline: each
//! simulated session asks a recommendation service (through an [`Endpoint`], e.g. the real
//! HTTP server) for a list inside an experiment, looks at it with position bias, clicks by a
//! ground truth, and reports impressions, clicks, carts and purchases as events. The ground
//! truth is real: the served models' hold-out shoppers — people whose target-shop items were
//! hidden from training — click the items they really bought there; or, for persona shoppers
//! (`warmstart personas --save-only`), the items their persona's stated preferences value.
//!
//! Click model (position-based): position `p` (0 = top) is examined with probability
//! `(1 / (p + 1))^decay`; an examined item of relevance `r` in [0, 1] is clicked with
//! probability `attract_other + r (attract_relevant − attract_other)`, where `r` is 1 for a
//! shopper's real target-shop item (0 otherwise) or `utility⁴` under their persona; a click is
//! carted with probability `r · cart_given_click`, and bought with `purchase_given_cart`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use warmstart_core::Rng;
use warmstart_eval::personas::{ItemFacets, Persona};
use warmstart_eval::protocol::serving_holdout;
use warmstart_eval::ProtocolOptions;
use warmstart_store::Store;
use warmstart_viz::{LineChart, Series};

use crate::artifact;
use crate::experiment::{Allocation, Experiment, ExperimentReport};
use crate::feedback::{EventInput, EventType, EventsRequest, EventsResponse, ShownItem};
use crate::query::stored_history;
use crate::request::{HistoryEntry, RecommendRequest, RecommendResponse};
use crate::{Error, Result};

/// Where the simulator sends its requests.
pub trait Endpoint {
    /// `POST /v1/recommend`.
    fn recommend(&mut self, req: &RecommendRequest) -> Result<RecommendResponse>;
    /// `POST /v1/events`.
    fn events(&mut self, req: &EventsRequest) -> Result<EventsResponse>;
    /// `GET /v1/experiments/{key}/report`.
    fn report(&mut self, key: &str) -> Result<ExperimentReport>;
}

/// A simulated shopper: a history on other shops and the target-shop products they really
/// chose.
#[derive(Debug, Clone)]
pub struct Shopper {
    /// User key in the store.
    pub user: String,
    /// History on the other shops, as a client sends it.
    pub history: Vec<HistoryEntry>,
    /// Relevance in (0, 1] of target-shop products (absent: 0).
    pub relevance: Arc<HashMap<String, f64>>,
}

/// The position-based click model.
#[derive(Debug, Clone, Serialize)]
pub struct ClickModel {
    /// Examination decays as `(1 / (p + 1))^decay`.
    pub position_decay: f64,
    /// Click probability of an examined real target item.
    pub attract_relevant: f64,
    /// Click probability of any other examined item.
    pub attract_other: f64,
    /// Cart probability after clicking a real item.
    pub cart_given_click: f64,
    /// Purchase probability after carting.
    pub purchase_given_cart: f64,
}

impl Default for ClickModel {
    fn default() -> Self {
        ClickModel {
            position_decay: 1.0,
            attract_relevant: 0.9,
            attract_other: 0.02,
            cart_given_click: 0.3,
            purchase_given_cart: 0.5,
        }
    }
}

/// What to simulate.
#[derive(Debug, Clone, Serialize)]
pub struct SimulationOptions {
    /// Sessions per experiment.
    pub sessions: usize,
    /// Seed of the shopper sequence and the clicks.
    pub seed: u64,
    /// List length.
    pub k: usize,
    /// Sessions per point of the CTR-over-time curve.
    pub window: usize,
    /// A broken client: sessions of this variant lose their events with this probability
    /// (what a sample-ratio check must catch).
    pub drop: Option<(String, f64)>,
    /// Clicks.
    pub click: ClickModel,
}

impl Default for SimulationOptions {
    fn default() -> Self {
        SimulationOptions { sessions: 10_000, seed: 1, k: 10, window: 1000, drop: None, click: ClickModel::default() }
    }
}

/// One experiment as the simulated shoppers experienced it, and as the service reported it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExperimentRun {
    /// Experiment key.
    pub experiment: String,
    /// Sessions simulated.
    pub sessions: usize,
    /// Sessions whose events the broken client dropped.
    pub dropped_sessions: usize,
    /// Impressions and clicks the shoppers made (dropped ones included).
    pub impressions: u64,
    /// Clicks.
    pub clicks: u64,
    /// (sessions so far, CTR within the window ending there).
    pub ctr_over_time: Vec<(usize, f64)>,
    /// (sessions so far, CTR of every session so far).
    pub cumulative_ctr: Vec<(usize, f64)>,
    /// Share of sessions per variant.
    pub variant_sessions: HashMap<String, usize>,
    /// Events the service accepted / refused.
    pub events_accepted: usize,
    /// Events refused (should be 0).
    pub events_rejected: usize,
    /// The service's report at the end.
    pub report: ExperimentReport,
}

/// Where simulated shoppers' clicks come from.
pub enum GroundTruth<'a> {
    /// The target-shop products the hold-out shopper really interacted with.
    HeldOut,
    /// Their persona's utility of every target-shop product (users `persona:<name>:<n>`).
    Personas(&'a [Persona]),
}

/// The served models' hold-out shoppers of a target site: the users the artifacts never saw
/// on that site (same seed and share as training), with their history elsewhere.
pub fn holdout_shoppers(store: &Store, dataset: &str, target: &str, truth: GroundTruth) -> Result<Vec<Shopper>> {
    let (latest, _) = artifact::latest(&artifact::root(store))?;
    let trained: Vec<_> = latest.iter().filter(|a| a.manifest.dataset == dataset).collect();
    let first = trained.first().ok_or_else(|| Error::NotFound { what: "trained artifact of", key: dataset.into() })?;
    let (seed, share) = (first.manifest.training.seed, first.manifest.training.holdout_share);
    if let Some(a) =
        trained.iter().find(|a| a.manifest.training.seed != seed || a.manifest.training.holdout_share != share)
    {
        return Err(Error::bad(
            "dataset",
            format!(
                "artifacts of {dataset} hold out different users ({} differs); retrain with one seed",
                a.manifest.model
            ),
        ));
    }
    if share <= 0.0 {
        return Err(Error::bad("dataset", format!("the artifacts of {dataset} were trained without a hold-out")));
    }
    let d = store.load_dataset(Some(dataset))?;
    let t = d
        .sites
        .iter()
        .position(|s| s.key == target)
        .ok_or_else(|| Error::NotFound { what: "site", key: target.into() })?;
    let range = d.sites[t].items.clone();
    let tasks = serving_holdout(&d, &ProtocolOptions { seed, holdout_share: share, ..Default::default() });
    let task = tasks
        .iter()
        .find(|x| x.target as usize == t)
        .ok_or_else(|| Error::NotFound { what: "task", key: target.into() })?;
    // persona relevance of every target product, once per persona
    let by_persona: HashMap<&str, Arc<HashMap<String, f64>>> = match &truth {
        GroundTruth::HeldOut => HashMap::new(),
        GroundTruth::Personas(personas) => {
            let attributes = store.product_attributes(Some(dataset))?;
            personas
                .iter()
                .map(|p| {
                    let m = range
                        .clone()
                        .filter_map(|i| {
                            let q = &d.products[i as usize];
                            let u = p.utility(&ItemFacets::of(&q.category, &q.title, &attributes[i as usize])) as f64;
                            let r = u.powi(4);
                            (r >= 0.01).then(|| (q.external_id.clone(), r))
                        })
                        .collect();
                    (p.name.as_str(), Arc::new(m))
                })
                .collect()
        }
    };
    let mut out = Vec::new();
    for c in &task.test {
        let user = d.users[c.user as usize].clone();
        let relevance = match &truth {
            GroundTruth::HeldOut => {
                Arc::new(c.relevant.iter().map(|&i| (d.products[i as usize].external_id.clone(), 1.0)).collect())
            }
            GroundTruth::Personas(_) => {
                let name = user.strip_prefix("persona:").and_then(|r| r.rsplit_once(':')).map(|(n, _)| n);
                match name.and_then(|n| by_persona.get(n)) {
                    Some(m) => m.clone(),
                    None => continue,
                }
            }
        };
        let history = stored_history(&d, &user, Some(range.clone()))?;
        out.push(Shopper { user, history, relevance });
    }
    Ok(out)
}

/// Offline NDCG@10 on a target site of each served model (its artifact's own hold-out
/// evaluation).
pub fn offline_ndcg(store: &Store, dataset: &str, target: &str) -> Result<HashMap<String, f64>> {
    let (latest, _) = artifact::latest(&artifact::root(store))?;
    let task = format!("*→{target}");
    Ok(latest
        .iter()
        .filter(|a| a.manifest.dataset == dataset)
        .filter_map(|a| {
            let e = a.manifest.evaluation.as_ref()?;
            let t = e.tasks.iter().find(|t| t.task == task)?;
            Some((a.manifest.model.clone(), *t.metrics.get("ndcg@10")?))
        })
        .collect())
}

fn chance(rng: &mut Rng, p: f64) -> bool {
    ((rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
}

/// Simulates `opts.sessions` sessions of one experiment on `site`.
pub fn run_experiment(
    endpoint: &mut dyn Endpoint,
    shoppers: &[Shopper],
    site: &str,
    experiment: &str,
    opts: &SimulationOptions,
    progress: &mut dyn FnMut(usize),
) -> Result<ExperimentRun> {
    if shoppers.is_empty() {
        return Err(Error::bad("shoppers", "no hold-out shoppers to simulate"));
    }
    // the shopper sequence is the same for every experiment of a seed
    let mut pick = Rng::new(opts.seed);
    let mut clicks_rng = Rng::new(opts.seed ^ 0xc1c5);
    let mut run = ExperimentRun {
        experiment: experiment.to_string(),
        sessions: 0,
        dropped_sessions: 0,
        impressions: 0,
        clicks: 0,
        ctr_over_time: Vec::new(),
        cumulative_ctr: Vec::new(),
        variant_sessions: HashMap::new(),
        events_accepted: 0,
        events_rejected: 0,
        report: ExperimentReport {
            experiment: experiment.into(),
            allocation: Default::default(),
            control: String::new(),
            variants: Vec::new(),
            sample_ratio: None,
            winner: String::new(),
        },
    };
    let (mut win_imp, mut win_clk) = (0u64, 0u64);
    for n in 0..opts.sessions {
        let shopper = &shoppers[pick.below(shoppers.len())];
        let session = format!("sim{:x}-{experiment}-{n:07}-{:08x}", opts.seed, pick.next_u64() as u32);
        let req = RecommendRequest {
            site: site.to_string(),
            history: shopper.history.clone(),
            k: Some(opts.k),
            session: Some(session.clone()),
            experiment: Some(experiment.to_string()),
            ..Default::default()
        };
        let r = endpoint.recommend(&req)?;
        let variant = r.variant.clone().unwrap_or_default();
        *run.variant_sessions.entry(variant.clone()).or_default() += 1;
        let mut events = vec![EventInput {
            kind: EventType::Impression,
            key: format!("{session}:i"),
            session: session.clone(),
            recommendation_id: Some(r.recommendation_id.clone()),
            items: r
                .items
                .iter()
                .enumerate()
                .map(|(p, i)| ShownItem { id: i.id.clone(), position: p as u32 })
                .collect(),
            site: None,
            id: None,
            position: None,
            time: None,
        }];
        let c = &opts.click;
        for (p, item) in r.items.iter().enumerate() {
            let examined = chance(&mut clicks_rng, (1.0 / (p as f64 + 1.0)).powf(c.position_decay));
            let relevance = shopper.relevance.get(&item.id).copied().unwrap_or(0.0);
            let attract = c.attract_other + relevance * (c.attract_relevant - c.attract_other);
            if !(examined && chance(&mut clicks_rng, attract)) {
                continue;
            }
            run.clicks += 1;
            win_clk += 1;
            let event = |kind: EventType, tag: &str| EventInput {
                kind,
                key: format!("{session}:{tag}{p}"),
                session: session.clone(),
                recommendation_id: Some(r.recommendation_id.clone()),
                items: Vec::new(),
                site: None,
                id: Some(item.id.clone()),
                position: Some(p as u32),
                time: None,
            };
            events.push(event(EventType::Click, "c"));
            if relevance > 0.0 && chance(&mut clicks_rng, relevance * c.cart_given_click) {
                events.push(event(EventType::Cart, "a"));
                if chance(&mut clicks_rng, c.purchase_given_cart) {
                    events.push(event(EventType::Purchase, "p"));
                }
            }
        }
        run.impressions += r.items.len() as u64;
        win_imp += r.items.len() as u64;
        let dropped = opts.drop.as_ref().is_some_and(|(v, share)| *v == variant && chance(&mut pick, *share));
        if dropped {
            run.dropped_sessions += 1;
        } else {
            let resp = endpoint.events(&EventsRequest { events })?;
            run.events_accepted += resp.accepted;
            run.events_rejected += resp.rejected.len();
        }
        run.sessions += 1;
        if run.sessions.is_multiple_of(opts.window.max(1)) {
            run.ctr_over_time.push((run.sessions, if win_imp > 0 { win_clk as f64 / win_imp as f64 } else { 0.0 }));
            run.cumulative_ctr.push((run.sessions, run.clicks as f64 / run.impressions.max(1) as f64));
            win_imp = 0;
            win_clk = 0;
        }
        progress(n + 1);
    }
    run.report = endpoint.report(experiment)?;
    Ok(run)
}

/// One variant of a run beside its model's offline NDCG@10.
#[derive(Debug, Clone, Serialize)]
pub struct VariantSummary {
    /// Variant.
    pub variant: String,
    /// Its model.
    pub model: Option<String>,
    /// Sessions with events.
    pub sessions: u64,
    /// CTR and its 95% interval.
    pub ctr: f64,
    /// Lower end.
    pub ctr_lo: f64,
    /// Upper end.
    pub ctr_hi: f64,
    /// Relative lift against control.
    pub lift: Option<f64>,
    /// Its p-value.
    pub p_value: Option<f64>,
    /// The model's hold-out NDCG@10 on the target site.
    pub offline_ndcg10: Option<f64>,
    /// Carts per impression.
    pub cart_rate: f64,
    /// Purchases per impression.
    pub purchase_rate: f64,
}

/// What a run says: CTR per variant, the A/B verdict against the offline ranking, the
/// sample-ratio check.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// Experiment key.
    pub experiment: String,
    /// Allocation.
    pub allocation: Allocation,
    /// Sessions simulated.
    pub sessions: usize,
    /// Sessions whose events the broken client dropped.
    pub dropped_sessions: usize,
    /// CTR the simulated shoppers experienced.
    pub ctr_experienced: f64,
    /// Variants.
    pub variants: Vec<VariantSummary>,
    /// The report's winner (significant lift, else control).
    pub ab_winner: String,
    /// The variant with the highest CTR.
    pub ab_best_ctr: Option<String>,
    /// The variant whose model has the highest offline NDCG@10.
    pub offline_best_ndcg10: Option<String>,
    /// Split allocation, and the two agree.
    pub ab_agrees_with_offline: bool,
    /// Sample-ratio p-value.
    pub srm_p_value: Option<f64>,
    /// Sample-ratio flag.
    pub srm_mismatch: Option<bool>,
    /// Events the service refused.
    pub events_rejected: usize,
}

/// Summarises a run of experiment `x` against the served models' offline NDCG@10 (by model).
pub fn summarize(run: &ExperimentRun, x: &Experiment, offline: &HashMap<String, f64>) -> RunSummary {
    let ndcg: HashMap<&str, f64> = x
        .variants
        .iter()
        .filter_map(|v| v.model.as_deref().and_then(|m| offline.get(m)).map(|n| (v.name.as_str(), *n)))
        .collect();
    let offline_best = ndcg.iter().max_by(|a, b| a.1.total_cmp(b.1)).map(|(v, _)| v.to_string());
    let r = &run.report;
    let ctr_best = r.variants.iter().max_by(|a, b| a.ctr.value.total_cmp(&b.ctr.value)).map(|v| v.name.clone());
    RunSummary {
        experiment: run.experiment.clone(),
        allocation: x.allocation,
        sessions: run.sessions,
        dropped_sessions: run.dropped_sessions,
        ctr_experienced: if run.impressions > 0 { run.clicks as f64 / run.impressions as f64 } else { 0.0 },
        variants: r
            .variants
            .iter()
            .map(|v| VariantSummary {
                variant: v.name.clone(),
                model: v.model.clone(),
                sessions: v.sessions,
                ctr: v.ctr.value,
                ctr_lo: v.ctr.lo,
                ctr_hi: v.ctr.hi,
                lift: v.lift.as_ref().map(|l| l.relative),
                p_value: v.lift.as_ref().map(|l| l.p_value),
                offline_ndcg10: ndcg.get(v.name.as_str()).copied(),
                cart_rate: v.cart_rate.value,
                purchase_rate: v.purchase_rate.value,
            })
            .collect(),
        ab_winner: r.winner.clone(),
        ab_agrees_with_offline: x.allocation == Allocation::Split && ctr_best.is_some() && ctr_best == offline_best,
        ab_best_ctr: ctr_best,
        offline_best_ndcg10: offline_best,
        srm_p_value: r.sample_ratio.as_ref().map(|s| s.p_value),
        srm_mismatch: r.sample_ratio.as_ref().map(|s| s.mismatch),
        events_rejected: run.events_rejected,
    }
}

/// The cumulative CTR of several runs over sessions (e.g. a bandit against a fixed split).
pub fn write_ctr_chart(runs: &[ExperimentRun], title: &str, stem: &Path) -> Result<Vec<PathBuf>> {
    let chart = LineChart {
        title: title.to_string(),
        x_label: "sessions".into(),
        y_label: "CTR of all sessions so far (%)".into(),
        series: runs
            .iter()
            .map(|r| Series::new(&r.experiment, r.cumulative_ctr.iter().map(|&(n, c)| (n as f64, 100.0 * c)).collect()))
            .collect(),
    };
    chart.write(stem).map_err(|e| Error::Artifact { path: stem.display().to_string(), reason: e.to_string() })
}
