//! `warmstart serve`: the HTTP service (axum on tokio) over a [`warmstart_app::Service`].
//!
//! Routes ([`ROUTES`]; the OpenAPI document at `/openapi.json` is generated from the
//! handlers and a test checks it against the running routes):
//! - `POST /v1/recommend` — a history from any shops (or a device-computed profile vector) →
//!   the target site's top items with scores, explanations and a recommendation id;
//! - `GET /v1/sites/{site}/products/{id}/similar` — item to item, across shops too;
//! - `POST /v1/embed` — product metadata → vectors of the content space;
//! - `GET /v1/sites/{site}/vectors` — a site's public ids and content vectors (binary, ETag);
//! - `PUT` / `DELETE /v1/sites/{site}/products` — catalog changes, behind an API key;
//! - `POST /v1/events` — impressions, clicks, carts and purchases (batched, idempotent);
//! - `DELETE /v1/sessions/{id}` — erases everything stored about an anonymous session;
//! - `GET /v1/experiments/{key}/report` — an A/B experiment's statistics;
//! - `GET /v1/sites`, `/healthz`, `/readyz`, `/metrics`, `/openapi.json`.
//!
//! Every error is a JSON body `{"error": {"code", "message"}}` with a 4xx status for the
//! client's mistakes and 5xx for the service's. Logs are one JSON line per request with the
//! route template, status and latency — never a body, a history or a query string.

pub mod client;
mod error;
pub mod metrics;
mod middleware;
pub mod ratelimit;

pub use error::{ApiError, ErrorBody, ErrorDetail};
use middleware::{limit, observe};

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};
use warmstart_app::experiment::ExperimentReport;
use warmstart_app::feedback::{EventsRequest, EventsResponse, SessionErased};
use warmstart_app::request::{
    CatalogChange, DeleteRequest, EmbedRequest, EmbedResponse, RecommendRequest, RecommendResponse, SimilarResponse,
    SiteInfo, UpsertRequest,
};
use warmstart_app::Service;

use crate::metrics::Metrics;
use crate::ratelimit::{Limiter, Rate};

/// Every (method, path) the router serves; the OpenAPI document lists the same.
pub const ROUTES: &[(&str, &str)] = &[
    ("post", "/v1/recommend"),
    ("get", "/v1/sites/{site}/products/{id}/similar"),
    ("post", "/v1/embed"),
    ("get", "/v1/sites/{site}/vectors"),
    ("get", "/v1/sites/{site}/catalog"),
    ("get", "/v1/sites/{site}/neighbours"),
    ("put", "/v1/sites/{site}/products"),
    ("delete", "/v1/sites/{site}/products"),
    ("post", "/v1/events"),
    ("delete", "/v1/sessions/{id}"),
    ("get", "/v1/experiments/{key}/report"),
    ("get", "/v1/sites"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
];

/// Options of the HTTP layer.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Largest request body (bytes).
    pub max_body: usize,
    /// API key of catalog writes (`Authorization: Bearer KEY` or `X-Api-Key: KEY`); writes
    /// are refused when none is set.
    pub api_key: Option<String>,
    /// Seconds a request may take.
    pub timeout_seconds: u64,
    /// Requests per client address (every route but health and metrics); `None`: no limit.
    pub rate_per_address: Option<Rate>,
    /// Catalog writes per API key.
    pub write_rate_per_key: Option<Rate>,
    /// Seconds a client may take to send a request's head (also the idle limit of a
    /// kept-alive connection): a client trickling headers (slowloris) is cut off.
    pub header_timeout_seconds: u64,
    /// How often the catalog is synced with the store, picking up what other processes
    /// (replicas, `warmstart ingest`, `embed`) changed; `None`: never.
    pub catalog_sync: Option<std::time::Duration>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_body: 1 << 20,
            api_key: None,
            timeout_seconds: 30,
            rate_per_address: None,
            write_rate_per_key: Rate::new(20.0, 40),
            header_timeout_seconds: 10,
            catalog_sync: Some(std::time::Duration::from_millis(500)),
        }
    }
}

