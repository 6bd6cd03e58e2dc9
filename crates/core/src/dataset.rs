//! The in-memory dataset models train on: compact integer ids, products ordered by site so
//! that every site's catalog is one contiguous id range.

use std::collections::HashMap;
use std::ops::Range;

use crate::error::{Error, Result};
use crate::matrix::CsrMatrix;
use crate::record::{EventTime, InteractionKind, Product, Site, Split};

/// Compact id of a site (index into [`Dataset::sites`]).
pub type SiteId = u32;
/// Compact id of a product, global across sites (index into [`Dataset::products`]).
pub type ItemId = u32;
/// Compact id of a user (index into [`Dataset::users`]).
pub type UserId = u32;

/// A site with the id range of its products.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteInfo {
    /// Unique key.
    pub key: String,
    /// Display name.
    pub name: String,
    /// Dataset group.
    pub dataset: String,
    /// Global item ids of the site's catalog.
    pub items: Range<ItemId>,
}

impl SiteInfo {
    /// Number of products in the site's catalog.
    pub fn n_items(&self) -> usize {
        (self.items.end - self.items.start) as usize
    }
}

/// The product fields models use.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductMeta {
    /// Site selling it.
    pub site: SiteId,
    /// Shop's own id.
    pub external_id: String,
    /// Cleaned title.
    pub title: String,
    /// Canonical brand.
    pub brand: Option<String>,
    /// Category path.
    pub category: Vec<String>,
    /// Approximate price in USD.
    pub price_usd: Option<f64>,
    /// Image reference.
    pub image: Option<String>,
}

impl ProductMeta {
    /// The metadata of a normalised product on `site`.
    pub fn of(site: SiteId, p: &Product) -> ProductMeta {
        ProductMeta {
            site,
            external_id: p.external_id.clone(),
            title: p.title.clone(),
            brand: p.brand.clone(),
            category: p.category.clone(),
            price_usd: p.price.and_then(|x| x.approx_usd()),
            image: p.image.as_ref().map(|i| i.0.clone()),
        }
    }
}

/// One interaction with compact ids.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InteractionRow {
    /// User.
    pub user: UserId,
    /// Product.
    pub item: ItemId,
    /// Kind.
    pub kind: InteractionKind,
    /// Rating or quantity.
    pub value: Option<f32>,
    /// Time or sequence position.
    pub time: Option<EventTime>,
    /// Published split.
    pub split: Split,
}

/// Users shared by two sites.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SiteOverlap {
    /// First site key.
    pub a: String,
    /// Second site key.
    pub b: String,
    /// Users with at least one interaction on both.
    pub users: usize,
}

/// Sites, products, users and interactions with compact ids.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    /// Sites; `sites[s].items` are contiguous and ordered by `s`.
    pub sites: Vec<SiteInfo>,
    /// Products, ordered by site.
    pub products: Vec<ProductMeta>,
    /// User keys.
    pub users: Vec<String>,
    /// All interactions.
    pub interactions: Vec<InteractionRow>,
}

impl Dataset {
    /// Number of users.
    pub fn n_users(&self) -> usize {
        self.users.len()
    }
    /// Number of products over all sites.
    pub fn n_items(&self) -> usize {
        self.products.len()
    }
    /// Site id by key.
    pub fn site_by_key(&self, key: &str) -> Result<SiteId> {
        self.sites
            .iter()
            .position(|s| s.key == key)
            .map(|p| p as SiteId)
            .ok_or_else(|| Error::Missing { what: "site", key: key.to_string() })
    }
    /// Site of a product.
    pub fn site_of(&self, item: ItemId) -> SiteId {
        self.products[item as usize].site
    }

    /// User × item matrix (all sites) over the interactions that `keep` accepts, each
    /// contributing `weight(row)`; repeated user–item pairs are summed.
    pub fn matrix(&self, keep: impl Fn(&InteractionRow) -> bool, weight: impl Fn(&InteractionRow) -> f32) -> CsrMatrix {
        let trip: Vec<(u32, u32, f32)> =
            self.interactions.iter().filter(|r| keep(r)).map(|r| (r.user, r.item, weight(r))).collect();
        CsrMatrix::from_triplets(self.n_users(), self.n_items(), &trip)
    }

