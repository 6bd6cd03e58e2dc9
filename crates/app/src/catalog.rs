//! The live catalog of one dataset group: sites, products with their metadata, the external
//! ↔ internal id maps per site, content vectors, and the changes made while serving
//! (upserts append new item ids after the stored dataset's; removals hide items).

use std::collections::HashMap;

use warmstart_core::{Dataset, ItemId, ItemVectors, Product, ProductMeta, SiteId};

use crate::request::ProductInput;
use crate::{Error, Result};

/// A dataset group's products as served.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// Dataset group.
    pub dataset: String,
    /// Site keys and names, by site id.
    pub sites: Vec<(String, String)>,
    products: Vec<ProductMeta>,
    by_key: HashMap<(SiteId, String), ItemId>,
    site_items: Vec<Vec<ItemId>>,
    removed: Vec<bool>,
    base_items: usize,
    /// Content vectors (row per item id; `present` tells which exist).
    vectors: Option<ItemVectors>,
    /// Training interactions per item (0 for new items).
    popularity: Vec<f32>,
    /// Bumped by every change (ETags).
    version: u64,
}

impl Catalog {
    /// The catalog of a loaded dataset, its content vectors and the removed products.
    pub fn new(d: &Dataset, vectors: Option<ItemVectors>, removed: &[(String, String)]) -> Result<Catalog> {
        if let Some(v) = &vectors {
            if v.n_items() != d.n_items() {
                return Err(Error::bad("vectors", format!("{} vectors for {} products", v.n_items(), d.n_items())));
            }
        }
        let dataset = d.sites.first().map(|s| s.dataset.clone()).unwrap_or_default();
        let mut by_key = HashMap::with_capacity(d.n_items());
        for (i, p) in d.products.iter().enumerate() {
            by_key.insert((p.site, p.external_id.clone()), i as ItemId);
        }
        let mut popularity = vec![0f32; d.n_items()];
        for r in &d.interactions {
            popularity[r.item as usize] += 1.0;
        }
        let mut c = Catalog {
            dataset,
            sites: d.sites.iter().map(|s| (s.key.clone(), s.name.clone())).collect(),
            products: d.products.clone(),
            by_key,
            site_items: d.sites.iter().map(|s| s.items.clone().collect()).collect(),
            removed: vec![false; d.n_items()],
            base_items: d.n_items(),
            vectors,
            popularity,
            version: 1,
        };
        for (site, id) in removed {
            if let Some(s) = c.site(site) {
                c.remove(s, id);
            }
        }
        Ok(c)
    }

    /// Site id by key.
    pub fn site(&self, key: &str) -> Option<SiteId> {
        self.sites.iter().position(|s| s.0 == key).map(|p| p as SiteId)
    }
    /// Site key.
    pub fn site_key(&self, s: SiteId) -> &str {
        &self.sites[s as usize].0
    }
    /// Item id of a live product.
    pub fn item(&self, site: SiteId, external_id: &str) -> Option<ItemId> {
        self.by_key.get(&(site, external_id.to_string())).copied().filter(|&i| !self.removed[i as usize])
    }
    /// Metadata of an item.
    pub fn product(&self, i: ItemId) -> &ProductMeta {
        &self.products[i as usize]
    }
    /// Number of item ids (live, removed and new).
    pub fn n_items(&self) -> usize {
        self.products.len()
    }
    /// Item ids of the stored dataset (`0..base_items`); later ones were upserted while serving.
    pub fn base_items(&self) -> usize {
        self.base_items
    }
    /// Live items of a site, in id order.
    pub fn live_items(&self, site: SiteId) -> &[ItemId] {
        &self.site_items[site as usize]
    }
    /// Whether an item is served.
    pub fn is_live(&self, i: ItemId) -> bool {
        !self.removed.get(i as usize).copied().unwrap_or(true)
    }
    /// Content vector of an item.
    pub fn vector(&self, i: ItemId) -> Option<&[f32]> {
        let v = self.vectors.as_ref()?;
        v.present.get(i as usize).copied().unwrap_or(false).then(|| v.row(i))
    }
    /// Dimension of the content space (0 without one).
    pub fn dim(&self) -> usize {
        self.vectors.as_ref().map(|v| v.dim).unwrap_or(0)
    }
    /// Training interaction count of an item.
    pub fn popularity(&self, i: ItemId) -> f32 {
        self.popularity.get(i as usize).copied().unwrap_or(0.0)
    }
    /// Change counter.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Adds or replaces a product (and its content vector when given); returns its id and
    /// whether it is new.
    pub fn upsert(&mut self, site: SiteId, meta: ProductMeta, vector: Option<Vec<f32>>) -> Result<(ItemId, bool)> {
        let key = (site, meta.external_id.clone());
        let (id, created) = match self.by_key.get(&key) {
            Some(&i) => {
                self.products[i as usize] = meta;
                if self.removed[i as usize] {
                    self.removed[i as usize] = false;
                    let items = &mut self.site_items[site as usize];
                    let pos = items.binary_search(&i).unwrap_or_else(|p| p);
                    items.insert(pos, i);
                }
                (i, false)
            }
            None => {
                let i = self.products.len() as ItemId;
                self.products.push(meta);
                self.removed.push(false);
                self.popularity.push(0.0);
                self.by_key.insert(key, i);
                self.site_items[site as usize].push(i); // the largest id: order kept
                if let Some(v) = self.vectors.as_mut() {
                    v.data.extend(std::iter::repeat_n(0.0, v.dim));
                    v.present.push(false);
                }
                (i, true)
            }
        };
        if let (Some(vec), Some(v)) = (vector, self.vectors.as_mut()) {
            if vec.len() != v.dim {
                return Err(Error::bad("vector", format!("dimension {} for a {}-d catalog", vec.len(), v.dim)));
            }
            v.data[id as usize * v.dim..(id as usize + 1) * v.dim].copy_from_slice(&vec);
            v.present[id as usize] = true;
        }
        self.version += 1;
        Ok((id, created))
    }