/// Rejected API keys an address may send: a burst of 10, then one every 6 seconds.
fn auth_failure_rate() -> Rate {
    Rate::new(1.0 / 6.0, 10).expect("a valid constant rate")
}

/// The server's rate limiters.
struct Limits {
    per_address: Option<Limiter<IpAddr>>,
    writes: Option<Limiter<u64>>,
    auth_failures: Limiter<IpAddr>,
}

/// Shared state of the handlers.
pub struct AppState {
    service: Service,
    metrics: Metrics,
    opts: ServerOptions,
    limits: Limits,
}

type Shared = Arc<AppState>;

/// Runs blocking service work off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> warmstart_app::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(ApiError::from),
        Err(_) => Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error (logged)")),
    }
}

/// The model a response was computed with, for the latency histogram.
#[derive(Clone)]
struct ModelLabel(String);

/// Ranks a site's catalog for a shopper known by their history on other shops.
#[utoipa::path(post, path = "/v1/recommend", request_body = RecommendRequest,
    responses((status = 200, body = RecommendResponse), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn recommend(
    State(s): State<Shared>,
    body: Result<Json<RecommendRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body?;
    // a history of known products (or a profile) is a sub-millisecond computation: answered on
    // the async worker, without two thread hand-offs; product metadata may need the encoder,
    // whose tens of milliseconds go to the blocking pool, and so do pgvector searches
    let blocks = req.history.iter().any(|h| h.product.is_some())
        || s.service.options().retrieval != warmstart_app::Retrieval::InProcess;
    let r = if blocks {
        let st = s.clone();
        blocking(move || st.service.recommend(&req)).await?
    } else {
        s.service.recommend(&req)?
    };
    s.metrics.history(r.history.unknown, r.history.embedded);
    let label = ModelLabel(r.model.clone());
    let mut resp = Json(r).into_response();
    resp.extensions_mut().insert(label);
    Ok(resp)
}

/// Query of the similar-items route.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct SimilarQuery {
    /// How many (default 10).
    k: Option<usize>,
    /// Site whose catalog is searched (default: the product's own).
    target: Option<String>,
    /// A model's item space instead of the content space.
    model: Option<String>,
}

/// The products most similar to one product, on its own or another site.
#[utoipa::path(get, path = "/v1/sites/{site}/products/{id}/similar",
    params(("site" = String, Path), ("id" = String, Path), SimilarQuery),
    responses((status = 200, body = SimilarResponse), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn similar(
    State(s): State<Shared>,
    Path((site, id)): Path<(String, String)>,
    query: Result<Query<SimilarQuery>, QueryRejection>,
) -> Result<Json<SimilarResponse>, ApiError> {
    let Query(q) = query?;
    let st = s.clone();
    Ok(Json(
        blocking(move || st.service.similar(&site, &id, q.target.as_deref(), q.k.unwrap_or(10), q.model.as_deref()))
            .await?,
    ))
}

/// Vectors of product metadata in the catalog's content space.
#[utoipa::path(post, path = "/v1/embed", request_body = EmbedRequest,
    responses((status = 200, body = EmbedResponse), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn embed(
    State(s): State<Shared>,
    body: Result<Json<EmbedRequest>, JsonRejection>,
) -> Result<Json<EmbedResponse>, ApiError> {
    let Json(req) = body?;
    let st = s.clone();
    Ok(Json(blocking(move || st.service.embed(&req)).await?))
}

/// Query of the vectors route.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct VectorsQuery {
    /// `f32` (default) or `f16`.
    dtype: Option<String>,
}

/// A site's public product ids and content vectors, for ranking on the shopper's device
/// (binary `WSVEC001` layout; `If-None-Match` with the ETag answers 304).
#[utoipa::path(get, path = "/v1/sites/{site}/vectors", params(("site" = String, Path), VectorsQuery),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>), (status = 304), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn vectors(
    State(s): State<Shared>,
    Path(site): Path<String>,
    query: Result<Query<VectorsQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Query(q) = query?;
    let f16 = match q.dtype.as_deref() {
        None | Some("f32") => false,
        Some("f16") => true,
        Some(other) => {
            return Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_request", format!("dtype: `{other}` (f32 or f16)")))
        }
    };
    let st = s.clone();
    let known = if_none_match(&headers);
    let download = blocking(move || st.service.site_vectors(&site, f16, known.as_deref())).await?;
    Ok(public_download(download, "application/octet-stream"))
}

