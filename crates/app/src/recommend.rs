//! The recommendation pipeline of a [`Service`]: validate, resolve the history, retrieve
//! candidates (ANN index or every live item), score them exactly with the model, filter,
//! diversify (MMR), explain.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;

use warmstart_core::{EventTime, InteractionRow, ItemId, Split};
use warmstart_scoring::{dot, normalize, ItemFilter};
use warmstart_store::events::RecommendationRow;

use crate::catalog::Catalog;
use crate::experiment::{thompson_pick, Allocation, Variant};
use crate::feedback::{check_session, now_seconds};
use crate::request::{
    Explanation, HistoryReport, Kind, ProductInput, ProductRef, RecommendRequest, RecommendResponse, RecommendedItem,
    SimilarResponse,
};
use crate::service::{poisoned, Served, Service};
use crate::{Error, Result};

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

/// A resolved history entry.
enum Resolved {
    /// A product of the target's dataset group.
    Known { item: ItemId, kind: Kind },
    /// A product known only by its content vector (embedded, or from another group).
    External { vector: Vec<f32>, kind: Kind, title: String, site: Option<String> },
}

/// A history product outside the catalog: its content vector, weight and what to call it.
struct ExternalItem {
    vector: Vec<f32>,
    weight: f32,
    title: String,
    site: Option<String>,
    kind: Kind,
}

/// What the resolved history gives the models.
struct History {
    /// (catalog item, weight).
    known: Vec<(ItemId, f32)>,
    /// Products outside the catalog.
    external: Vec<ExternalItem>,
    kinds: HashMap<ItemId, Kind>,
    report: HistoryReport,
}

fn explanation_text(kind: Kind, title: &str, site: Option<&str>) -> String {
    match site {
        Some(s) => format!("because you {} {title} on {s}", kind.verb()),
        None => format!("because you {} {title}", kind.verb()),
    }
}

