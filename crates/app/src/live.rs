//! Signals learnt from feedback while the service runs, without a restart: per-site
//! popularity (all-time engagement) and trending (engagement with exponential decay) of
//! products, item-to-item co-click counts within sessions, and the click posteriors of
//! experiment variants that the bandit draws from. Everything here is an aggregate keyed by
//! product or variant; the only per-session state is a short list of a session's recent
//! clicks (for co-clicks), bounded and erased with the session.

use std::collections::{HashMap, VecDeque};

use warmstart_store::events::{EventKind, FeedEvent};

/// Weight of an event kind in popularity and trending.
pub fn engagement_weight(kind: EventKind) -> f64 {
    match kind {
        EventKind::Impression => 0.0,
        EventKind::Click => 1.0,
        EventKind::Cart => 3.0,
        EventKind::Purchase => 5.0,
    }
}

/// Clicks remembered per session for co-clicks.
const RECENT_PER_SESSION: usize = 20;
/// Sessions remembered for co-clicks (oldest forgotten first).
const RECENT_SESSIONS: usize = 100_000;
/// Neighbours kept per product.
const MAX_NEIGHBOURS: usize = 500;

#[derive(Debug, Default)]
struct Decayed {
    value: f64,
    at: f64,
}

/// Live signals of every site.
#[derive(Debug)]
pub struct LiveSignals {
    half_life_seconds: f64,
    /// site → product → all-time engagement.
    popular: HashMap<String, HashMap<String, f64>>,
    /// site → product → decayed engagement.
    trending: HashMap<String, HashMap<String, Decayed>>,
    /// (site, product) → (site, product) → sessions that clicked both.
    co_clicks: HashMap<(String, String), HashMap<(String, String), u32>>,
    recent: HashMap<String, VecDeque<(String, String)>>,
    recent_order: VecDeque<String>,
    /// (experiment, variant) → (impressions, clicks).
    variants: HashMap<(String, String), (u64, u64)>,
}

impl LiveSignals {
    /// Empty signals; trending halves every `half_life_seconds`.
    pub fn new(half_life_seconds: f64) -> LiveSignals {
        LiveSignals {
            half_life_seconds: half_life_seconds.max(1.0),
            popular: HashMap::new(),
            trending: HashMap::new(),
            co_clicks: HashMap::new(),
            recent: HashMap::new(),
            recent_order: VecDeque::new(),
            variants: HashMap::new(),
        }
    }

    /// Counts one engagement (click, cart, purchase) of a session with a product at `at`
    /// (unix seconds).
    pub fn engage(&mut self, site: &str, product: &str, kind: EventKind, at: i64, session: &str) {
        let w = engagement_weight(kind);
        if w == 0.0 {
            return;
        }
        *self.popular.entry(site.to_string()).or_default().entry(product.to_string()).or_default() += w;
        let t = self.trending.entry(site.to_string()).or_default().entry(product.to_string()).or_default();
        let now = at as f64;
        if now >= t.at {
            t.value = t.value * 0.5f64.powf((now - t.at) / self.half_life_seconds) + w;
            t.at = now;
        } else {
            t.value += w * 0.5f64.powf((t.at - now) / self.half_life_seconds);
        }
        if kind != EventKind::Click {
            return;
        }
        let me = (site.to_string(), product.to_string());
        if !self.recent.contains_key(session) {
            self.recent_order.push_back(session.to_string());
            if self.recent_order.len() > RECENT_SESSIONS {
                if let Some(old) = self.recent_order.pop_front() {
                    self.recent.remove(&old);
                }
            }
        }
        let recent = self.recent.entry(session.to_string()).or_default();
        if recent.contains(&me) {
            return;
        }
        for other in recent.iter() {
            for (a, b) in [(&me, other), (other, &me)] {
                let n = self.co_clicks.entry(a.clone()).or_default();
                if n.len() < MAX_NEIGHBOURS || n.contains_key(b) {
                    *n.entry(b.clone()).or_default() += 1;
                }
            }
        }
        recent.push_back(me);
        if recent.len() > RECENT_PER_SESSION {
            recent.pop_front();
        }
    }

