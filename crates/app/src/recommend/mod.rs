//! The recommendation pipeline of a [`Service`]: validate, resolve the history, retrieve
//! candidates (ANN index or every live item), score them exactly with the model, filter,
//! diversify (MMR), explain.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;

use warmstart_core::ItemId;
use warmstart_scoring::{dot, normalize, ItemFilter};
use warmstart_store::events::RecommendationRow;

use crate::catalog::Catalog;
use crate::experiment::{thompson_pick, Allocation, Variant};
use crate::feedback::{check_session, now_seconds};
use crate::request::{Explanation, Kind, ProductRef, RecommendRequest, RecommendResponse, RecommendedItem};
use crate::service::{poisoned, Served, Service};
use crate::{Error, Result};

mod resolve;
mod similar;
use resolve::History;

/// Ranks by all-time engagement from feedback events (clicks, carts, purchases).
pub const LIVE_POPULAR: &str = "live-popular";
/// Ranks by engagement decayed with the trending half-life.
pub const LIVE_TRENDING: &str = "live-trending";
/// Similar items by co-clicks within sessions.
pub const CO_CLICK: &str = "co-click";

/// Whether a model name is a live signal rather than an artifact.
pub fn is_live_model(name: &str) -> bool {
    name == LIVE_POPULAR || name == LIVE_TRENDING
}

fn explanation_text(kind: Kind, title: &str, site: Option<&str>) -> String {
    match site {
        Some(s) => format!("because you {} {title} on {s}", kind.verb()),
        None => format!("because you {} {title}", kind.verb()),
    }
}

impl Service {
    /// `POST /v1/recommend`: the experiment's variant (when the request names one) chooses
    /// the model and its parameters; with the online loop on, the served list is recorded.
    pub fn recommend(&self, req: &RecommendRequest) -> Result<RecommendResponse> {
        if let Some(s) = &req.session {
            check_session("session", s)?;
        }
        let chosen = match &req.experiment {
            None => None,
            Some(key) => Some(self.choose_variant(req, key)?),
        };
        let mut r = match &chosen {
            None => self.rank(req, req.model.as_deref(), req.diversity, req.exact)?,
            Some(v) => self.rank(req, v.model.as_deref(), v.diversity.or(req.diversity), v.exact || req.exact)?,
        };
        if let Some(f) = &self.feedback {
            r.experiment = req.experiment.clone();
            r.variant = chosen.map(|v| v.name);
            f.record(RecommendationRow {
                id: r.recommendation_id.clone(),
                session: req.session.as_deref().map(|s| f.session_hash(s)),
                site: r.site.clone(),
                model: r.model.clone(),
                experiment: r.experiment.clone(),
                variant: r.variant.clone(),
                items: r.items.iter().map(|i| i.id.clone()).collect(),
                at: now_seconds(),
            });
        }
        Ok(r)
    }

    /// The variant of an experiment for this request's session.
    fn choose_variant(&self, req: &RecommendRequest, key: &str) -> Result<Variant> {
        let f = self.feedback.as_ref().ok_or_else(|| Error::bad("experiment", "the service runs without feedback"))?;
        let x = f.experiments.get(key).ok_or_else(|| Error::NotFound { what: "experiment", key: key.to_string() })?;
        let Some(session) = req.session.as_deref() else {
            return Err(Error::bad("session", "an experiment needs the session id"));
        };
        if req.model.is_some() {
            return Err(Error::bad("model", "the experiment chooses the model; leave `model` out"));
        }
        if !x.runs_on(&req.site) {
            return Err(Error::bad("experiment", format!("`{key}` does not run on {}", req.site)));
        }
        let i = match x.allocation {
            Allocation::Split => x.assign(session),
            Allocation::Thompson => {
                let counts: Vec<(u64, u64)> = {
                    let live = f.live.lock().map_err(|_| poisoned())?;
                    x.variants.iter().map(|v| live.variant_counts(key, &v.name)).collect()
                };
                thompson_pick(&mut *f.rng.lock().map_err(|_| poisoned())?, &counts)
            }
        };
        Ok(x.variants[i].clone())
    }

