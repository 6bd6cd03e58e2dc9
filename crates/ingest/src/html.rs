//! Saved product pages, read the way a browser sees a shop: schema.org `Product` in JSON-LD,
//! microdata, and OpenGraph `product` tags, merged in that order of trust.

use std::path::{Path, PathBuf};

use crate::progress::ProgressBar;
use scraper::{ElementRef, Html, Selector};
use serde_json::Value;
use warmstart_core::{ImageRef, Product, Site};

use crate::error::{Error, Result};
use crate::normalize::{canonical_brand, clean_text, parse_price, split_category};
use crate::report::ImportReport;
use crate::util::read_text;
use crate::Import;

/// Options of the HTML importer.
#[derive(Debug, Clone, Default)]
pub struct HtmlOptions {
    /// Site key for every page (otherwise `og:site_name`, the page URL's host, or `web`).
    pub site: Option<String>,
    /// Dataset group (default `web`).
    pub dataset: Option<String>,
    /// Currency for prices without one.
    pub default_currency: Option<String>,
    /// Stop at the first page without product markup.
    pub strict: bool,
}

/// Product fields found on a page, before normalisation.
#[derive(Debug, Default, Clone)]
pub struct PageProduct {
    /// sku, productID, gtin or URL.
    pub id: Option<String>,
    /// Name.
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Brand.
    pub brand: Option<String>,
    /// Category text.
    pub category: Option<String>,
    /// Price text.
    pub price: Option<String>,
    /// Currency code.
    pub currency: Option<String>,
    /// Image URL.
    pub image: Option<String>,
    /// Page URL.
    pub url: Option<String>,
    /// Site name.
    pub site_name: Option<String>,
}

impl PageProduct {
    fn fill_from(&mut self, other: PageProduct) {
        macro_rules! fill {
            ($($f:ident),*) => { $( if self.$f.is_none() { self.$f = other.$f; } )* };
        }
        fill!(id, name, description, brand, category, price, currency, image, url, site_name);
    }
    fn is_product(&self) -> bool {
        self.name.is_some() || self.price.is_some()
    }
}

fn sel(s: &str) -> Selector {
    Selector::parse(s).expect("static selector is valid")
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(a) => a.iter().find_map(text_of),
        Value::Object(o) => ["name", "url", "@id", "contentUrl"].iter().find_map(|k| o.get(*k).and_then(text_of)),
        _ => None,
    }
}

fn is_product_type(v: Option<&Value>) -> bool {
    match v {
        Some(Value::String(s)) => s.ends_with("Product") || s.ends_with("ProductGroup"),
        Some(Value::Array(a)) => a.iter().any(|x| is_product_type(Some(x))),
        _ => false,
    }
}

fn json_product(o: &serde_json::Map<String, Value>) -> PageProduct {
    let get = |k: &str| o.get(k).and_then(text_of);
    let offer = o.get("offers").map(|x| match x {
        Value::Array(a) => a.first().cloned().unwrap_or(Value::Null),
        other => other.clone(),
    });
    let offer_get = |k: &str| offer.as_ref().and_then(|x| x.get(k)).and_then(text_of);
    PageProduct {
        id: get("sku")
            .or_else(|| get("productID"))
            .or_else(|| get("gtin13"))
            .or_else(|| get("gtin"))
            .or_else(|| get("mpn")),
        name: get("name"),
        description: get("description"),
        brand: get("brand"),
        category: get("category"),
        price: offer_get("price").or_else(|| offer_get("lowPrice")),
        currency: offer_get("priceCurrency"),
        image: get("image"),
        url: get("url"),
        site_name: None,
    }
}

fn collect_json_products(v: &Value, out: &mut Vec<PageProduct>) {
    match v {
        Value::Array(a) => a.iter().for_each(|x| collect_json_products(x, out)),
        Value::Object(o) => {
            if let Some(g) = o.get("@graph") {
                collect_json_products(g, out);
            }
            if is_product_type(o.get("@type")) {
                out.push(json_product(o));
            }
        }
        _ => {}
    }
}