impl Service {
    fn resolve(&self, gi: usize, req: &RecommendRequest) -> Result<History> {
        let g = &self.groups[gi];
        let mut report = HistoryReport { received: req.history.len(), ..Default::default() };
        let mut resolved: Vec<(Resolved, Option<f32>, Option<i64>)> = Vec::new();
        let mut to_embed: Vec<(usize, &ProductInput)> = Vec::new();
        {
            let c = g.catalog.read().map_err(|_| poisoned())?;
            for (n, h) in req.history.iter().enumerate() {
                if let Some(r) = h.rating {
                    if !(0.0..=5.0).contains(&r) {
                        return Err(Error::bad(format!("history[{n}].rating"), "must be in 0..=5"));
                    }
                }
                if let Some(t) = h.time {
                    if !(0..=253_402_300_799).contains(&t) {
                        return Err(Error::bad(format!("history[{n}].time"), "Unix seconds between 1970 and 9999"));
                    }
                }
                if h.id.is_none() && h.product.is_none() {
                    return Err(Error::bad(format!("history[{n}]"), "needs `site` and `id`, or `product` metadata"));
                }
                if h.id.is_some() != h.site.is_some() && h.product.is_none() {
                    return Err(Error::bad(format!("history[{n}]"), "`site` and `id` go together"));
                }
                // a known product: the target's group, or another group's content vector
                let mut found = None;
                if let (Some(site), Some(id)) = (&h.site, &h.id) {
                    if let Some(&(hg, hs)) = self.sites.get(site.as_str()) {
                        if hg == gi {
                            found = c.item(hs, id).map(|item| Resolved::Known { item, kind: h.kind });
                        } else if self.groups[hg].space == g.space {
                            let other = self.groups[hg].catalog.read().map_err(|_| poisoned())?;
                            found = other.item(hs, id).and_then(|i| {
                                other.vector(i).map(|v| Resolved::External {
                                    vector: v.to_vec(),
                                    kind: h.kind,
                                    title: other.product(i).title.clone(),
                                    site: Some(site.clone()),
                                })
                            });
                        }
                    }
                }
                match (found, &h.product) {
                    (Some(r), _) => resolved.push((r, h.rating, h.time)),
                    (None, Some(p)) => {
                        if p.title.trim().is_empty() {
                            return Err(Error::bad(format!("history[{n}].product.title"), "a title is required"));
                        }
                        to_embed.push((resolved.len(), p));
                        resolved.push((
                            Resolved::External {
                                vector: Vec::new(),
                                kind: h.kind,
                                title: warmstart_ingest::normalize::clean_text(&p.title),
                                site: h.site.clone(),
                            },
                            h.rating,
                            h.time,
                        ));
                    }
                    (None, None) => report.unknown += 1,
                }
            }
        }
        if !to_embed.is_empty() {
            let inputs: Vec<&ProductInput> = to_embed.iter().map(|e| e.1).collect();
            let vectors = self.embed_inputs(g, &inputs)?;
            for ((at, _), v) in to_embed.iter().zip(vectors) {
                if let Resolved::External { vector, .. } = &mut resolved[*at].0 {
                    *vector = v;
                }
            }
            report.embedded = to_embed.len();
        }
        // weights: kind, rating and recency, as in evaluation (core::HistoryWeights)
        let weights = warmstart_core::HistoryWeights::default();
        let n_catalog = g.catalog.read().map_err(|_| poisoned())?.n_items() as ItemId;
        let mut rows = Vec::with_capacity(resolved.len());
        let mut kinds = HashMap::new();
        for (j, (r, rating, time)) in resolved.iter().enumerate() {
            let (item, kind) = match r {
                Resolved::Known { item, kind } => (*item, *kind),
                Resolved::External { kind, .. } => (n_catalog + j as ItemId, *kind),
            };
            let e = kinds.entry(item).or_insert(kind);
            if kind.core() > e.core() {
                *e = kind;
            }
            rows.push(InteractionRow {
                user: 0,
                item,
                kind: kind.core(),
                value: *rating,
                time: time.map(EventTime::Timestamp),
                split: Split::Train,
            });
        }
        let weighed = weights.weigh(rows.iter());
        let mut known = Vec::new();
        let mut external = Vec::new();
        for (item, w) in weighed {
            if item < n_catalog {
                known.push((item, w));
            } else if let Resolved::External { vector, kind, title, site, .. } =
                &resolved[(item - n_catalog) as usize].0
            {
                if !vector.is_empty() {
                    external.push(ExternalItem {
                        vector: vector.clone(),
                        weight: w,
                        title: title.clone(),
                        site: site.clone(),
                        kind: *kind,
                    });
                }
            }
        }
        report.known = known.len();
        Ok(History { known, external, kinds, report })
    }

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

