//! Fixture shops: the products of a store's dataset group served as one web shop per site
//! on localhost, told apart by host name (`http://{site}.localhost:PORT/`, which Chromium
//! resolves to the loopback address). Each shop marks its products up differently, as real
//! shops do: the first with schema.org JSON-LD, the second with microdata, the third with
//! OpenGraph tags only (and so on in turn). Pages: home and category listings, product
//! pages with "add to cart" and "add to wish list", a cookie cart, checkout and an order
//! confirmation (schema.org `Order`), and the product photos. Every request can be logged
//! as a JSON line, so tests can check what a browser sent.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use warmstart_core::url::path_segment as enc;
use warmstart_store::Store;

/// How a shop marks its products up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Markup {
    /// schema.org JSON-LD.
    JsonLd,
    /// schema.org microdata.
    Microdata,
    /// OpenGraph tags only.
    OpenGraph,
}

/// One product of a shop.
#[derive(Debug, Clone)]
pub struct Item {
    /// The shop's id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Brand.
    pub brand: Option<String>,
    /// Category path.
    pub category: Vec<String>,
    /// Attributes (colour, gender, usage, season).
    pub attributes: Vec<(String, String)>,
    /// JPEG photo.
    pub photo: Option<Vec<u8>>,
}

/// One shop.
#[derive(Debug, Clone)]
pub struct Shop {
    /// Site key (the host name's first label).
    pub key: String,
    /// Display name.
    pub name: String,
    /// Markup style.
    pub markup: Markup,
    /// Products, in store order.
    pub items: Vec<Item>,
    by_id: HashMap<String, usize>,
}

impl Shop {
    fn item(&self, id: &str) -> Option<&Item> {
        self.by_id.get(id).map(|&i| &self.items[i])
    }
    /// Category names (second level, else first) with their products.
    fn categories(&self) -> BTreeMap<String, Vec<&Item>> {
        let mut out: BTreeMap<String, Vec<&Item>> = BTreeMap::new();
        for it in &self.items {
            if let Some(c) = it.category.get(1).or(it.category.first()) {
                out.entry(c.clone()).or_default().push(it);
            }
        }
        out
    }
}

/// Loads every site of `dataset` from the store, with the photos (read once).
pub fn load(store: &Store, dataset: &str) -> anyhow::Result<Vec<Shop>> {
    let d = store.load_dataset(Some(dataset))?;
    anyhow::ensure!(!d.sites.is_empty(), "no sites in dataset group `{dataset}`");
    let attrs = store.product_attributes(Some(dataset))?;
    let refs: Vec<(usize, String)> =
        d.products.iter().enumerate().filter_map(|(i, p)| p.image.clone().map(|r| (i, r))).collect();
    let mut photos: HashMap<usize, Vec<u8>> = HashMap::new();
    warmstart_ingest::images::read_images::<usize, warmstart_ingest::Error>(&refs, |i, bytes| {
        if let Ok(b) = bytes {
            photos.insert(i, b);
        }
        Ok(())
    })?;
    let markups = [Markup::JsonLd, Markup::Microdata, Markup::OpenGraph];
    Ok(d.sites
        .iter()
        .enumerate()
        .map(|(s, site)| {
            let items: Vec<Item> = site
                .items
                .clone()
                .map(|i| {
                    let p = &d.products[i as usize];
                    Item {
                        id: p.external_id.clone(),
                        title: p.title.clone(),
                        brand: p.brand.clone(),
                        category: p.category.clone(),
                        attributes: attrs.get(i as usize).cloned().unwrap_or_default(),
                        photo: photos.remove(&(i as usize)),
                    }
                })
                .collect();
            let by_id = items.iter().enumerate().map(|(n, it)| (it.id.clone(), n)).collect();
            Shop { key: site.key.clone(), name: site.name.clone(), markup: markups[s % 3], items, by_id }
        })
        .collect())
}

/// Shared state of the server.
pub struct ShopState {
    shops: Vec<Shop>,
    orders: Mutex<Vec<(String, Vec<String>)>>,
    log: Option<Mutex<std::fs::File>>,
}

