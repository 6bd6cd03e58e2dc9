//! Ranking a shop's public catalog on the device from the user's history on other shops.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use warmstart_core::ItemId;
use warmstart_scoring::rank::identity;
use warmstart_scoring::{
    best_k, dot, item_score, site_groups, target_queries, ItemFilter, NeighbourLists, SiteVectors, SliceSpace,
};

use crate::{bad, Result};

/// Public metadata of one catalog row, for filters.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RowMeta {
    /// The shop's id.
    pub id: String,
    /// Price in USD.
    #[serde(default)]
    pub price_usd: Option<f64>,
    /// Category path.
    #[serde(default)]
    pub category: Vec<String>,
}

struct Shop {
    vectors: SiteVectors,
    row_of: HashMap<String, usize>,
    meta: HashMap<String, RowMeta>,
}

struct Neighbours {
    lists: NeighbourLists,
    source_of: HashMap<(String, String), usize>,
}

/// Shops' downloaded catalogs and the ranking over them.
#[derive(Default)]
pub struct Device {
    shops: BTreeMap<String, Shop>,
    /// Per target shop, a neighbour-list model's lists into it.
    neighbours: BTreeMap<String, Neighbours>,
}

/// One item of the user's history.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryItem {
    /// Shop (site key).
    pub site: String,
    /// The shop's product id.
    pub id: String,
    /// Weight (a view 1, a cart 2, a purchase 3 in the extension).
    #[serde(default = "one")]
    pub weight: f32,
}

fn one() -> f32 {
    1.0
}

/// A ranking request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RankRequest {
    /// Shop to rank.
    pub target: String,
    /// `content` (the shops' content vectors, the default) or `neighbours` (the lists
    /// loaded with [`Device::load_neighbours`]: item-kNN or RP3beta).
    #[serde(default = "content")]
    pub model: String,
    /// The user's history (other shops; items of the target are excluded from the list).
    pub history: Vec<HistoryItem>,
    /// List length.
    #[serde(default = "ten")]
    pub k: usize,
    /// Interests per shop (1 = one profile, as the server's `content` model).
    #[serde(default = "one_usize")]
    pub interests: usize,
    /// Popularity prior weight in [0, 1].
    #[serde(default)]
    pub pop_weight: f32,
    /// MMR diversity in [0, 1) (0 = none).
    #[serde(default)]
    pub diversity: f32,
    /// Lowest price (USD).
    #[serde(default)]
    pub min_price: Option<f64>,
    /// Highest price (USD).
    #[serde(default)]
    pub max_price: Option<f64>,
    /// A category level the item must have.
    #[serde(default)]
    pub category: Option<String>,
    /// Ids of the target shop never to show.
    #[serde(default)]
    pub exclude: Vec<String>,
}

fn content() -> String {
    "content".into()
}

fn ten() -> usize {
    10
}
fn one_usize() -> usize {
    1
}

/// Why an item is recommended: the history item it is most similar to (times its weight).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Because {
    /// Shop of the history item.
    pub site: String,
    /// Its id.
    pub id: String,
}

/// One recommended item.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RankedItem {
    /// The target shop's product id.
    pub id: String,
    /// Score.
    pub score: f32,
    /// Reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub because: Option<Because>,
}

/// The ranking and the one profile vector (what the optional server mode sends).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RankResponse {
    /// Best first.
    pub items: Vec<RankedItem>,
    /// Unit profile in the content space (the single-interest one), empty without history.
    pub profile: Vec<f32>,
    /// History items found in their shop's vectors.
    pub used: usize,
    /// History items not found (shop not loaded or product gone).
    pub unknown: usize,
}

impl Device {
    /// An empty device.
    pub fn new() -> Device {
        Device::default()
    }