    /// `GET /v1/sites/{site}/products/{id}/similar`: the `k` products of `target` (default:
    /// the same site) closest to a product, in the content space or in a model's item space.
    pub fn similar(
        &self,
        site: &str,
        id: &str,
        target: Option<&str>,
        k: usize,
        model: Option<&str>,
    ) -> Result<SimilarResponse> {
        if k == 0 || k > self.opts.max_k {
            return Err(Error::bad("k", format!("must be in 1..={}", self.opts.max_k)));
        }
        let (gi, s) = self.site(site, "site")?;
        let target_key = target.unwrap_or(site);
        let (tg, t) = self.site(target_key, "target")?;
        if tg != gi {
            return Err(Error::bad("target", format!("{target_key} is in another dataset group than {site}")));
        }
        let g = &self.groups[gi];
        let c = g.catalog.read().map_err(|_| poisoned())?;
        let item = c.item(s, id).ok_or_else(|| Error::NotFound { what: "product", key: format!("{site}/{id}") })?;
        let p = c.product(item);
        let product = ProductRef { site: site.to_string(), id: p.external_id.clone(), title: p.title.clone() };
        let to_item = |i: ItemId, score: f32| {
            let q = c.product(i);
            RecommendedItem {
                id: q.external_id.clone(),
                title: q.title.clone(),
                score,
                price_usd: q.price_usd,
                category: q.category.clone(),
                image: q.image.clone(),
                explanation: None,
            }
        };
        let (space_name, scored): (String, Vec<(ItemId, f32)>) = match model {
            None => {
                let v = c.vector(item).ok_or_else(|| Error::NotFound {
                    what: "content vector",
                    key: format!("{site}/{id} (not embedded)"),
                })?;
                let index = g.content_index.read().map_err(|_| poisoned())?;
                let pg = g.pgvector.as_ref().filter(|_| c.live_items(t).len() >= self.opts.ann_min_items);
                let scored = match (index.get(&t), pg) {
                    (Some(ix), _) => {
                        ix.search_filtered(v, k, Some(self.opts.ef.max(k)), &|key| key != item && c.is_live(key))?
                    }
                    (None, Some(pg)) => pg
                        .nearest_in_site(c.site_key(t), v, k + 1, self.opts.ef.max(k + 1))?
                        .into_iter()
                        .filter_map(|(ext, d)| {
                            c.item(t, &ext).filter(|&i| i != item && c.is_live(i)).map(|i| (i, 1.0 - d))
                        })
                        .take(k)
                        .collect(),
                    (None, None) => {
                        let all: Vec<(ItemId, f32)> = c
                            .live_items(t)
                            .iter()
                            .filter(|&&i| i != item)
                            .filter_map(|&i| c.vector(i).map(|u| (i, dot(u, v))))
                            .collect();
                        let order = warmstart_core::top_k_by(all.len(), k, |p| all[p].1);
                        order.into_iter().map(|p| all[p]).collect()
                    }
                };
                (format!("content:{}", g.space.as_ref().map(|s| s.to_string()).unwrap_or_default()), scored)
            }
            Some(CO_CLICK) => {
                let f = self
                    .feedback
                    .as_ref()
                    .ok_or_else(|| Error::bad("model", "co-click learns from feedback, which is off"))?;
                let l = f.live.lock().map_err(|_| poisoned())?;
                let scored = l
                    .co_clicked(site, &p.external_id, Some(target_key), k * 2)
                    .into_iter()
                    .filter_map(|(_, id, n)| c.item(t, &id).filter(|&i| i != item).map(|i| (i, n as f32)))
                    .take(k)
                    .collect();
                (CO_CLICK.to_string(), scored)
            }
            Some(name) => {
                let served_arc = self.model(g, Some(name))?;
                let served = &*served_arc;
                let space = served.model.space().ok_or_else(|| {
                    Error::bad("model", format!("{name} has no item vector space (try the content space: no model)"))
                })?;
                let m = served.ids.model_id(item).ok_or_else(|| Error::NotFound {
                    what: "product in the model",
                    key: format!("{site}/{id} (added after {name} was trained)"),
                })?;
                let v =
                    space.item_vector(m).ok_or_else(|| Error::NotFound { what: "item vector", key: id.to_string() })?;
                let norm = dot(&v, &v).sqrt().max(1e-12);
                let all: Vec<(ItemId, f32)> = c
                    .live_items(t)
                    .iter()
                    .filter(|&&i| i != item)
                    .filter_map(|&i| {
                        let u = space.item_vector(served.ids.model_id(i)?)?;
                        Some((i, dot(&u, &v) / (norm * dot(&u, &u).sqrt().max(1e-12))))
                    })
                    .collect();
                let order = warmstart_core::top_k_by(all.len(), k, |p| all[p].1);
                (name.to_string(), order.into_iter().map(|p| all[p]).collect())
            }
        };
        Ok(SimilarResponse {
            product,
            site: target_key.to_string(),
            space: space_name,
            items: scored.into_iter().map(|(i, s)| to_item(i, s)).collect(),
        })
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
