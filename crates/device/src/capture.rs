//! Products of a shop page, read with the importer's extraction and normalisation rules.

use serde::Serialize;
use warmstart_ingest::html::{classify, to_product, PageKind};

/// One product seen on a page, normalised.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapturedProduct {
    /// The shop's id (sku, productID, gtin, or the page URL).
    pub id: String,
    /// Cleaned title.
    pub title: String,
    /// Canonical brand.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    /// Category path.
    pub category: Vec<String>,
    /// Approximate price in USD.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price_usd: Option<f64>,
    /// Photo URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

/// What a page is and the products on it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapturedPage {
    /// `product` (a view), `order` (a purchase of every product) or `other`.
    pub kind: PageKind,
    /// Products marked up on the page.
    pub products: Vec<CapturedProduct>,
}

/// Reads a page of `site` at `url` (the id of a product without one in its markup).
pub fn capture(html: &str, url: &str, site: &str) -> CapturedPage {
    let (kind, raw) = classify(html);
    let products = raw
        .into_iter()
        .enumerate()
        .map(|(n, r)| {
            let fallback = if n == 0 { url.to_string() } else { format!("{url}#{n}") };
            let (p, _) = to_product(r, site, &fallback, None);
            CapturedProduct {
                id: p.external_id,
                title: p.title,
                brand: p.brand,
                category: p.category,
                price_usd: p.price.and_then(|x| x.approx_usd()),
                image: p.image.map(|i| i.0),
            }
        })
        .filter(|p| !p.id.is_empty())
        .collect();
    CapturedPage { kind, products }
}