    /// Binary user × item matrix of all interactions.
    pub fn interaction_matrix(&self) -> CsrMatrix {
        self.matrix(|_| true, |_| 1.0).map_values(|_| 1.0)
    }

    /// User × site-catalog matrix (columns are `item - site.items.start`), binary.
    pub fn site_matrix(&self, site: SiteId) -> CsrMatrix {
        let range = self.sites[site as usize].items.clone();
        let trip: Vec<(u32, u32, f32)> = self
            .interactions
            .iter()
            .filter(|r| range.contains(&r.item))
            .map(|r| (r.user, r.item - range.start, 1.0))
            .collect();
        CsrMatrix::from_triplets(self.n_users(), range.len(), &trip).map_values(|_| 1.0)
    }

    /// For every user, the sites they interacted on (any number of sites).
    pub fn user_sites(&self) -> UserSites {
        let mut pairs: Vec<(UserId, SiteId)> =
            self.interactions.iter().map(|r| (r.user, self.products[r.item as usize].site)).collect();
        pairs.sort_unstable();
        pairs.dedup();
        let mut offsets = vec![0usize; self.n_users() + 1];
        for &(u, _) in &pairs {
            offsets[u as usize + 1] += 1;
        }
        for u in 0..self.n_users() {
            offsets[u + 1] += offsets[u];
        }
        UserSites { offsets, sites: pairs.into_iter().map(|p| p.1).collect() }
    }

    /// Number of users active on each pair of sites (within the same dataset group).
    pub fn overlap(&self) -> Vec<SiteOverlap> {
        let n = self.sites.len();
        let mut counts = vec![0usize; n * n];
        let us = self.user_sites();
        for u in 0..self.n_users() as UserId {
            let s = us.sites(u);
            for (i, &a) in s.iter().enumerate() {
                for &b in &s[i + 1..] {
                    counts[a as usize * n + b as usize] += 1;
                }
            }
        }
        let mut out = Vec::new();
        for a in 0..n {
            for b in a + 1..n {
                if self.sites[a].dataset != self.sites[b].dataset {
                    continue;
                }
                out.push(SiteOverlap {
                    a: self.sites[a].key.clone(),
                    b: self.sites[b].key.clone(),
                    users: counts[a * n + b],
                });
            }
        }
        out
    }

    /// The part of the dataset on the given sites (ids are renumbered; users without any
    /// interaction there are dropped).
    pub fn subset(&self, sites: &[SiteId]) -> Dataset {
        let mut b = DatasetBuilder::default();
        let mut item_map = vec![u32::MAX; self.n_items()];
        for &s in sites {
            let info = &self.sites[s as usize];
            let ns = b.push_site(&info.key, &info.name, &info.dataset);
            for it in info.items.clone() {
                let p = &self.products[it as usize];
                item_map[it as usize] = b.push_product(ProductMeta { site: ns, ..p.clone() });
            }
        }
        let mut user_map: HashMap<UserId, UserId> = HashMap::new();
        for r in &self.interactions {
            let it = item_map[r.item as usize];
            if it == u32::MAX {
                continue;
            }
            let next = user_map.len() as UserId;
            let u = *user_map.entry(r.user).or_insert_with(|| {
                b.users.push(self.users[r.user as usize].clone());
                next
            });
            b.interactions.push(InteractionRow { user: u, item: it, ..*r });
        }
        b.finish().expect("subset of a consistent dataset is consistent")
    }