/// A site's public catalog (ids, titles, categories, prices, links and photos, in the rows'
/// order of the vectors route), for showing what a device ranked; ETag as the vectors.
#[utoipa::path(get, path = "/v1/sites/{site}/catalog", params(("site" = String, Path)),
    responses((status = 200, body = warmstart_app::service::PublicCatalog), (status = 304), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn catalog(State(s): State<Shared>, Path(site): Path<String>, headers: HeaderMap) -> Result<Response, ApiError> {
    let st = s.clone();
    let known = if_none_match(&headers);
    let download = blocking(move || st.service.site_catalog(&site, known.as_deref())).await?;
    Ok(public_download(download, "application/json"))
}

/// Query of the neighbours route.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct NeighboursQuery {
    /// A served neighbour-list model (`itemknn`, `rp3beta`).
    model: String,
}

/// A neighbour-list model's lists into a site (binary `WSNBR001`): every other shop's
/// products with their neighbours here, for ranking the site on the shopper's device.
#[utoipa::path(get, path = "/v1/sites/{site}/neighbours", params(("site" = String, Path), NeighboursQuery),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>), (status = 304), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn neighbours(
    State(s): State<Shared>,
    Path(site): Path<String>,
    query: Result<Query<NeighboursQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Query(q) = query?;
    let st = s.clone();
    let known = if_none_match(&headers);
    let download = blocking(move || st.service.site_neighbours(&site, &q.model, known.as_deref())).await?;
    Ok(public_download(download, "application/octet-stream"))
}

/// The version a client holds (`If-None-Match`).
fn if_none_match(headers: &HeaderMap) -> Option<String> {
    headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// A public download with its ETag: `304 Not Modified` (not built) when the client holds it.
fn public_download(d: warmstart_app::service::Download, content_type: &'static str) -> Response {
    match d.body {
        None => (StatusCode::NOT_MODIFIED, [(header::ETAG, d.etag)]).into_response(),
        Some(bytes) => ([(header::CONTENT_TYPE, content_type.to_string()), (header::ETAG, d.etag)], Body::from(bytes))
            .into_response(),
    }
}

fn authorize(s: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(key) = s.opts.api_key.as_deref() else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "catalog writes are disabled (start with --api-key)",
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()));
    // constant-time comparison
    let ok = given.is_some_and(|g| {
        g.len() == key.len() && g.bytes().zip(key.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    });
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "a valid API key is required"))
    }
}