    /// Learns from one stored event row: its experiment variant's counts and its engagement.
    pub fn observe(&mut self, e: &FeedEvent) {
        if let (Some(x), Some(v)) = (&e.experiment, &e.variant) {
            match e.kind {
                EventKind::Impression => self.count_variant(x, v, 1, 0),
                EventKind::Click => self.count_variant(x, v, 0, 1),
                _ => {}
            }
        }
        self.engage(&e.site, &e.product, e.kind, e.at, &e.session);
    }

    /// Counts impressions and clicks of an experiment's variant.
    pub fn count_variant(&mut self, experiment: &str, variant: &str, impressions: u64, clicks: u64) {
        let c = self.variants.entry((experiment.to_string(), variant.to_string())).or_default();
        c.0 += impressions;
        c.1 += clicks;
    }

    /// (impressions, clicks) of a variant.
    pub fn variant_counts(&self, experiment: &str, variant: &str) -> (u64, u64) {
        self.variants.get(&(experiment.to_string(), variant.to_string())).copied().unwrap_or_default()
    }

    /// Forgets a session's recent clicks (aggregates keep no session).
    pub fn forget_session(&mut self, session: &str) {
        self.recent.remove(session);
        self.recent_order.retain(|s| s != session);
    }

    /// Products of a site with engagement: all-time (`trending = false`) or decayed to `now`.
    pub fn scores(&self, site: &str, trending: bool, now: i64) -> Vec<(&str, f64)> {
        if trending {
            self.trending
                .get(site)
                .map(|m| {
                    m.iter()
                        .map(|(p, d)| {
                            let age = (now as f64 - d.at).max(0.0);
                            (p.as_str(), d.value * 0.5f64.powf(age / self.half_life_seconds))
                        })
                        .collect()
                })
                .unwrap_or_default()
        } else {
            self.popular.get(site).map(|m| m.iter().map(|(p, v)| (p.as_str(), *v)).collect()).unwrap_or_default()
        }
    }

    /// Products most co-clicked with a product, on `target` (any site when `None`), best first.
    pub fn co_clicked(&self, site: &str, product: &str, target: Option<&str>, k: usize) -> Vec<(String, String, u32)> {
        let mut out: Vec<(String, String, u32)> = self
            .co_clicks
            .get(&(site.to_string(), product.to_string()))
            .map(|m| {
                m.iter()
                    .filter(|((s, _), _)| target.is_none_or(|t| t == s))
                    .map(|((s, p), n)| (s.clone(), p.clone(), *n))
                    .collect()
            })
            .unwrap_or_default();
        out.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.1.cmp(&b.1)));
        out.truncate(k);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trending_decays_and_co_clicks_pair_within_a_session() {
        let mut l = LiveSignals::new(3600.0);
        l.engage("s", "a", EventKind::Click, 0, "x");
        l.engage("s", "b", EventKind::Purchase, 3600, "x");
        l.engage("s", "a", EventKind::Impression, 3600, "y");
        let pop: HashMap<&str, f64> = l.scores("s", false, 3600).into_iter().collect();
        assert_eq!((pop["a"], pop["b"]), (1.0, 5.0));
        let tr: HashMap<&str, f64> = l.scores("s", true, 3600).into_iter().collect();
        assert!((tr["a"] - 0.5).abs() < 1e-9 && (tr["b"] - 5.0).abs() < 1e-9);
        // only clicks pair: the purchase of b did not
        assert!(l.co_clicked("s", "a", None, 5).is_empty());
        l.engage("s", "c", EventKind::Click, 3700, "x");
        l.engage("s", "c", EventKind::Click, 3700, "z");
        l.engage("s", "a", EventKind::Click, 3800, "z");
        assert_eq!(l.co_clicked("s", "a", Some("s"), 5), vec![("s".into(), "c".into(), 2)]);
        l.forget_session("x");
        assert!(!l.recent.contains_key("x") && l.recent_order.iter().all(|s| s != "x"));
    }
}