    /// Users with no training interaction on `site` but some in `split` (the published
    /// cold-start users of a site).
    pub fn users_with_split_on_site(&self, site: SiteId, split: Split) -> Vec<UserId> {
        let range = &self.sites[site as usize].items;
        let mut state = vec![0u8; self.n_users()]; // bit0: has `split`, bit1: has train
        for r in &self.interactions {
            if range.contains(&r.item) {
                if r.split == split {
                    state[r.user as usize] |= 1;
                } else if r.split == Split::Train {
                    state[r.user as usize] |= 2;
                }
            }
        }
        (0..self.n_users() as UserId).filter(|&u| state[u as usize] == 1).collect()
    }
}

/// Builds a [`Dataset`]: sites first, then each site's products, then users and interactions.
#[derive(Debug, Default)]
pub struct DatasetBuilder {
    sites: Vec<SiteInfo>,
    products: Vec<ProductMeta>,
    /// User keys pushed so far.
    pub users: Vec<String>,
    /// Interactions pushed so far.
    pub interactions: Vec<InteractionRow>,
}

impl DatasetBuilder {
    /// Starts a new site; products pushed after it belong to it.
    pub fn push_site(&mut self, key: &str, name: &str, dataset: &str) -> SiteId {
        let start = self.products.len() as ItemId;
        self.sites.push(SiteInfo { key: key.into(), name: name.into(), dataset: dataset.into(), items: start..start });
        (self.sites.len() - 1) as SiteId
    }

    /// Adds a product to the last site pushed; returns its id.
    pub fn push_product(&mut self, p: ProductMeta) -> ItemId {
        let id = self.products.len() as ItemId;
        if let Some(s) = self.sites.last_mut() {
            s.items.end = id + 1;
        }
        self.products.push(p);
        id
    }

    /// Adds a user; returns its id.
    pub fn push_user(&mut self, key: String) -> UserId {
        self.users.push(key);
        (self.users.len() - 1) as UserId
    }

    /// Builds the dataset from in-memory records keyed by external ids (for tests and
    /// small tools; the store loads large data directly).
    pub fn from_records(sites: &[Site], products: &[Product], interactions: &[crate::Interaction]) -> Result<Dataset> {
        let mut b = DatasetBuilder::default();
        let mut pid: HashMap<(&str, &str), ItemId> = HashMap::new();
        for s in sites {
            let sid = b.push_site(&s.key, &s.name, &s.dataset);
            for p in products.iter().filter(|p| p.site == s.key) {
                let id = b.push_product(ProductMeta::of(sid, p));
                pid.insert((s.key.as_str(), p.external_id.as_str()), id);
            }
        }
        let mut uid: HashMap<&str, UserId> = HashMap::new();
        for i in interactions {
            let item = *pid.get(&(i.site.as_str(), i.product.as_str())).ok_or_else(|| {
                Error::Inconsistent(format!("interaction names unknown product {}/{}", i.site, i.product))
            })?;
            let user = match uid.get(i.user.as_str()) {
                Some(u) => *u,
                None => {
                    let u = b.push_user(i.user.clone());
                    uid.insert(&i.user, u);
                    u
                }
            };
            b.interactions.push(InteractionRow {
                user,
                item,
                kind: i.kind,
                value: i.value,
                time: i.time,
                split: i.split,
            });
        }
        b.finish()
    }

    /// Checks ids and returns the dataset.
    pub fn finish(self) -> Result<Dataset> {
        let (nu, ni) = (self.users.len() as u32, self.products.len() as u32);
        if let Some(r) = self.interactions.iter().find(|r| r.user >= nu || r.item >= ni) {
            return Err(Error::Inconsistent(format!(
                "interaction ({}, {}) out of range ({nu} users, {ni} items)",
                r.user, r.item
            )));
        }
        Ok(Dataset { sites: self.sites, products: self.products, users: self.users, interactions: self.interactions })
    }
}

/// The sites each user interacted on, sorted (compressed rows: any number of sites).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSites {
    offsets: Vec<usize>,
    sites: Vec<SiteId>,
}

impl UserSites {
    /// The sites of a user, ascending (empty for an unknown user).
    pub fn sites(&self, user: UserId) -> &[SiteId] {
        match (self.offsets.get(user as usize), self.offsets.get(user as usize + 1)) {
            (Some(&a), Some(&b)) => &self.sites[a..b],
            _ => &[],
        }
    }