impl ShopState {
    /// Shops, and where requests are logged (one JSON line each).
    pub fn new(shops: Vec<Shop>, log: Option<std::fs::File>) -> Arc<ShopState> {
        Arc::new(ShopState { shops, orders: Mutex::new(Vec::new()), log: log.map(Mutex::new) })
    }
}

/// The routes.
pub fn router(state: Arc<ShopState>) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/category/{name}", get(category))
        .route("/products/{id}", get(product))
        .route("/images/{file}", get(photo))
        .route("/cart", get(cart))
        .route("/cart/add", post(cart_add))
        .route("/wishlist/add", post(wishlist_add))
        .route("/checkout", post(checkout))
        .route("/order/{n}", get(order))
        .layer(axum::middleware::from_fn_with_state(state.clone(), log_request))
        .with_state(state)
}

async fn log_request(
    State(st): State<Arc<ShopState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if let Some(log) = &st.log {
        let h =
            |name: header::HeaderName| req.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let line = serde_json::json!({
            "method": req.method().as_str(), "host": h(header::HOST), "path": req.uri().to_string(),
            "referer": h(header::REFERER), "cookie": h(header::COOKIE),
        });
        if let Ok(mut f) = log.lock() {
            let _ = writeln!(f, "{line}");
        }
    }
    next.run(req).await
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

fn shop_of<'a>(st: &'a ShopState, headers: &HeaderMap) -> Option<&'a Shop> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let name = host.split(':').next()?.split('.').next()?;
    st.shops.iter().find(|s| s.key == name)
}

fn not_found(st: &ShopState) -> Response {
    let links: String =
        st.shops.iter().map(|s| format!("<li><a href=\"http://{0}.localhost/\">{0}</a></li>", esc(&s.key))).collect();
    (StatusCode::NOT_FOUND, Html(format!("<h1>No such shop or page</h1><p>Shops (at this port):</p><ul>{links}</ul>")))
        .into_response()
}

fn cart_ids(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().strip_prefix("cart="))
        .flat_map(|v| v.split('.').filter(|x| !x.is_empty()).map(str::to_string).collect::<Vec<_>>())
        .collect()
}

fn page(shop: &Shop, title: &str, head: &str, body: &str, cart: usize) -> Html<String> {
    let nav: String = shop
        .categories()
        .keys()
        .take(12)
        .map(|c| format!("<a href=\"/category/{}\">{}</a>", enc(c), esc(c)))
        .collect::<Vec<_>>()
        .join(" · ");
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} — {name}</title>{head}\
         <style>body{{font-family:sans-serif;margin:0 1.5em}}header{{padding:.8em 0;border-bottom:1px solid #ddd}}\
         .grid{{display:flex;flex-wrap:wrap;gap:1em}}.card{{width:140px}}.card img{{width:120px;height:160px;object-fit:cover}}\
         main{{padding:1em 0}}</style></head><body><header><a href=\"/\"><b>{name}</b></a> — {nav} — \
         <a href=\"/cart\" id=\"cart-link\">Cart ({cart})</a></header><main>{body}</main></body></html>",
        title = esc(title),
        name = esc(&shop.name),
    ))
}

fn card(it: &Item) -> String {
    format!(
        "<div class=\"card\"><a href=\"/products/{id}\"><img src=\"/images/{id}.jpg\" alt=\"\"><br>{t}</a></div>",
        id = enc(&it.id),
        t = esc(&it.title)
    )
}

async fn home(State(st): State<Arc<ShopState>>, headers: HeaderMap) -> Response {
    let Some(shop) = shop_of(&st, &headers) else { return not_found(&st) };
    let cards: String = shop.items.iter().take(24).map(card).collect();
    page(
        shop,
        "Home",
        "",
        &format!("<h1>{}</h1><div class=\"grid\">{cards}</div>", esc(&shop.name)),
        cart_ids(&headers).len(),
    )
    .into_response()
}

async fn category(State(st): State<Arc<ShopState>>, headers: HeaderMap, Path(name): Path<String>) -> Response {
    let Some(shop) = shop_of(&st, &headers) else { return not_found(&st) };
    let cats = shop.categories();
    let Some(items) = cats.get(&name) else { return not_found(&st) };
    let cards: String = items.iter().take(60).map(|it| card(it)).collect();
    page(
        shop,
        &name,
        "",
        &format!("<h1>{}</h1><div class=\"grid\">{cards}</div>", esc(&name)),
        cart_ids(&headers).len(),
    )
    .into_response()
}