    /// Loads (or replaces) a shop's `WSVEC001` download and, optionally, its public catalog
    /// rows (for price and category filters). Returns the number of products.
    pub fn load_shop(&mut self, site: &str, vectors: &[u8], catalog: Option<Vec<RowMeta>>) -> Result<usize> {
        if site.is_empty() {
            return Err(bad("site", "empty"));
        }
        let vectors = SiteVectors::decode(vectors)?;
        if let Some(other) = self.shops.values().find(|s| s.vectors.dim != vectors.dim && !s.vectors.is_empty()) {
            return Err(bad(
                "vectors",
                format!("dimension {} where loaded shops have {}", vectors.dim, other.vectors.dim),
            ));
        }
        let row_of = vectors.ids.iter().enumerate().map(|(i, id)| (id.clone(), i)).collect();
        let meta = catalog.unwrap_or_default().into_iter().map(|m| (m.id.clone(), m)).collect();
        let n = vectors.len();
        self.shops.insert(site.to_string(), Shop { vectors, row_of, meta });
        Ok(n)
    }

    /// Forgets a shop's catalog (and neighbour lists).
    pub fn unload_shop(&mut self, site: &str) -> bool {
        let lists = self.neighbours.remove(site).is_some();
        self.shops.remove(site).is_some() || lists
    }

    /// Loads (or replaces) a neighbour-list model's `WSNBR001` lists into `site`. Returns
    /// the number of source products.
    pub fn load_neighbours(&mut self, site: &str, bytes: &[u8]) -> Result<usize> {
        if site.is_empty() {
            return Err(bad("site", "empty"));
        }
        let lists = NeighbourLists::decode(bytes)?;
        let source_of = lists.sources.iter().enumerate().map(|(n, s)| (s.clone(), n)).collect();
        let n = lists.sources.len();
        self.neighbours.insert(site.to_string(), Neighbours { lists, source_of });
        Ok(n)
    }

    /// Ranks with neighbour lists: an item's score is the weighted sum of its similarities
    /// to the history's items (the server's item-kNN score), ties in the service's order.
    fn rank_neighbours(&self, req: &RankRequest, filter: &ItemFilter) -> Result<RankResponse> {
        let nb = self
            .neighbours
            .get(&req.target)
            .ok_or_else(|| bad("target", format!("no neighbour lists of `{}` are loaded", req.target)))?;
        let targets = &nb.lists.targets;
        let mut scores = vec![0f32; targets.len()];
        let (mut used, mut unknown) = (Vec::new(), 0);
        let mut seen: HashSet<&str> = req.exclude.iter().map(String::as_str).collect();
        for h in &req.history {
            if h.site == req.target {
                seen.insert(h.id.as_str());
                continue;
            }
            match nb.source_of.get(&(h.site.clone(), h.id.clone())) {
                Some(&src) if h.weight.is_finite() && h.weight > 0.0 => {
                    for &(r, sim) in &nb.lists.lists[src] {
                        scores[r as usize] += h.weight * sim;
                    }
                    used.push((src, h));
                }
                Some(_) => {}
                None => unknown += 1,
            }
        }
        let meta = self.shops.get(&req.target).map(|s| &s.meta);
        let scored: Vec<(ItemId, f32)> = (0..targets.len())
            .filter(|&r| !seen.contains(targets[r].as_str()))
            .filter(|&r| {
                filter.is_empty()
                    || meta.and_then(|m| m.get(&targets[r])).is_some_and(|m| filter.allows(m.price_usd, &m.category))
            })
            .map(|r| (r as ItemId, scores[r]))
            .collect();
        let top = best_k(&scored, req.k, 0.0, |_, _| 0.0);
        let items = top
            .into_iter()
            .map(|(r, score)| {
                let because = used
                    .iter()
                    .filter_map(|&(src, h)| nb.lists.lists[src].iter().find(|e| e.0 == r).map(|e| (h, h.weight * e.1)))
                    .filter(|e| e.1 > 0.0)
                    .max_by(|a, b| a.1.total_cmp(&b.1))
                    .map(|(h, _)| Because { site: h.site.clone(), id: h.id.clone() });
                RankedItem { id: targets[r as usize].clone(), score, because }
            })
            .collect();
        Ok(RankResponse { items, profile: Vec::new(), used: used.len(), unknown })
    }

    /// Shops loaded.
    pub fn shops(&self) -> Vec<String> {
        self.shops.keys().cloned().collect()
    }