    /// Hides a product from the served catalog; its id if it was live.
    pub fn remove(&mut self, site: SiteId, external_id: &str) -> Option<ItemId> {
        let i = self.item(site, external_id)?;
        self.removed[i as usize] = true;
        let items = &mut self.site_items[site as usize];
        if let Ok(p) = items.binary_search(&i) {
            items.remove(p);
        }
        self.version += 1;
        Some(i)
    }
}

/// Cleans a product given through the API the way importers clean theirs (HTML and
/// entities removed, brand canonicalised, prices parsed with their currency).
pub fn normalize_product(site: &str, input: &ProductInput, field: &str) -> Result<Product> {
    use warmstart_ingest::normalize::{canonical_brand, clean_text, parse_price, split_category};
    let id = input.id.as_deref().map(str::trim).unwrap_or_default();
    if id.is_empty() || id.len() > 256 || id.chars().any(char::is_control) {
        return Err(Error::bad(format!("{field}.id"), "a product id of 1–256 printable characters is required"));
    }
    let mut p = Product::new(site, id, clean_text(&input.title));
    if p.title.is_empty() {
        return Err(Error::bad(format!("{field}.title"), "a title is required"));
    }
    p.brand = input.brand.as_deref().and_then(canonical_brand);
    p.description = input.description.as_deref().map(clean_text).filter(|d| !d.is_empty());
    p.category = match input.category.as_slice() {
        [one] => split_category(one),
        many => many.iter().map(|c| clean_text(c)).filter(|c| !c.is_empty()).collect(),
    };
    let currency = match input.currency.as_deref().map(str::trim) {
        None => None,
        Some(c) if c.len() == 3 && c.bytes().all(|b| b.is_ascii_alphabetic()) => Some(c.to_ascii_uppercase()),
        Some(c) => {
            return Err(Error::bad(format!("{field}.currency"), format!("`{c}` is not a three-letter ISO 4217 code")))
        }
    };
    p.price = match &input.price {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Number(n)) => {
            let text = format!("{} {}", n, currency.as_deref().unwrap_or("USD"));
            Some(parse_price(&text, None).map_err(|e| Error::bad(format!("{field}.price"), e.to_string()))?)
        }
        Some(serde_json::Value::String(s)) => {
            Some(parse_price(s, currency.as_deref()).map_err(|e| Error::bad(format!("{field}.price"), e.to_string()))?)
        }
        Some(other) => {
            return Err(Error::bad(format!("{field}.price"), format!("expected a number or text, got {other}")))
        }
    };
    p.image =
        input.image_url.as_deref().filter(|u| !u.trim().is_empty()).map(|u| warmstart_core::ImageRef(u.trim().into()));
    p.refresh_missing();
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use warmstart_core::{DatasetBuilder, Site};

    #[test]
    fn upserts_append_and_removals_hide() {
        let sites = vec![Site { key: "a".into(), name: "A".into(), dataset: "d".into() }];
        let products = vec![Product::new("a", "1", "one"), Product::new("a", "2", "two")];
        let d = DatasetBuilder::from_records(&sites, &products, &[]).unwrap();
        let v = ItemVectors { dim: 2, data: vec![1.0, 0.0, 0.0, 1.0], present: vec![true, true] };
        let mut c = Catalog::new(&d, Some(v), &[("a".into(), "2".into())]).unwrap();
        assert_eq!(c.live_items(0), &[0]);
        assert_eq!(c.item(0, "2"), None);
        let input = ProductInput { id: Some("3".into()), title: "<b>Three</b> &amp; co".into(), ..Default::default() };
        let p = normalize_product("a", &input, "products[0]").unwrap();
        assert_eq!(p.title, "Three & co");
        let (id, created) = c.upsert(0, ProductMeta::of(0, &p), Some(vec![0.6, 0.8])).unwrap();
        assert_eq!((id, created), (2, true));
        assert_eq!(c.vector(2), Some(&[0.6, 0.8][..]));
        // an upsert brings a removed product back
        let two = normalize_product(
            "a",
            &ProductInput { id: Some("2".into()), title: "two".into(), ..Default::default() },
            "p",
        )
        .unwrap();
        assert_eq!(c.upsert(0, ProductMeta::of(0, &two), None).unwrap(), (1, false));
        assert_eq!(c.live_items(0), &[0, 1, 2]);
        assert!(c.upsert(0, ProductMeta::of(0, &two), Some(vec![1.0])).is_err(), "wrong dimension");
        assert_eq!(c.remove(0, "1"), Some(0));
        assert_eq!(c.live_items(0), &[1, 2]);
        let bad = ProductInput {
            id: Some("x".into()),
            title: "t".into(),
            price: Some(serde_json::json!("abc")),
            ..Default::default()
        };
        let err = normalize_product("a", &bad, "products[4]").unwrap_err().to_string();
        assert!(err.contains("products[4].price"), "{err}");
        assert!(normalize_product("a", &ProductInput { title: "t".into(), ..Default::default() }, "p").is_err());
    }
}