fn has_type(v: Option<&Value>, name: &str) -> bool {
    match v {
        Some(Value::String(s)) => s == name || s.ends_with(&format!("/{name}")),
        Some(Value::Array(a)) => a.iter().any(|x| has_type(Some(x), name)),
        _ => false,
    }
}

/// Products anywhere inside a JSON-LD value (an order's `orderedItem`, `acceptedOffer`
/// `itemOffered`, ...), at most `depth` levels down.
fn nested_products(v: &Value, depth: usize, out: &mut Vec<PageProduct>) {
    if depth == 0 {
        return;
    }
    match v {
        Value::Array(a) => a.iter().for_each(|x| nested_products(x, depth - 1, out)),
        Value::Object(o) => {
            if is_product_type(o.get("@type")) {
                out.push(json_product(o));
            } else {
                o.values().for_each(|x| nested_products(x, depth - 1, out));
            }
        }
        _ => {}
    }
}

/// schema.org `Order` objects in JSON-LD (also inside `@graph`): the products of each.
fn json_ld_orders(doc: &Html) -> Vec<PageProduct> {
    fn walk(v: &Value, out: &mut Vec<PageProduct>) {
        match v {
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            Value::Object(o) => {
                if let Some(g) = o.get("@graph") {
                    walk(g, out);
                }
                if has_type(o.get("@type"), "Order") {
                    o.iter().filter(|(k, _)| !k.starts_with('@')).for_each(|(_, x)| nested_products(x, 8, out));
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for script in doc.select(&sel(r#"script[type="application/ld+json"]"#)) {
        let text: String = script.text().collect();
        if let Ok(v) = serde_json::from_str::<Value>(text.trim()) {
            walk(&v, &mut out);
        }
    }
    out
}

fn json_ld(doc: &Html) -> Vec<PageProduct> {
    let mut out = Vec::new();
    for script in doc.select(&sel(r#"script[type="application/ld+json"]"#)) {
        let text: String = script.text().collect();
        if let Ok(v) = serde_json::from_str::<Value>(text.trim()) {
            collect_json_products(&v, &mut out);
        }
    }
    out
}

fn microdata(doc: &Html) -> Vec<PageProduct> {
    let scope = sel("[itemscope][itemtype]");
    let prop = sel("[itemprop]");
    let mut out = Vec::new();
    for el in doc.select(&scope) {
        let ty = el.value().attr("itemtype").unwrap_or_default();
        if !(ty.ends_with("/Product") || ty.ends_with("/ProductGroup")) {
            continue;
        }
        let mut p = PageProduct::default();
        for child in el.select(&prop) {
            // Only properties whose nearest item scope is a product or its offer/brand.
            let value = prop_value(child);
            let Some(value) = value.filter(|v| !v.trim().is_empty()) else { continue };
            let slot = match child.value().attr("itemprop").unwrap_or_default() {
                "sku" | "productID" | "gtin13" | "mpn" => &mut p.id,
                "name" => {
                    if in_nested_scope(child, el, &["Brand", "Organization"]) {
                        &mut p.brand
                    } else {
                        &mut p.name
                    }
                }
                "description" => &mut p.description,
                "brand" if child.value().attr("itemscope").is_none() => &mut p.brand,
                "category" => &mut p.category,
                "price" | "lowPrice" => &mut p.price,
                "priceCurrency" => &mut p.currency,
                "image" => &mut p.image,
                "url" => &mut p.url,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(value);
            }
        }
        out.push(p);
    }
    out
}

fn in_nested_scope(child: ElementRef, root: ElementRef, types: &[&str]) -> bool {
    let mut node = child.parent();
    while let Some(n) = node {
        if n.id() == root.id() {
            return false;
        }
        if let Some(e) = ElementRef::wrap(n) {
            if e.value().attr("itemscope").is_some() {
                let ty = e.value().attr("itemtype").unwrap_or_default();
                return types.iter().any(|t| ty.ends_with(t));
            }
        }
        node = n.parent();
    }
    false
}

fn prop_value(el: ElementRef) -> Option<String> {
    let v = el.value();
    v.attr("content")
        .or_else(|| if matches!(v.name(), "img" | "source") { v.attr("src") } else { None })
        .or_else(|| if matches!(v.name(), "a" | "link") { v.attr("href") } else { None })
        .map(str::to_string)
        .or_else(|| Some(el.text().collect::<String>()))
}

fn open_graph(doc: &Html) -> Option<PageProduct> {
    let meta = sel("meta[property], meta[name]");
    let mut p = PageProduct::default();
    let mut is_product = false;
    for m in doc.select(&meta) {
        let key = m.value().attr("property").or_else(|| m.value().attr("name")).unwrap_or_default();
        let Some(content) = m.value().attr("content").map(str::to_string) else { continue };
        let slot = match key {
            "og:type" => {
                is_product |= content.contains("product");
                continue;
            }
            "og:title" => &mut p.name,
            "og:description" => &mut p.description,
            "og:image" => &mut p.image,
            "og:url" => &mut p.url,
            "og:site_name" => &mut p.site_name,
            "product:brand" => &mut p.brand,
            "product:category" => &mut p.category,
            "product:retailer_item_id" => &mut p.id,
            "product:price:amount" | "og:price:amount" => {
                is_product = true;
                &mut p.price
            }
            "product:price:currency" | "og:price:currency" => &mut p.currency,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(content);
        }
    }
    is_product.then_some(p)
}

/// All products marked up on one page (JSON-LD first, then microdata, then OpenGraph fills
/// gaps of the first product).
pub fn extract(html: &str) -> Vec<PageProduct> {
    let doc = Html::parse_document(html);
    let mut products = json_ld(&doc);
    let micro = microdata(&doc);
    if products.is_empty() {
        products = micro;
    } else if let Some(m) = micro.into_iter().next() {
        products[0].fill_from(m);
    }
    let og = open_graph(&doc);
    let site_name = doc
        .select(&sel(r#"meta[property="og:site_name"]"#))
        .next()
        .and_then(|m| m.value().attr("content"))
        .map(str::to_string);
    match (products.is_empty(), og) {
        (true, Some(og)) => products.push(og),
        (false, Some(og)) => products[0].fill_from(og),
        _ => {}
    }
    products.retain(PageProduct::is_product);
    for p in &mut products {
        if p.site_name.is_none() {
            p.site_name = site_name.clone();
        }
    }
    products
}

/// What a page is, for a shopper's history: one product's page (a view), an order
/// confirmation (a purchase of its products: schema.org `Order` in JSON-LD or microdata), or
/// anything else (category pages and carts list products but say nothing about one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PageKind {
    /// A product page.
    Product,
    /// An order confirmation.
    Order,
    /// Anything else.
    Other,
}

/// A page's kind and its products.
pub fn classify(html: &str) -> (PageKind, Vec<PageProduct>) {
    let doc = Html::parse_document(html);
    let mut ordered = json_ld_orders(&doc);
    if ordered.is_empty() {
        let order_scope = sel(r#"[itemscope][itemtype$="/Order"]"#);
        if doc.select(&order_scope).next().is_some() {
            ordered = microdata(&doc);
        }
    }
    ordered.retain(PageProduct::is_product);
    if !ordered.is_empty() {
        return (PageKind::Order, ordered);
    }
    drop(doc);
    let products = extract(html);
    let kind = if products.len() == 1 { PageKind::Product } else { PageKind::Other };
    (kind, products)
}

/// A page's product normalised as the importer does: site and id as given (an id from the
/// markup wins over `fallback_id`), text cleaned, brand canonical, category split, price
/// parsed (`Err` names an unusable price; the product is kept without it).
pub fn to_product(
    raw: PageProduct,
    site: &str,
    fallback_id: &str,
    default_currency: Option<&str>,
) -> (Product, Option<String>) {
    let id = raw.id.clone().or(raw.url.clone()).unwrap_or_else(|| fallback_id.to_string());
    let mut p = Product::new(site, clean_text(&id), clean_text(raw.name.as_deref().unwrap_or("")));
    p.description = raw.description.as_deref().map(clean_text).filter(|d| !d.is_empty());
    p.brand = raw.brand.as_deref().and_then(canonical_brand);
    p.category = raw.category.as_deref().map(split_category).unwrap_or_default();
    p.image = raw.image.map(ImageRef);
    if let Some(url) = raw.url {
        p.attributes.insert("url".into(), url);
    }
    let mut problem = None;
    if let Some(price) = raw.price {
        let text = format!("{price} {}", raw.currency.unwrap_or_default());
        match parse_price(&text, default_currency) {
            Ok(pr) => p.price = Some(pr),
            Err(e) => problem = Some(format!("`{}`: {e}", text.trim())),
        }
    }
    p.refresh_missing();
    (p, problem)
}

fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let host = rest.split(['/', '?', '#', ':']).next()?;
    (!host.is_empty()).then(|| host.trim_start_matches("www.").to_lowercase())
}

fn pages(path: &Path) -> Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
            let p = e.map_err(|e| Error::io(&dir, e))?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p
                .extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| x.eq_ignore_ascii_case("html") || x.eq_ignore_ascii_case("htm"))
            {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Imports one saved page or a directory of them.
pub fn import(path: &Path, opts: &HtmlOptions, progress: &ProgressBar) -> Result<Import> {
    let mut report = ImportReport::new("html", opts.strict);
    let files = pages(path)?;
    let single = !path.is_dir();
    let dataset = opts.dataset.clone().unwrap_or_else(|| "web".into());
    let mut products: Vec<Product> = Vec::new();
    let mut sites: Vec<Site> = Vec::new();
    for file in &files {
        report.files.push(file.display().to_string());
        report.rows_read += 1;
        let html = read_text(file, false)?;
        let found = extract(&html);
        if found.is_empty() {
            if single {
                return Err(Error::NoProductMarkup { path: file.clone() });
            }
            report.skip_row(file, 1, "no product markup", "no schema.org, microdata or OpenGraph product")?;
            continue;
        }
        for (n, raw) in found.into_iter().enumerate() {
            let site = opts
                .site
                .clone()
                .or_else(|| {
                    raw.site_name
                        .as_deref()
                        .map(|s| canonical_brand(s).unwrap_or_default().replace(' ', "-"))
                        .filter(|s| !s.is_empty())
                })
                .or_else(|| raw.url.as_deref().and_then(host_of))
                .unwrap_or_else(|| "web".into());
            let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("page");
            let fallback = if n == 0 { stem.to_string() } else { format!("{stem}#{n}") };
            let (p, problem) = to_product(raw, &site, &fallback, opts.default_currency.as_deref());
            if let Some(why) = problem {
                report.drop_field(file, None, "price", "unusable", why);
            }
            if !sites.iter().any(|s| s.key == site) {
                sites.push(Site { key: site.clone(), name: site.clone(), dataset: dataset.clone() });
            }
            products.push(p);
        }
        report.rows_imported += 1;
        progress.inc(1);
    }
    if files.is_empty() {
        return Err(Error::Options(format!("{}: no .html pages found", path.display())));
    }
    report.products = products.len() as u64;
    Ok(Import { sites, products, interactions: Vec::new(), report })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_ld_microdata_and_open_graph() {
        let ld = r#"<html><head><script type="application/ld+json">
            {"@context":"https://schema.org","@graph":[{"@type":"BreadcrumbList"},
             {"@type":"Product","name":"Red Tee","sku":"T-1","brand":{"@type":"Brand","name":"Acme"},
              "offers":{"@type":"Offer","price":"19.99","priceCurrency":"EUR"},"image":["a.jpg","b.jpg"]}]}
            </script></head><body></body></html>"#;
        let p = &extract(ld)[0];
        assert_eq!(
            (p.name.as_deref(), p.id.as_deref(), p.brand.as_deref()),
            (Some("Red Tee"), Some("T-1"), Some("Acme"))
        );
        assert_eq!(
            (p.price.as_deref(), p.currency.as_deref(), p.image.as_deref()),
            (Some("19.99"), Some("EUR"), Some("a.jpg"))
        );

        let md = r#"<div itemscope itemtype="https://schema.org/Product">
            <h1 itemprop="name">Blue Mug</h1><span itemprop="sku">M-2</span>
            <div itemprop="brand" itemscope itemtype="https://schema.org/Brand"><span itemprop="name">Potter &amp; Co</span></div>
            <div itemprop="offers" itemscope itemtype="https://schema.org/Offer">
              <meta itemprop="priceCurrency" content="GBP"><span itemprop="price" content="7.50">£7.50</span></div>
            <img itemprop="image" src="mug.jpg"></div>"#;
        let p = &extract(md)[0];
        assert_eq!(
            (p.name.as_deref(), p.brand.as_deref(), p.price.as_deref()),
            (Some("Blue Mug"), Some("Potter & Co"), Some("7.50"))
        );
        assert_eq!((p.currency.as_deref(), p.image.as_deref()), (Some("GBP"), Some("mug.jpg")));

        let og = r#"<meta property="og:type" content="product"><meta property="og:title" content="Lamp">
            <meta property="product:price:amount" content="1.299,00"><meta property="product:price:currency" content="EUR">
            <meta property="og:url" content="https://www.shop.example/p/9">"#;
        let p = &extract(og)[0];
        assert_eq!((p.name.as_deref(), p.price.as_deref()), (Some("Lamp"), Some("1.299,00")));
        assert_eq!(host_of(p.url.as_deref().unwrap()).as_deref(), Some("shop.example"));

        assert!(extract("<html><body><p>About us</p></body></html>").is_empty());
    }
}

#[cfg(test)]
mod classify_tests {
    use super::*;

    #[test]
    fn product_order_and_listing_pages() {
        let product = r#"<html><head><script type="application/ld+json">
            {"@context":"https://schema.org","@type":"Product","sku":"42","name":"Blue Shirt",
             "offers":{"@type":"Offer","price":"19.99","priceCurrency":"USD"}}</script></head></html>"#;
        let (kind, found) = classify(product);
        assert_eq!((kind, found.len()), (PageKind::Product, 1));
        let (p, problem) = to_product(found[0].clone(), "shop", "page", None);
        assert_eq!((p.external_id.as_str(), p.title.as_str(), problem), ("42", "Blue Shirt", None));
        assert_eq!(p.price.and_then(|x| x.approx_usd()), Some(19.99));

        let order = r#"<script type="application/ld+json">{"@context":"https://schema.org","@type":"Order",
            "orderNumber":"A1","acceptedOffer":[{"@type":"Offer","itemOffered":{"@type":"Product","sku":"7","name":"Red Shoe"}},
            {"@type":"Offer","itemOffered":{"@type":"Product","sku":"8","name":"Cap"}}]}</script>"#;
        let (kind, found) = classify(order);
        assert_eq!(kind, PageKind::Order);
        assert_eq!(found.iter().map(|p| p.id.clone().unwrap()).collect::<Vec<_>>(), ["7", "8"]);

        let micro_order = r#"<div itemscope itemtype="https://schema.org/Order"><div itemprop="orderedItem" itemscope
            itemtype="https://schema.org/Product"><span itemprop="sku">9</span><span itemprop="name">Bag</span></div></div>"#;
        let (kind, found) = classify(micro_order);
        assert_eq!((kind, found.len()), (PageKind::Order, 1), "{found:?}");

        let listing = r#"<div itemscope itemtype="https://schema.org/Product"><span itemprop="name">A</span></div>
            <div itemscope itemtype="https://schema.org/Product"><span itemprop="name">B</span></div>"#;
        assert_eq!(classify(listing).0, PageKind::Other);
        assert_eq!(classify("<p>nothing</p>").0, PageKind::Other);
    }
}