fn attr<'a>(it: &'a Item, name: &str) -> Option<&'a str> {
    it.attributes.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn product_markup(shop: &Shop, it: &Item) -> (String, String) {
    let image = format!("/images/{}.jpg", enc(&it.id));
    let cat = it.category.join(" > ");
    let details: String = it.attributes.iter().map(|(k, v)| format!("<li>{}: {}</li>", esc(k), esc(v))).collect();
    match shop.markup {
        Markup::JsonLd => {
            let ld = serde_json::json!({
                "@context": "https://schema.org", "@type": "Product", "sku": it.id, "name": it.title,
                "brand": it.brand.as_ref().map(|b| serde_json::json!({"@type": "Brand", "name": b})),
                "category": cat, "image": image, "color": attr(it, "baseColour"),
            });
            let ld = ld.to_string().replace("</", "<\\/");
            (
                format!("<script type=\"application/ld+json\">{ld}</script>"),
                format!("<h1>{}</h1><img src=\"{image}\" alt=\"\"><ul>{details}</ul>", esc(&it.title)),
            )
        }
        Markup::Microdata => (
            String::new(),
            format!(
                "<div itemscope itemtype=\"https://schema.org/Product\"><meta itemprop=\"sku\" content=\"{id}\">\
                 <h1 itemprop=\"name\">{t}</h1><img itemprop=\"image\" src=\"{image}\" alt=\"\">\
                 <p>Category: <span itemprop=\"category\">{c}</span></p>{b}<ul>{details}</ul></div>",
                id = esc(&it.id),
                t = esc(&it.title),
                c = esc(&cat),
                b = it
                    .brand
                    .as_ref()
                    .map(|b| format!("<p>Brand: <span itemprop=\"brand\">{}</span></p>", esc(b)))
                    .unwrap_or_default(),
            ),
        ),
        Markup::OpenGraph => (
            format!(
                "<meta property=\"og:type\" content=\"product\"><meta property=\"og:title\" content=\"{t}\">\
                 <meta property=\"og:image\" content=\"{image}\"><meta property=\"og:site_name\" content=\"{s}\">\
                 <meta property=\"product:retailer_item_id\" content=\"{id}\">",
                t = esc(&it.title),
                s = esc(&shop.name),
                id = esc(&it.id)
            ),
            format!("<h1>{}</h1><img src=\"{image}\" alt=\"\"><ul>{details}</ul>", esc(&it.title)),
        ),
    }
}

async fn product(State(st): State<Arc<ShopState>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let Some(shop) = shop_of(&st, &headers) else { return not_found(&st) };
    let Some(it) = shop.item(&id) else { return not_found(&st) };
    let (head, body) = product_markup(shop, it);
    let buttons = format!(
        "<form method=\"post\" action=\"/cart/add\"><input type=\"hidden\" name=\"id\" value=\"{id}\">\
         <button type=\"submit\" id=\"add-to-cart\">Add to cart</button></form>\
         <form method=\"post\" action=\"/wishlist/add\"><input type=\"hidden\" name=\"id\" value=\"{id}\">\
         <button type=\"submit\" id=\"add-to-wishlist\">Add to wish list</button></form>",
        id = esc(&it.id)
    );
    page(shop, &it.title, &head, &format!("{body}{buttons}"), cart_ids(&headers).len()).into_response()
}

