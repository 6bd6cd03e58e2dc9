//! Resolving a request's history: catalog products by id, other groups' and unknown
//! products by their content vectors (embedded when only metadata is given), weighted by
//! interaction kind, rating and recency.

use std::collections::HashMap;

use warmstart_core::{EventTime, InteractionRow, ItemId, Split};

use crate::request::{HistoryReport, Kind, ProductInput, RecommendRequest};
use crate::service::{poisoned, Service};
use crate::{Error, Result};

/// A resolved history entry.
enum Resolved {
    /// A product of the target's dataset group.
    Known { item: ItemId, kind: Kind },
    /// A product known only by its content vector (embedded, or from another group).
    External { vector: Vec<f32>, kind: Kind, title: String, site: Option<String> },
}

/// A history product outside the catalog: its content vector, weight and what to call it.
pub(super) struct ExternalItem {
    pub(super) vector: Vec<f32>,
    pub(super) weight: f32,
    pub(super) title: String,
    pub(super) site: Option<String>,
    pub(super) kind: Kind,
}

/// What the resolved history gives the models.
pub(super) struct History {
    /// (catalog item, weight).
    pub(super) known: Vec<(ItemId, f32)>,
    /// Products outside the catalog.
    pub(super) external: Vec<ExternalItem>,
    pub(super) kinds: HashMap<ItemId, Kind>,
    pub(super) report: HistoryReport,
}

impl Service {
    pub(super) fn resolve(&self, gi: usize, req: &RecommendRequest) -> Result<History> {
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
}