/// Adds or replaces products: stored, embedded and served at once.
#[utoipa::path(put, path = "/v1/sites/{site}/products", params(("site" = String, Path)), request_body = UpsertRequest,
    responses((status = 200, body = CatalogChange), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
async fn upsert(
    State(s): State<Shared>,
    Path(site): Path<String>,
    headers: HeaderMap,
    body: Result<Json<UpsertRequest>, JsonRejection>,
) -> Result<Json<CatalogChange>, ApiError> {
    authorize(&s, &headers)?;
    let Json(req) = body?;
    let st = s.clone();
    Ok(Json(blocking(move || st.service.upsert(&site, &req)).await?))
}

/// Takes products off the served catalog.
#[utoipa::path(delete, path = "/v1/sites/{site}/products", params(("site" = String, Path)), request_body = DeleteRequest,
    responses((status = 200, body = CatalogChange), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
async fn remove(
    State(s): State<Shared>,
    Path(site): Path<String>,
    headers: HeaderMap,
    body: Result<Json<DeleteRequest>, JsonRejection>,
) -> Result<Json<CatalogChange>, ApiError> {
    authorize(&s, &headers)?;
    let Json(req) = body?;
    let st = s.clone();
    Ok(Json(blocking(move || st.service.remove(&site, &req.ids)).await?))
}

/// Feedback events on recommendations: impressions, clicks, add-to-carts, purchases. Each is
/// validated against its recommendation and stored once (a resent key, or an item already
/// counted, is a duplicate); refused events are listed with why.
#[utoipa::path(post, path = "/v1/events", request_body = EventsRequest,
    responses((status = 200, body = EventsResponse), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn events(
    State(s): State<Shared>,
    body: Result<Json<EventsRequest>, JsonRejection>,
) -> Result<Json<EventsResponse>, ApiError> {
    let Json(req) = body?;
    let st = s.clone();
    let r = blocking(move || st.service.post_events(&req)).await?;
    s.metrics.events(r.accepted, r.duplicates, r.rejected.len());
    Ok(Json(r))
}

/// Erases every event, recommendation record and key of an anonymous session (the session id
/// is the capability: only its holder knows it).
#[utoipa::path(delete, path = "/v1/sessions/{id}", params(("id" = String, Path)),
    responses((status = 200, body = SessionErased), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn erase_session(State(s): State<Shared>, Path(id): Path<String>) -> Result<Json<SessionErased>, ApiError> {
    let st = s.clone();
    Ok(Json(blocking(move || st.service.erase_session(&id)).await?))
}

/// An experiment's report: per variant sessions, impressions, clicks, CTR with a
/// session-clustered 95% interval, cart and purchase rates, lift against control with its
/// interval and p-value, CTR by position; and the sample-ratio-mismatch check.
#[utoipa::path(get, path = "/v1/experiments/{key}/report", params(("key" = String, Path)),
    responses((status = 200, body = ExperimentReport), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn experiment_report(
    State(s): State<Shared>,
    Path(key): Path<String>,
) -> Result<Json<ExperimentReport>, ApiError> {
    let st = s.clone();
    Ok(Json(blocking(move || st.service.experiment_report(&key)).await?))
}

/// The served sites and their models.
#[utoipa::path(get, path = "/v1/sites", responses((status = 200, body = Vec<SiteInfo>), (status = 429, body = ErrorBody)))]
async fn sites(State(s): State<Shared>) -> Result<Json<Vec<SiteInfo>>, ApiError> {
    let st = s.clone();
    Ok(Json(blocking(move || st.service.sites()).await?))
}

/// Liveness.
#[utoipa::path(get, path = "/healthz", responses((status = 200, body = String)))]
async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: artifacts and catalogs are loaded (the server only listens once they are).
#[utoipa::path(get, path = "/readyz", responses((status = 200, body = String)))]
async fn readyz(State(s): State<Shared>) -> Response {
    match s.service.sites() {
        Ok(v) if !v.is_empty() => "ready".into_response(),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response(),
    }
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", responses((status = 200, content_type = "text/plain", body = String)))]
async fn metrics(State(s): State<Shared>) -> Response {
    let mut text = s.metrics.render(&s.service.index_sizes());
    if let Some(f) = s.service.feedback() {
        text.push_str("# HELP warmstart_recommendations_unrecorded_total Served lists dropped because the feedback writer fell behind.\n");
        text.push_str("# TYPE warmstart_recommendations_unrecorded_total counter\n");
        text.push_str(&format!("warmstart_recommendations_unrecorded_total {}\n", f.unrecorded()));
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", responses((status = 200, body = Object)))]
async fn openapi() -> Response {
    Json(ApiDoc::openapi()).into_response()
}

/// The OpenAPI document, generated from the handlers above.
#[derive(OpenApi)]
#[openapi(
    info(title = "warmstart", description = "Cross-shop cold-start recommendations."),
    paths(recommend, similar, embed, vectors, catalog, neighbours, upsert, remove, events, erase_session, experiment_report, sites, healthz, readyz, metrics, openapi),
    modifiers(&ApiKeyScheme)
)]
pub struct ApiDoc;

struct ApiKeyScheme;

impl utoipa::Modify for ApiKeyScheme {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
        // either header carries the key: `Authorization: Bearer KEY` or `X-Api-Key: KEY`
        if let Some(c) = api.components.as_mut() {
            c.add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
            c.add_security_scheme("api_key", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Api-Key"))));
        }
    }
}

async fn no_route() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no_route", "no such route (see /openapi.json)")
}

/// Syncs the catalog with the store every `every`, and looks for newly published artifacts
/// every tenth time, until the state is dropped.
fn spawn_catalog_sync(state: std::sync::Weak<AppState>, every: std::time::Duration) {
    let spawned = std::thread::Builder::new().name("catalog-sync".into()).spawn(move || {
        for tick in 1u64.. {
            std::thread::sleep(every);
            let Some(s) = state.upgrade() else { break };
            match s.service.sync_catalog() {
                Ok(n) => s.metrics.catalog_sync(n, false),
                Err(e) => {
                    s.metrics.catalog_sync(0, true);
                    eprintln!("catalog sync: {e}");
                }
            }
            if tick % 10 == 0 {
                match s.service.sync_artifacts() {
                    Ok(loaded) => {
                        for (dataset, model, version) in loaded {
                            s.metrics.artifact_loaded();
                            eprintln!("loaded artifact {dataset}/{model} v{version}");
                        }
                    }
                    Err(e) => eprintln!("artifact sync: {e}"),
                }
            }
        }
    });
    if let Err(e) = spawned {
        eprintln!("catalog sync: not started: {e}");
    }
}

/// The router over a loaded service. The per-address limit needs the client's address as
/// `ConnectInfo<SocketAddr>`, which [`serve_connections`] supplies.
pub fn router(service: Service, opts: ServerOptions) -> Router {
    let max_body = opts.max_body;
    let timeout = std::time::Duration::from_secs(opts.timeout_seconds.max(1));
    let limits = Limits {
        per_address: opts.rate_per_address.map(Limiter::new),
        writes: opts.write_rate_per_key.map(Limiter::new),
        auth_failures: Limiter::new(auth_failure_rate()),
    };
    let state: Shared = Arc::new(AppState { service, metrics: Metrics::default(), opts, limits });
    if let Some(every) = state.opts.catalog_sync {
        spawn_catalog_sync(Arc::downgrade(&state), every);
    }
    Router::new()
        .route("/v1/recommend", post(recommend))
        .route("/v1/sites/{site}/products/{id}/similar", get(similar))
        .route("/v1/embed", post(embed))
        .route("/v1/sites/{site}/vectors", get(vectors))
        .route("/v1/sites/{site}/catalog", get(catalog))
        .route("/v1/sites/{site}/neighbours", get(neighbours))
        .route("/v1/sites/{site}/products", axum::routing::put(upsert).delete(remove))
        .route("/v1/events", post(events))
        .route("/v1/sessions/{id}", axum::routing::delete(erase_session))
        .route("/v1/experiments/{key}/report", get(experiment_report))
        .route("/v1/sites", get(sites))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .fallback(no_route)
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed on this route")
        })
        .layer(axum::middleware::from_fn(move |req: Request, next: Next| async move {
            match tokio::time::timeout(timeout, next.run(req)).await {
                Ok(r) => r,
                Err(_) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "timeout", "the request took too long")
                    .into_response(),
            }
        }))
        .layer(axum::middleware::from_fn_with_state(state.clone(), limit))
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::map_response(|mut r: Response| async move {
            r.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
            r
        }))
        .with_state(state)
}

/// Errors of the server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Binding or serving failed.
    #[error("{addr}: {source}")]
    Io {
        /// Address.
        addr: String,
        /// Cause.
        source: std::io::Error,
    },
}