    /// Whether a user interacted on a site.
    pub fn has(&self, user: UserId, site: SiteId) -> bool {
        self.sites(user).binary_search(&site).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Interaction;

    fn inter(u: &str, s: &str, p: &str) -> Interaction {
        Interaction {
            user: u.into(),
            site: s.into(),
            product: p.into(),
            kind: InteractionKind::Purchase,
            value: None,
            text: None,
            time: None,
            split: Split::Train,
        }
    }

    #[test]
    fn builds_contiguous_sites_and_overlap() {
        let sites = vec![
            Site { key: "a".into(), name: "A".into(), dataset: "d".into() },
            Site { key: "b".into(), name: "B".into(), dataset: "d".into() },
        ];
        let products = vec![Product::new("b", "x", "X"), Product::new("a", "y", "Y"), Product::new("a", "z", "Z")];
        let inters = vec![inter("u1", "a", "y"), inter("u1", "b", "x"), inter("u2", "a", "z"), inter("u2", "a", "z")];
        let d = DatasetBuilder::from_records(&sites, &products, &inters).unwrap();
        assert_eq!(d.sites[0].items, 0..2);
        assert_eq!(d.sites[1].items, 2..3);
        assert_eq!(d.overlap()[0].users, 1);
        let m = d.interaction_matrix();
        assert_eq!(m.nnz(), 3);
        let sm = d.site_matrix(1);
        assert_eq!((sm.n_rows(), sm.n_cols(), sm.nnz()), (2, 1, 1));
        let sub = d.subset(&[1]);
        assert_eq!((sub.n_users(), sub.n_items()), (1, 1));
        assert!(DatasetBuilder::from_records(&sites, &products, &[inter("u", "a", "nope")]).is_err());
    }

    #[test]
    fn more_than_64_sites_are_all_counted() {
        let sites: Vec<Site> =
            (0..70).map(|s| Site { key: format!("s{s}"), name: format!("S{s}"), dataset: "d".into() }).collect();
        let products: Vec<Product> = (0..70).map(|s| Product::new(format!("s{s}"), "p", "P")).collect();
        // u1 on sites 0 and 69, u2 on 65 and 66 (beyond any 64-bit mask)
        let inters =
            vec![inter("u1", "s0", "p"), inter("u1", "s69", "p"), inter("u2", "s65", "p"), inter("u2", "s66", "p")];
        let d = DatasetBuilder::from_records(&sites, &products, &inters).unwrap();
        let us = d.user_sites();
        assert_eq!(us.sites(0), &[0, 69]);
        assert!(us.has(1, 65) && us.has(1, 66) && !us.has(1, 0));
        assert!(us.sites(7).is_empty());
        let pairs: Vec<(String, String, usize)> =
            d.overlap().into_iter().filter(|o| o.users > 0).map(|o| (o.a, o.b, o.users)).collect();
        assert_eq!(pairs, vec![("s0".into(), "s69".into(), 1), ("s65".into(), "s66".into(), 1)]);
    }
}

/// Content vectors of a dataset's items, aligned with its item ids (row `i` is item `i`);
/// items without a vector have `present[i] == false` and a zero row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ItemVectors {
    /// Dimension.
    pub dim: usize,
    /// Row-major `n_items × dim`.
    pub data: Vec<f32>,
    /// Whether each item has a vector.
    pub present: Vec<bool>,
}

impl ItemVectors {
    /// The vector of item `i`.
    pub fn row(&self, i: ItemId) -> &[f32] {
        &self.data[i as usize * self.dim..(i as usize + 1) * self.dim]
    }
    /// Number of items covered.
    pub fn n_items(&self) -> usize {
        self.present.len()
    }
    /// Items with a vector.
    pub fn count_present(&self) -> usize {
        self.present.iter().filter(|p| **p).count()
    }
}
