//! Prometheus metrics: requests by route and status, latency histograms by route and
//! model, unknown products in histories, catalog and index sizes. Hand-rolled text
//! exposition (format 0.0.4); no label carries user data.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// Upper bounds (seconds) of the latency buckets.
const BUCKETS: [f64; 14] = [0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (c, b) in self.counts.iter_mut().zip(BUCKETS) {
            if seconds <= b {
                *c += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }
}

#[derive(Default)]
struct State {
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<(String, String), Histogram>,
    unknown_products: u64,
    embedded_products: u64,
    /// accepted, duplicate, rejected events
    events: [u64; 3],
    /// catalog changes applied from the store, failed syncs
    catalog_sync: [u64; 2],
    /// artifacts loaded after start
    artifacts_loaded: u64,
}

/// The service's counters.
#[derive(Default)]
pub struct Metrics {
    state: Mutex<State>,
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl Metrics {
    /// Counts a finished request (route template, method, status, seconds, model if any).
    pub fn request(&self, route: &str, method: &str, status: u16, seconds: f64, model: Option<&str>) {
        let Ok(mut s) = self.state.lock() else { return };
        *s.requests.entry((route.to_string(), method.to_string(), status)).or_default() += 1;
        s.latency.entry((route.to_string(), model.unwrap_or("").to_string())).or_default().observe(seconds);
    }
    /// Counts history entries that could not be used, and products embedded on the fly.
    pub fn history(&self, unknown: usize, embedded: usize) {
        if let Ok(mut s) = self.state.lock() {
            s.unknown_products += unknown as u64;
            s.embedded_products += embedded as u64;
        }
    }
    /// Counts the outcome of an event batch.
    pub fn events(&self, accepted: usize, duplicates: usize, rejected: usize) {
        if let Ok(mut s) = self.state.lock() {
            s.events[0] += accepted as u64;
            s.events[1] += duplicates as u64;
            s.events[2] += rejected as u64;
        }
    }
    /// Counts a catalog sync with the store: changes applied, or a failure.
    pub fn catalog_sync(&self, applied: usize, failed: bool) {
        if let Ok(mut s) = self.state.lock() {
            s.catalog_sync[0] += applied as u64;
            s.catalog_sync[1] += failed as u64;
        }
    }
    /// Counts an artifact published after start and now served.
    pub fn artifact_loaded(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.artifacts_loaded += 1;
        }
    }
    /// The exposition text, with catalog and index sizes (site, live products, indexed).
    pub fn render(&self, sizes: &[(String, usize, usize)]) -> String {
        let mut out = String::new();
        let Ok(s) = self.state.lock() else { return out };
        out.push_str("# HELP warmstart_requests_total HTTP requests by route, method and status.\n");
        out.push_str("# TYPE warmstart_requests_total counter\n");
        for ((route, method, status), n) in &s.requests {
            let _ = writeln!(
                out,
                "warmstart_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {n}",
                escape(route),
                escape(method)
            );
        }
        out.push_str("# HELP warmstart_request_seconds Request latency by route and model.\n");
        out.push_str("# TYPE warmstart_request_seconds histogram\n");
        for ((route, model), h) in &s.latency {
            let labels = format!("route=\"{}\",model=\"{}\"", escape(route), escape(model));
            for (b, c) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(out, "warmstart_request_seconds_bucket{{{labels},le=\"{b}\"}} {c}");
            }
            let _ = writeln!(out, "warmstart_request_seconds_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "warmstart_request_seconds_sum{{{labels}}} {}", h.sum);
            let _ = writeln!(out, "warmstart_request_seconds_count{{{labels}}} {}", h.count);
        }
        out.push_str("# HELP warmstart_history_unknown_products_total History entries that named no known product.\n");
        out.push_str("# TYPE warmstart_history_unknown_products_total counter\n");
        let _ = writeln!(out, "warmstart_history_unknown_products_total {}", s.unknown_products);
        out.push_str("# HELP warmstart_history_embedded_products_total History products embedded from metadata.\n");
        out.push_str("# TYPE warmstart_history_embedded_products_total counter\n");
        let _ = writeln!(out, "warmstart_history_embedded_products_total {}", s.embedded_products);
        out.push_str("# HELP warmstart_events_total Feedback events by outcome.\n");
        out.push_str("# TYPE warmstart_events_total counter\n");
        for (outcome, n) in ["accepted", "duplicate", "rejected"].iter().zip(s.events) {
            let _ = writeln!(out, "warmstart_events_total{{outcome=\"{outcome}\"}} {n}");
        }
        out.push_str("# HELP warmstart_catalog_changes_synced_total Catalog changes picked up from the store (other replicas' writes included).\n");
        out.push_str("# TYPE warmstart_catalog_changes_synced_total counter\n");
        let _ = writeln!(out, "warmstart_catalog_changes_synced_total {}", s.catalog_sync[0]);
        out.push_str(
            "# HELP warmstart_catalog_sync_failures_total Catalog syncs with the store that failed (retried).\n",
        );
        out.push_str("# TYPE warmstart_catalog_sync_failures_total counter\n");
        let _ = writeln!(out, "warmstart_catalog_sync_failures_total {}", s.catalog_sync[1]);
        out.push_str("# HELP warmstart_artifacts_loaded_total Trained artifacts picked up after start (no restart).\n");
        out.push_str("# TYPE warmstart_artifacts_loaded_total counter\n");
        let _ = writeln!(out, "warmstart_artifacts_loaded_total {}", s.artifacts_loaded);
        out.push_str("# HELP warmstart_catalog_products Live products per site.\n");
        out.push_str("# TYPE warmstart_catalog_products gauge\n");
        for (site, live, _) in sizes {
            let _ = writeln!(out, "warmstart_catalog_products{{site=\"{}\"}} {live}", escape(site));
        }
        out.push_str("# HELP warmstart_index_vectors Vectors in the content-space ANN index per site.\n");
        out.push_str("# TYPE warmstart_index_vectors gauge\n");
        for (site, _, indexed) in sizes {
            let _ = writeln!(out, "warmstart_index_vectors{{site=\"{}\"}} {indexed}", escape(site));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = super::Metrics::default();
        m.request("/v1/recommend", "POST", 200, 0.0015, Some("itemknn"));
        m.request("/v1/recommend", "POST", 200, 0.2, Some("itemknn"));
        let text = m.render(&[("a".into(), 10, 8)]);
        assert!(text.contains("le=\"0.002\"} 1"), "{text}");
        assert!(text.contains("le=\"0.25\"} 2"), "{text}");
        assert!(text.contains("warmstart_requests_total{route=\"/v1/recommend\",method=\"POST\",status=\"200\"} 2"));
        assert!(text.contains("warmstart_index_vectors{site=\"a\"} 8"));
    }
}
