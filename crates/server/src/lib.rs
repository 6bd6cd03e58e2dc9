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
mod handlers;
pub mod metrics;
mod middleware;
pub mod ratelimit;

pub use error::{ApiError, ErrorBody, ErrorDetail};
use handlers::{
    catalog, embed, erase_session, events, experiment_report, healthz, metrics, neighbours, no_route, openapi, readyz,
    recommend, remove, similar, sites, upsert, vectors, ModelLabel,
};
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

/// The OpenAPI document, generated from the handlers (`handlers.rs`).
#[derive(OpenApi)]
#[openapi(
    info(title = "warmstart", description = "Cross-shop cold-start recommendations."),
    paths(handlers::recommend, handlers::similar, handlers::embed, handlers::vectors, handlers::catalog, handlers::neighbours, handlers::upsert, handlers::remove, handlers::events, handlers::erase_session, handlers::experiment_report, handlers::sites, handlers::healthz, handlers::readyz, handlers::metrics, handlers::openapi),
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