/// Serves `service` on `addr` until Ctrl-C / SIGTERM; `on_ready` gets the bound address
/// (port 0 picks a free one).
pub async fn serve(
    service: Service,
    addr: SocketAddr,
    opts: ServerOptions,
    on_ready: impl FnOnce(SocketAddr),
) -> Result<(), Error> {
    let listener =
        tokio::net::TcpListener::bind(addr).await.map_err(|e| Error::Io { addr: addr.to_string(), source: e })?;
    let bound = listener.local_addr().map_err(|e| Error::Io { addr: addr.to_string(), source: e })?;
    let header_timeout = std::time::Duration::from_secs(opts.header_timeout_seconds.max(1));
    let app = router(service, opts);
    on_ready(bound);
    serve_connections(listener, app, header_timeout, shutdown_signal()).await;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(t) => t,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// The accept loop: HTTP/1.1 connections with a deadline on every request head (axum's own
/// `serve` installs no timer, so hyper's header timeout would be inert and a slowloris client
/// could hold a connection forever), the client address as `ConnectInfo` for the rate limits,
/// and on `shutdown` no new connections and up to 10 s for the open ones to finish.
pub async fn serve_connections(
    listener: tokio::net::TcpListener,
    app: Router,
    header_timeout: std::time::Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    use tower::ServiceExt;
    tokio::pin!(shutdown);
    let mut open = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some(_) = open.join_next(), if !open.is_empty() => {}
            accepted = listener.accept() => {
                let (stream, remote) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // out of file descriptors, a reset before accept: back off, keep serving
                        eprintln!("{}", serde_json::json!({"level": "warn", "accept": e.to_string()}));
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let app = app.clone();
                let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ConnectInfo(remote));
                    app.clone().oneshot(req)
                });
                open.spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .timer(hyper_util::rt::TokioTimer::new())
                        .header_read_timeout(header_timeout)
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        }
    }
    let _ =
        tokio::time::timeout(std::time::Duration::from_secs(10), async { while open.join_next().await.is_some() {} })
            .await;
}