    /// Ranks the target shop for the history (see [`RankRequest`]).
    pub fn rank(&self, req: &RankRequest) -> Result<RankResponse> {
        if req.k == 0 || req.k > 1000 {
            return Err(bad("k", "must be in 1..=1000"));
        }
        if !(1..=32).contains(&req.interests) {
            return Err(bad("interests", "must be in 1..=32"));
        }
        if !(0.0..=1.0).contains(&req.pop_weight) {
            return Err(bad("pop_weight", "must be in [0, 1]"));
        }
        if !(0.0..1.0).contains(&req.diversity) {
            return Err(bad("diversity", "must be in [0, 1)"));
        }
        let filter = ItemFilter::builder()
            .min_price(req.min_price)
            .max_price(req.max_price)
            .category(req.category.as_deref())
            .build()?;
        match req.model.as_str() {
            "content" => {}
            "neighbours" => return self.rank_neighbours(req, &filter),
            other => return Err(bad("model", format!("`{other}`: content or neighbours"))),
        }
        let target =
            self.shops.get(&req.target).ok_or_else(|| bad("target", format!("shop `{}` is not loaded", req.target)))?;
        let dim = target.vectors.dim;
        // the history's vectors, one row each, with their shop as a site id (shops in key order)
        let site_ids: HashMap<&str, u32> = self.shops.keys().enumerate().map(|(i, k)| (k.as_str(), i as u32)).collect();
        let (mut data, mut site_of, mut items, mut origin) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut unknown = 0;
        let mut seen_target: HashSet<&str> = req.exclude.iter().map(String::as_str).collect();
        for h in &req.history {
            if h.site == req.target {
                seen_target.insert(h.id.as_str());
                continue;
            }
            let found = self.shops.get(&h.site).and_then(|s| s.row_of.get(&h.id).map(|&r| s.vectors.row(r)));
            match found {
                Some(v) if h.weight.is_finite() && h.weight > 0.0 => {
                    items.push((items.len() as ItemId, h.weight));
                    data.extend_from_slice(v);
                    site_of.push(site_ids[h.site.as_str()]);
                    origin.push(h);
                }
                Some(_) => {}
                None => unknown += 1,
            }
        }
        let present = vec![true; items.len()];
        let space = SliceSpace { dim, data: &data, present: &present, site_of: &site_of };
        let queries = target_queries(&site_groups(&space, &items, req.interests), req.interests, dim, identity);
        let profile = if req.interests == 1 {
            queries.first().cloned().unwrap_or_default()
        } else {
            target_queries(&site_groups(&space, &items, 1), 1, dim, identity).pop().unwrap_or_default()
        };
        let tv = &target.vectors;
        let scored: Vec<(ItemId, f32)> = (0..tv.len())
            .filter(|&r| !seen_target.contains(tv.ids[r].as_str()))
            .filter(|&r| {
                filter.is_empty()
                    || target.meta.get(&tv.ids[r]).is_some_and(|m| filter.allows(m.price_usd, &m.category))
            })
            .map(|r| (r as ItemId, item_score(&queries, Some(tv.row(r)), tv.prior[r], req.pop_weight)))
            .filter(|e| e.1.is_finite())
            .collect();
        let top = best_k(&scored, req.k, req.diversity, |a, b| dot(tv.row(a as usize), tv.row(b as usize)));
        let items_out = top
            .into_iter()
            .map(|(r, score)| {
                let v = tv.row(r as usize);
                let because = items
                    .iter()
                    .map(|&(n, w)| (n as usize, w * dot(&data[n as usize * dim..(n as usize + 1) * dim], v)))
                    .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
                    .map(|(n, _)| Because { site: origin[n].site.clone(), id: origin[n].id.clone() });
                RankedItem { id: tv.ids[r as usize].clone(), score, because }
            })
            .collect();
        Ok(RankResponse { items: items_out, profile, used: items.len(), unknown })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shop(ids: &[&str], rows: &[[f32; 2]]) -> Vec<u8> {
        SiteVectors {
            dim: 2,
            ids: ids.iter().map(|s| s.to_string()).collect(),
            data: rows.iter().flatten().copied().collect(),
            prior: vec![0.5; ids.len()],
        }
        .encode(false)
    }

    #[test]
    fn ranks_the_target_from_other_shops_with_reasons_and_filters() {
        let mut d = Device::new();
        d.load_shop("a", &shop(&["shoe", "hat"], &[[1.0, 0.0], [0.0, 1.0]]), None).unwrap();
        let catalog = vec![
            RowMeta { id: "boot".into(), price_usd: Some(80.0), category: vec!["Footwear".into()] },
            RowMeta { id: "cap".into(), price_usd: Some(10.0), category: vec!["Hats".into()] },
            RowMeta { id: "sandal".into(), price_usd: Some(20.0), category: vec!["Footwear".into()] },
        ];
        d.load_shop("b", &shop(&["boot", "cap", "sandal"], &[[0.99, 0.14], [0.0, 1.0], [0.8, 0.6]]), Some(catalog))
            .unwrap();
        let req = |json: &str| -> RankRequest { serde_json::from_str(json).unwrap() };
        let r = d
            .rank(&req(r#"{"target":"b","history":[{"site":"a","id":"shoe"},{"site":"a","id":"gone"}],"k":2}"#))
            .unwrap();
        assert_eq!(r.items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["boot", "sandal"]);
        assert_eq!(r.items[0].because, Some(Because { site: "a".into(), id: "shoe".into() }));
        assert_eq!((r.used, r.unknown), (1, 1));
        assert!((r.profile[0] - 1.0).abs() < 1e-6);
        let cheap = d.rank(&req(r#"{"target":"b","history":[{"site":"a","id":"shoe"}],"max_price":50}"#)).unwrap();
        assert_eq!(cheap.items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["sandal", "cap"]);
        let seen =
            d.rank(&req(r#"{"target":"b","history":[{"site":"a","id":"shoe"},{"site":"b","id":"boot"}]}"#)).unwrap();
        assert!(seen.items.iter().all(|i| i.id != "boot"), "items seen on the target are not shown");
        for bad in [
            r#"{"target":"c","history":[]}"#,
            r#"{"target":"b","history":[],"k":0}"#,
            r#"{"target":"b","history":[],"diversity":1}"#,
        ] {
            assert!(d.rank(&req(bad)).is_err(), "{bad}");
        }
        // neighbour lists: scores are weighted sums of similarities; reasons name the source
        let lists = NeighbourLists {
            targets: vec!["boot".into(), "cap".into(), "sandal".into()],
            sources: vec![("a".into(), "shoe".into()), ("a".into(), "hat".into())],
            lists: vec![vec![(0, 0.5), (2, 0.4)], vec![(1, 0.9), (2, 0.2)]],
        };
        d.load_neighbours("b", &lists.encode()).unwrap();
        let nb = d
            .rank(&req(r#"{"target":"b","model":"neighbours","history":[{"site":"a","id":"shoe","weight":1},{"site":"a","id":"hat","weight":0.2}],"k":3}"#))
            .unwrap();
        let got: Vec<(&str, f32)> = nb.items.iter().map(|i| (i.id.as_str(), i.score)).collect();
        assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), ["boot", "sandal", "cap"]);
        assert!((got[1].1 - (0.4 + 0.2 * 0.2)).abs() < 1e-6);
        assert_eq!(nb.items[2].because, Some(Because { site: "a".into(), id: "hat".into() }));
        assert!(d.rank(&req(r#"{"target":"a","model":"neighbours","history":[]}"#)).is_err(), "no lists into a");
        assert!(d.rank(&req(r#"{"target":"b","model":"als","history":[]}"#)).is_err());
        assert!(d.load_shop("c", b"WSVEC001 short", None).is_err());
        assert!(
            d.load_shop(
                "c",
                &SiteVectors { dim: 3, ids: vec!["x".into()], data: vec![1.0; 3], prior: vec![0.0] }.encode(true),
                None
            )
            .is_err(),
            "another dimension"
        );
    }
}