    /// Ranks the target site's catalog with a model (an artifact, or a live signal).
    fn rank(
        &self,
        req: &RecommendRequest,
        model: Option<&str>,
        diversity: Option<f32>,
        exact: bool,
    ) -> Result<RecommendResponse> {
        let k = req.k.unwrap_or(10);
        if k == 0 || k > self.opts.max_k {
            return Err(Error::bad("k", format!("must be in 1..={}", self.opts.max_k)));
        }
        if req.history.len() > self.opts.max_history {
            return Err(Error::bad("history", format!("at most {} entries", self.opts.max_history)));
        }
        let diversity = diversity.unwrap_or(0.0);
        if !(0.0..=1.0).contains(&diversity) {
            return Err(Error::bad("diversity", "must be in [0, 1]"));
        }
        if req.exclude.len() > 10_000 {
            return Err(Error::bad("exclude", "at most 10000 ids"));
        }
        let filter = ItemFilter::builder()
            .min_price(req.filters.min_price)
            .max_price(req.filters.max_price)
            .category(req.filters.category.as_deref())
            .build()
            .map_err(|e| Error::bad("filters", e.to_string()))?;
        let (gi, target) = self.site(&req.site, "site")?;
        let g = &self.groups[gi];
        // a live signal ranks with the default model's view of the history
        let live = model.filter(|m| is_live_model(m));
        let served_arc = self.model(g, if live.is_some() { None } else { model })?;
        let served = &*served_arc;
        let (history, profile) = match &req.profile {
            Some(p) => {
                if !req.history.is_empty() {
                    return Err(Error::bad("profile", "send a history or a profile, not both"));
                }
                let dim = g.catalog.read().map_err(|_| poisoned())?.dim();
                if p.len() != dim || dim == 0 {
                    return Err(Error::bad(
                        "profile",
                        format!("expected {dim} numbers (the content space), got {}", p.len()),
                    ));
                }
                if p.iter().any(|x| !x.is_finite()) {
                    return Err(Error::bad("profile", "every number must be finite"));
                }
                if !served.content_space {
                    return Err(Error::bad(
                        "model",
                        format!("{} does not rank from a content profile; use a content model", served.name()),
                    ));
                }
                let mut v = p.clone();
                if !normalize(&mut v) {
                    return Err(Error::bad("profile", "the zero vector is no profile"));
                }
                (None, Some(v))
            }
            None => {
                if req.history.is_empty() {
                    return Err(Error::bad("history", "a history (or a profile vector) is required"));
                }
                (Some(self.resolve(gi, req)?), None)
            }
        };
        let c = g.catalog.read().map_err(|_| poisoned())?;
        // what may not be recommended: excluded ids, owned items, filtered items
        // (sorted: the ANN search asks for every node it visits)
        let mut blocked: Vec<ItemId> = req.exclude.iter().filter_map(|id| c.item(target, id)).collect();
        if let Some(h) = &history {
            blocked.extend(h.known.iter().map(|e| e.0).filter(|&i| c.product(i).site == target));
        }
        blocked.sort_unstable();
        blocked.dedup();
        let allowed = |i: ItemId| -> bool {
            blocked.binary_search(&i).is_err() && c.is_live(i) && {
                let p = c.product(i);
                filter.is_empty() || filter.allows(p.price_usd, &p.category)
            }
        };
        // the model's view of the history
        let mut not_in_model = 0;
        let model_history: Vec<(u32, f32)> = history
            .as_ref()
            .map(|h| {
                h.known
                    .iter()
                    .filter_map(|&(i, w)| {
                        let m = served.ids.model_id(i);
                        if m.is_none() {
                            not_in_model += 1;
                        }
                        m.map(|m| (m, w))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let external: Vec<(Vec<f32>, f32)> = history
            .as_ref()
            .map(|h| h.external.iter().map(|e| (e.vector.clone(), e.weight)).collect())
            .unwrap_or_default();
        let n_live = c.live_items(target).len();
        let use_ann = !exact && n_live >= self.opts.ann_min_items;
        let pool = (k * 3).max(self.opts.ann_candidates);
        let (scored, retrieval) = match (live, served.model.space()) {
            (Some(name), _) => {
                let f = self
                    .feedback
                    .as_ref()
                    .ok_or_else(|| Error::bad("model", format!("{name} learns from feedback, which is off")))?;
                let signal: HashMap<ItemId, f64> = {
                    let l = f.live.lock().map_err(|_| poisoned())?;
                    l.scores(c.site_key(target), name == LIVE_TRENDING, now_seconds())
                        .into_iter()
                        .filter_map(|(id, v)| c.item(target, id).map(|i| (i, v)))
                        .collect()
                };
                // engagement first; the catalog's popularity orders the rest (and breaks ties)
                let scored = c
                    .live_items(target)
                    .iter()
                    .copied()
                    .filter(|&i| allowed(i))
                    .map(|i| {
                        let pop = c.popularity(i) as f64;
                        (i, (signal.get(&i).copied().unwrap_or(0.0) + 1e-3 * pop / (1.0 + pop)) as f32)
                    })
                    .collect();
                (scored, "exact")
            }
            (None, Some(space)) => {
                let queries = match &profile {
                    Some(p) => vec![p.clone()],
                    None => space.queries_with(&model_history, &external, target)?,
                };
                let content_index = g.content_index.read().map_err(|_| poisoned())?;
                let index = if served.content_space { content_index.get(&target) } else { served.indexes.get(&target) };
                // pgvector in place of the in-process content index
                let pg = g.pgvector.as_ref().filter(|_| served.content_space && use_ann && !queries.is_empty());
                let candidates: Vec<ItemId> = match (index, pg) {
                    (Some(ix), _) if use_ann && !queries.is_empty() => {
                        let mut seen = HashSet::new();
                        for q in &queries {
                            let allow = |key: u32| {
                                let cat = if served.content_space { Some(key) } else { served.ids.catalog_id(key) };
                                cat.is_some_and(&allowed)
                            };
                            for (key, _) in ix.search_filtered(q, pool, Some(self.opts.ef.max(pool)), &allow)? {
                                let cat = if served.content_space { Some(key) } else { served.ids.catalog_id(key) };
                                if let Some(cat) = cat {
                                    seen.insert(cat);
                                }
                            }
                        }
                        let mut v: Vec<ItemId> = seen.into_iter().collect();
                        v.sort_unstable();
                        v
                    }
                    (None, Some(pg)) => {
                        let mut seen = HashSet::new();
                        for q in &queries {
                            for (ext, _) in pg.nearest_in_site(c.site_key(target), q, pool, self.opts.ef.max(pool))? {
                                if let Some(i) = c.item(target, &ext).filter(|&i| allowed(i)) {
                                    seen.insert(i);
                                }
                            }
                        }
                        let mut v: Vec<ItemId> = seen.into_iter().collect();
                        v.sort_unstable();
                        v
                    }
                    _ => c.live_items(target).iter().copied().filter(|&i| allowed(i)).collect(),
                };
                let retrieval = match (index.is_some(), pg.is_some()) {
                    (true, _) if use_ann && !queries.is_empty() => "ann",
                    (false, true) => "pgvector",
                    _ => "exact",
                };
                let scored: Vec<(ItemId, f32)> = candidates
                    .into_iter()
                    .filter_map(|i| {
                        let s = match served.ids.model_id(i) {
                            Some(m) => space.score_item(&queries, m),
                            // a product added after training: its content vector in a content space
                            None if served.content_space => c.vector(i).map(|v| space.score_vector(&queries, v))?,
                            None => return None,
                        };
                        s.is_finite().then_some((i, s))
                    })
                    .collect();
                (scored, retrieval)
            }
            (None, None) => {
                // models without a vector space (popularity, item-kNN): every known live item
                let ids: Vec<(ItemId, u32)> = c
                    .live_items(target)
                    .iter()
                    .copied()
                    .filter(|&i| allowed(i))
                    .filter_map(|i| served.ids.model_id(i).map(|m| (i, m)))
                    .collect();
                let model_ids: Vec<u32> = ids.iter().map(|e| e.1).collect();
                let mut scores = vec![0f32; model_ids.len()];
                served.model.score_ids(&model_history, &model_ids, &mut scores)?;
                (ids.iter().zip(scores).filter(|e| e.1.is_finite()).map(|(e, s)| (e.0, s)).collect(), "exact")
            }
        };
        // best first, ties by id (deterministic); MMR over a pool when asked
        let sim = |a: ItemId, b: ItemId| match (c.vector(a), c.vector(b)) {
            (Some(x), Some(y)) => dot(x, y),
            _ => item_cosine(served, a, b),
        };
        let top = warmstart_scoring::best_k(&scored, k, diversity, sim);
        let explanations =
            history.as_ref().map(|h| self.explain(&c, served, h, &model_history, &top)).unwrap_or_default();
        let items = top
            .iter()
            .map(|&(i, score)| {
                let p = c.product(i);
                RecommendedItem {
                    id: p.external_id.clone(),
                    title: p.title.clone(),
                    score,
                    price_usd: p.price_usd,
                    category: p.category.clone(),
                    image: p.image.clone(),
                    explanation: explanations.get(&i).cloned(),
                }
            })
            .collect();
        let mut report = history.map(|h| h.report).unwrap_or_default();
        report.not_in_model = not_in_model;
        Ok(RecommendResponse {
            recommendation_id: self.next_id(),
            site: req.site.clone(),
            model: live.unwrap_or(served.name()).to_string(),
            model_version: if live.is_some() { 0 } else { served.artifact.manifest.version },
            retrieval: retrieval.to_string(),
            items,
            history: report,
            experiment: None,
            variant: None,
        })
    }

    /// A fresh recommendation id (128 random-looking bits; unique per process and time).
    fn next_id(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let mut a =
            warmstart_core::Rng::new((t as u64) ^ n.wrapping_mul(0x9e3779b97f4a7c15) ^ std::process::id() as u64);
        format!("{:016x}{:016x}", a.next_u64(), a.next_u64() ^ n)
    }

    /// Explanations: the model's own (item-kNN, content) where it has them, else the history
    /// product closest in the content space.
    fn explain(
        &self,
        c: &Catalog,
        served: &Served,
        h: &History,
        model_history: &[(u32, f32)],
        top: &[(ItemId, f32)],
    ) -> HashMap<ItemId, Explanation> {
        let mut out = HashMap::new();
        let known_ref = |i: ItemId| {
            let p = c.product(i);
            let site = c.site_key(p.site).to_string();
            let kind = h.kinds.get(&i).copied().unwrap_or_default();
            Explanation {
                text: explanation_text(kind, &p.title, Some(&c.sites[p.site as usize].1)),
                because_of: Some(ProductRef { site, id: p.external_id.clone(), title: p.title.clone() }),
            }
        };
        let model_top: Vec<u32> = top.iter().filter_map(|&(i, _)| served.ids.model_id(i)).collect();
        if let Some(why) = served.model.explain(model_history, &model_top) {
            for w in why {
                if let (Some(item), Some(because)) =
                    (served.ids.catalog_id(w.item), served.ids.catalog_id(w.because_of))
                {
                    out.insert(item, known_ref(because));
                }
            }
        }
        for &(i, _) in top {
            if out.contains_key(&i) {
                continue;
            }
            let Some(v) = c.vector(i) else { continue };
            let best_known = h
                .known
                .iter()
                .filter_map(|&(j, w)| c.vector(j).map(|u| (j, w * dot(u, v))))
                .max_by(|a, b| a.1.total_cmp(&b.1));
            let best_external = h
                .external
                .iter()
                .enumerate()
                .map(|(n, e)| (n, e.weight * dot(&e.vector, v)))
                .max_by(|a, b| a.1.total_cmp(&b.1));
            match (best_known, best_external) {
                (Some((j, a)), Some((_, b))) if a >= b => {
                    out.insert(i, known_ref(j));
                }
                (Some((j, _)), None) => {
                    out.insert(i, known_ref(j));
                }
                (_, Some((n, _))) => {
                    let e = &h.external[n];
                    out.insert(
                        i,
                        Explanation { text: explanation_text(e.kind, &e.title, e.site.as_deref()), because_of: None },
                    );
                }
                (None, None) => {}
            }
        }
        out
    }
}

/// Cosine of two items in a model's own space (0 when either has no vector).
fn item_cosine(served: &Served, a: ItemId, b: ItemId) -> f32 {
    let Some(space) = served.model.space() else { return 0.0 };
    let vec = |i: ItemId| served.ids.model_id(i).and_then(|m| space.item_vector(m));
    match (vec(a), vec(b)) {
        (Some(x), Some(y)) => dot(&x, &y) / (dot(&x, &x).sqrt() * dot(&y, &y).sqrt()).max(1e-12),
        _ => 0.0,
    }
}
