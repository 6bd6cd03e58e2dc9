//! Row ↔ type conversions both backends share, so that a dataset loaded from SQLite and from
//! PostgreSQL is built by the same code.

use std::collections::HashMap;

use warmstart_core::{Dataset, DatasetBuilder, EventTime, InteractionKind, InteractionRow, ProductMeta, Split};

/// `(time_kind, time)` columns of an event time.
pub(crate) fn time_cols(t: Option<EventTime>) -> (i64, i64) {
    match t {
        None => (0, 0),
        Some(EventTime::Timestamp(v)) => (1, v),
        Some(EventTime::Sequence(v)) => (2, v),
    }
}

/// The event time stored as `(time_kind, time)`.
pub(crate) fn time_from_cols(kind: i64, v: i64) -> Option<EventTime> {
    match kind {
        1 => Some(EventTime::Timestamp(v)),
        2 => Some(EventTime::Sequence(v)),
        _ => None,
    }
}

/// A product's free attributes from their JSON column.
pub(crate) fn parse_attributes(text: &str) -> Vec<(String, String)> {
    let map: std::collections::BTreeMap<String, String> = serde_json::from_str(text).unwrap_or_default();
    map.into_iter().collect()
}

/// The product columns both backends derive from a [`Product`](warmstart_core::Product) the
/// same way.
pub(crate) struct StoredProduct {
    /// Free attributes as JSON.
    pub attrs: String,
    pub price: Option<f64>,
    pub cur: Option<String>,
    pub usd: Option<f64>,
    pub image: Option<String>,
    /// Category path, `None` when empty.
    pub cat: Option<String>,
}

impl StoredProduct {
    pub fn of(p: &warmstart_core::Product) -> StoredProduct {
        let (price, cur, usd) = match p.price {
            Some(pr) => (Some(pr.amount), Some(pr.currency_code().to_string()), pr.approx_usd()),
            None => (None, None, None),
        };
        StoredProduct {
            attrs: serde_json::to_string(&p.attributes).unwrap_or_else(|_| "{}".into()),
            price,
            cur,
            usd,
            image: p.image.as_ref().map(|i| i.0.clone()),
            cat: (!p.category.is_empty()).then(|| p.category_path()),
        }
    }
}

/// A product row as `load_dataset` reads it.
pub(crate) struct ProductRow {
    pub id: i64,
    pub external_id: String,
    pub title: String,
    pub brand: Option<String>,
    pub category: Option<String>,
    pub price_usd: Option<f64>,
    pub image: Option<String>,
}

impl ProductRow {
    /// Catalog metadata on site `site`.
    pub fn meta(self, site: u32) -> ProductMeta {
        ProductMeta {
            site,
            external_id: self.external_id,
            title: self.title,
            brand: self.brand,
            category: self.category.map(|c| c.split(" > ").map(str::to_string).collect()).unwrap_or_default(),
            price_usd: self.price_usd,
            image: self.image,
        }
    }
}

/// An interaction row as `load_dataset` reads it.
pub(crate) struct InteractionDbRow {
    pub user_id: i64,
    pub user_key: String,
    pub product_id: i64,
    pub kind: i64,
    pub value: Option<f64>,
    pub time_kind: i64,
    pub time: i64,
    pub split: i64,
}

/// Builds a [`Dataset`] from store rows: sites, then each site's products, then
/// interactions, each in store order.
#[derive(Default)]
pub(crate) struct DatasetAssembler {
    builder: DatasetBuilder,
    item_of: HashMap<i64, u32>,
    user_of: HashMap<i64, u32>,
    site: u32,
}

impl DatasetAssembler {
    pub fn site(&mut self, key: &str, name: &str, dataset: &str) {
        self.site = self.builder.push_site(key, name, dataset);
    }

    pub fn product(&mut self, row: ProductRow) {
        let id = row.id;
        let item = self.builder.push_product(row.meta(self.site));
        self.item_of.insert(id, item);
    }

    pub fn interaction(&mut self, r: InteractionDbRow) {
        let builder = &mut self.builder;
        let user = *self.user_of.entry(r.user_id).or_insert_with(|| builder.push_user(r.user_key));
        let Some(&item) = self.item_of.get(&r.product_id) else { return };
        self.builder.interactions.push(InteractionRow {
            user,
            item,
            kind: InteractionKind::from_code(r.kind as u8).unwrap_or(InteractionKind::View),
            value: r.value.map(|v| v as f32),
            time: time_from_cols(r.time_kind, r.time),
            split: Split::from_code(r.split as u8).unwrap_or_default(),
        });
    }

    pub fn finish(self) -> crate::Result<Dataset> {
        Ok(self.builder.finish()?)
    }
}

/// Groups `(dataset, site key)` rows (ordered by dataset) into dataset groups.
pub(crate) fn group_sites(rows: impl IntoIterator<Item = (String, String)>) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for (d, k) in rows {
        match out.last_mut() {
            Some((ld, ks)) if *ld == d => ks.push(k),
            _ => out.push((d, vec![k])),
        }
    }
    out
}

/// `NotFound` unless `dataset` is one of `groups` (or `None`).
pub(crate) fn check_dataset(groups: &[(String, Vec<String>)], dataset: Option<&str>) -> crate::Result<()> {
    match dataset {
        Some(d) if !groups.iter().any(|g| g.0 == d) => Err(crate::Error::NotFound {
            what: "dataset",
            name: d.to_string(),
            have: groups.iter().map(|g| g.0.clone()).collect::<Vec<_>>().join(", "),
        }),
        _ => Ok(()),
    }
}