#[cfg(test)]
mod openapi_tests {
    use utoipa::OpenApi;

    /// What `scripts/fuzz_api.sh` (schemathesis) holds the document to: every status the
    /// server can answer is documented, either key header is accepted, and numbers carry the
    /// bounds the server enforces.
    #[test]
    fn the_document_matches_what_the_server_answers() {
        let doc = serde_json::to_value(super::ApiDoc::openapi()).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        for (path, item) in paths {
            for (method, op) in item.as_object().unwrap() {
                let responses = op["responses"].as_object().unwrap();
                if op.get("requestBody").is_some() {
                    for status in ["400", "413", "415", "429"] {
                        assert!(responses.contains_key(status), "{method} {path} does not document {status}");
                    }
                }
                if path.starts_with("/v1/") {
                    assert!(responses.contains_key("429"), "{method} {path} does not document 429");
                }
            }
        }
        let put = &doc["paths"]["/v1/sites/{site}/products"]["put"];
        assert_eq!(put["security"], serde_json::json!([{"bearer": []}, {"api_key": []}]), "either header");
        assert_eq!(doc["components"]["securitySchemes"]["api_key"]["name"], "X-Api-Key");
        let shown = &doc["components"]["schemas"]["ShownItem"]["properties"]["position"];
        assert_eq!(shown["maximum"].as_f64(), Some(u32::MAX as f64), "{shown}");
    }
}
