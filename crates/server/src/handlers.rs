//! The route handlers: each parses its request, calls the [`Service`] (blocking work on
//! tokio's blocking pool) and maps the result to JSON or a binary body; their
//! `#[utoipa::path]` attributes generate the OpenAPI document.

use super::*;

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
pub(crate) struct ModelLabel(pub(crate) String);

/// Ranks a site's catalog for a shopper known by their history on other shops.
#[utoipa::path(post, path = "/v1/recommend", request_body = RecommendRequest,
    responses((status = 200, body = RecommendResponse), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub(crate) async fn recommend(
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
pub(crate) struct SimilarQuery {
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
pub(crate) async fn similar(
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
pub(crate) async fn embed(
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
pub(crate) struct VectorsQuery {
    /// `f32` (default) or `f16`.
    dtype: Option<String>,
}

/// A site's public product ids and content vectors, for ranking on the shopper's device
/// (binary `WSVEC001` layout; `If-None-Match` with the ETag answers 304).
#[utoipa::path(get, path = "/v1/sites/{site}/vectors", params(("site" = String, Path), VectorsQuery),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>), (status = 304), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub(crate) async fn vectors(
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
pub(crate) async fn catalog(
    State(s): State<Shared>,
    Path(site): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let st = s.clone();
    let known = if_none_match(&headers);
    let download = blocking(move || st.service.site_catalog(&site, known.as_deref())).await?;
    Ok(public_download(download, "application/json"))
}

/// Query of the neighbours route.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct NeighboursQuery {
    /// A served neighbour-list model (`itemknn`, `rp3beta`).
    model: String,
}

/// A neighbour-list model's lists into a site (binary `WSNBR001`): every other shop's
/// products with their neighbours here, for ranking the site on the shopper's device.
#[utoipa::path(get, path = "/v1/sites/{site}/neighbours", params(("site" = String, Path), NeighboursQuery),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>), (status = 304), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub(crate) async fn neighbours(
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
pub(crate) async fn upsert(
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
pub(crate) async fn remove(
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
pub(crate) async fn events(
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
pub(crate) async fn erase_session(
    State(s): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<SessionErased>, ApiError> {
    let st = s.clone();
    Ok(Json(blocking(move || st.service.erase_session(&id)).await?))
}

/// An experiment's report: per variant sessions, impressions, clicks, CTR with a
/// session-clustered 95% interval, cart and purchase rates, lift against control with its
/// interval and p-value, CTR by position; and the sample-ratio-mismatch check.
#[utoipa::path(get, path = "/v1/experiments/{key}/report", params(("key" = String, Path)),
    responses((status = 200, body = ExperimentReport), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub(crate) async fn experiment_report(
    State(s): State<Shared>,
    Path(key): Path<String>,
) -> Result<Json<ExperimentReport>, ApiError> {
    let st = s.clone();
    Ok(Json(blocking(move || st.service.experiment_report(&key)).await?))
}

/// The served sites and their models.
#[utoipa::path(get, path = "/v1/sites", responses((status = 200, body = Vec<SiteInfo>), (status = 429, body = ErrorBody)))]
pub(crate) async fn sites(State(s): State<Shared>) -> Result<Json<Vec<SiteInfo>>, ApiError> {
    let st = s.clone();
    Ok(Json(blocking(move || st.service.sites()).await?))
}

/// Liveness.
#[utoipa::path(get, path = "/healthz", responses((status = 200, body = String)))]
pub(crate) async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: artifacts and catalogs are loaded (the server only listens once they are).
#[utoipa::path(get, path = "/readyz", responses((status = 200, body = String)))]
pub(crate) async fn readyz(State(s): State<Shared>) -> Response {
    match s.service.sites() {
        Ok(v) if !v.is_empty() => "ready".into_response(),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response(),
    }
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", responses((status = 200, content_type = "text/plain", body = String)))]
pub(crate) async fn metrics(State(s): State<Shared>) -> Response {
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
pub(crate) async fn openapi() -> Response {
    Json(ApiDoc::openapi()).into_response()
}

/// Any path the router does not serve.
pub(crate) async fn no_route() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no_route", "no such route (see /openapi.json)")
}
