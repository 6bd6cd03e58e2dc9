//! What runs around every request: the access log and metrics, and the rate limits.

use super::*;

/// Logs one JSON line per request (route template, method, status, milliseconds, model) and
/// feeds the metrics; bodies, queries and histories are never logged.
pub(crate) async fn observe(State(s): State<Shared>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route =
        req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let resp = next.run(req).await;
    let seconds = started.elapsed().as_secs_f64();
    let status = resp.status().as_u16();
    let model = resp.extensions().get::<ModelLabel>().map(|m| m.0.clone());
    s.metrics.request(&route, &method, status, seconds, model.as_deref());
    if route != "/metrics" && route != "/healthz" && route != "/readyz" {
        eprintln!(
            "{}",
            serde_json::json!({"route": route, "method": method, "status": status, "ms": (seconds * 1e5).round() / 100.0, "model": model})
        );
    }
    resp
}

/// A `429` naming what was limited, with `Retry-After` in whole seconds.
pub(crate) fn too_many(wait_seconds: f64, what: &str) -> Response {
    let secs = wait_seconds.ceil().max(1.0) as u64;
    let mut r =
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", format!("too many {what}; retry in {secs} s"))
            .into_response();
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    r
}

/// FNV-1a of the API key a request presents (the limiter never holds the key itself).
pub(crate) fn presented_key(headers: &HeaderMap) -> u64 {
    let key = headers
        .get(header::AUTHORIZATION)
        .or_else(|| headers.get("x-api-key"))
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    key.iter().fold(0xcbf29ce484222325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x100000001b3))
}

/// Rate limits: per address, per API key on writes, and on rejected API keys per address.
pub(crate) async fn limit(State(s): State<Shared>, req: Request, next: Next) -> Response {
    let now = Instant::now();
    let ip = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let exempt = matches!(req.uri().path(), "/healthz" | "/readyz" | "/metrics");
    if let (Some(l), Some(ip), false) = (&s.limits.per_address, ip, exempt) {
        if let Err(wait) = l.check(&ip, now) {
            return too_many(wait, "requests from this address");
        }
    }
    let write =
        (req.method() == Method::PUT || req.method() == Method::DELETE) && req.uri().path().starts_with("/v1/sites/");
    if write {
        if let Some(ip) = ip {
            if let Err(wait) = s.limits.auth_failures.available(&ip, now) {
                return too_many(wait, "rejected API keys from this address");
            }
        }
        if let Some(l) = &s.limits.writes {
            if let Err(wait) = l.check(&presented_key(req.headers()), now) {
                return too_many(wait, "catalog writes with this API key");
            }
        }
    }
    let resp = next.run(req).await;
    if write && resp.status() == StatusCode::UNAUTHORIZED {
        if let Some(ip) = ip {
            let _ = s.limits.auth_failures.check(&ip, Instant::now());
        }
    }
    resp
}