async fn photo(State(st): State<Arc<ShopState>>, headers: HeaderMap, Path(file): Path<String>) -> Response {
    let Some(shop) = shop_of(&st, &headers) else { return not_found(&st) };
    let id = file.strip_suffix(".jpg").unwrap_or(&file);
    match shop.item(id).and_then(|it| it.photo.clone()) {
        Some(bytes) => {
            ([(header::CONTENT_TYPE, "image/jpeg"), (header::CACHE_CONTROL, "max-age=3600")], bytes).into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A posted product id.
#[derive(serde::Deserialize)]
pub struct IdForm {
    id: String,
}

async fn cart_add(State(st): State<Arc<ShopState>>, headers: HeaderMap, Form(f): Form<IdForm>) -> Response {
    let Some(shop) = shop_of(&st, &headers) else { return not_found(&st) };
    if shop.item(&f.id).is_none() {
        return not_found(&st);
    }
    let mut ids = cart_ids(&headers);
    if !ids.contains(&f.id) {
        ids.push(f.id);
    }
    let cookie = format!("cart={}; Path=/; SameSite=Lax", ids.iter().map(|i| enc(i)).collect::<Vec<_>>().join("."));
    ([(header::SET_COOKIE, cookie)], Redirect::to("/cart")).into_response()
}

async fn wishlist_add(State(st): State<Arc<ShopState>>, headers: HeaderMap, Form(f): Form<IdForm>) -> Response {
    let Some(shop) = shop_of(&st, &headers) else { return not_found(&st) };
    let Some(it) = shop.item(&f.id) else { return not_found(&st) };
    page(
        shop,
        "Wish list",
        "",
        &format!("<p id=\"wished\">Added {} to your wish list.</p>", esc(&it.title)),
        cart_ids(&headers).len(),
    )
    .into_response()
}

async fn cart(State(st): State<Arc<ShopState>>, headers: HeaderMap) -> Response {
    let Some(shop) = shop_of(&st, &headers) else { return not_found(&st) };
    let ids = cart_ids(&headers);
    let items: String = ids.iter().filter_map(|i| shop.item(i)).map(card).collect();
    let body = format!(
        "<h1>Your cart</h1><div class=\"grid\">{items}</div>\
         <form method=\"post\" action=\"/checkout\"><button type=\"submit\" id=\"place-order\">Place order</button></form>"
    );
    page(shop, "Cart", "", &body, ids.len()).into_response()
}

async fn checkout(State(st): State<Arc<ShopState>>, headers: HeaderMap) -> Response {
    let Some(shop) = shop_of(&st, &headers) else { return not_found(&st) };
    let ids: Vec<String> = cart_ids(&headers).into_iter().filter(|i| shop.item(i).is_some()).collect();
    let n = {
        let mut orders = st.orders.lock().unwrap_or_else(|e| e.into_inner());
        orders.push((shop.key.clone(), ids));
        orders.len()
    };
    ([(header::SET_COOKIE, "cart=; Path=/; Max-Age=0".to_string())], Redirect::to(&format!("/order/{n}")))
        .into_response()
}

async fn order(State(st): State<Arc<ShopState>>, headers: HeaderMap, Path(n): Path<usize>) -> Response {
    let Some(shop) = shop_of(&st, &headers) else { return not_found(&st) };
    let ids = {
        let orders = st.orders.lock().unwrap_or_else(|e| e.into_inner());
        match n.checked_sub(1).and_then(|i| orders.get(i)) {
            Some((key, ids)) if *key == shop.key => ids.clone(),
            _ => return not_found(&st),
        }
    };
    let items: Vec<&Item> = ids.iter().filter_map(|i| shop.item(i)).collect();
    let (head, list) = if shop.markup == Markup::JsonLd {
        let offers: Vec<serde_json::Value> = items
            .iter()
            .map(|it| serde_json::json!({"@type": "Offer", "itemOffered": {"@type": "Product", "sku": it.id, "name": it.title}}))
            .collect();
        let ld = serde_json::json!({"@context": "https://schema.org", "@type": "Order", "orderNumber": n.to_string(), "acceptedOffer": offers});
        (
            format!("<script type=\"application/ld+json\">{}</script>", ld.to_string().replace("</", "<\\/")),
            items.iter().map(|it| format!("<li>{}</li>", esc(&it.title))).collect::<String>(),
        )
    } else {
        (
            String::new(),
            items
                .iter()
                .map(|it| {
                    format!(
                        "<li itemprop=\"orderedItem\" itemscope itemtype=\"https://schema.org/Product\">\
                         <meta itemprop=\"sku\" content=\"{}\"><span itemprop=\"name\">{}</span></li>",
                        esc(&it.id),
                        esc(&it.title)
                    )
                })
                .collect(),
        )
    };
    let body = format!(
        "<div itemscope itemtype=\"https://schema.org/Order\"><h1>Thank you! Order <span itemprop=\"orderNumber\">{n}</span></h1><ul>{list}</ul></div>"
    );
    page(shop, "Order confirmation", &head, &body, 0).into_response()
}
