//! Similar products: the closest products to one product, in the content space or in a
//! model's own item space.

use warmstart_core::ItemId;
use warmstart_scoring::dot;

use super::CO_CLICK;
use crate::request::{ProductRef, RecommendedItem, SimilarResponse};
use crate::service::{poisoned, Service};
use crate::{Error, Result};

impl Service {
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
