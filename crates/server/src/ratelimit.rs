//! Token-bucket rate limits: per client address for every route, per API key for catalog
//! writes. A bucket holds up to `burst` tokens and refills at `per_second`; a request takes one
//! token or is answered `429` with `Retry-After`. Buckets live in memory and idle full ones
//! are dropped, so a flood from many addresses cannot grow the table without bound.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Instant;

/// A rate: sustained requests per second and the burst allowed above it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    per_second: f64,
    burst: f64,
}

impl Rate {
    /// `per_second` sustained (> 0 and finite), bursts of up to `burst` requests (≥ 1).
    pub fn new(per_second: f64, burst: u32) -> Option<Rate> {
        (per_second.is_finite() && per_second > 0.0 && burst >= 1).then_some(Rate { per_second, burst: burst as f64 })
    }
    /// Requests per second.
    pub fn per_second(&self) -> f64 {
        self.per_second
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Most buckets kept before idle full ones are swept.
const SWEEP_AT: usize = 65_536;

/// The buckets and when idle ones were last swept.
#[derive(Debug)]
struct Table<K> {
    buckets: HashMap<K, Bucket>,
    swept: Option<Instant>,
}

/// Buckets by key (a client address, an API key).
#[derive(Debug)]
pub struct Limiter<K> {
    rate: Rate,
    table: Mutex<Table<K>>,
}

impl<K: Eq + Hash + Clone> Limiter<K> {
    /// A limiter at `rate` per key.
    pub fn new(rate: Rate) -> Self {
        Limiter { rate, table: Mutex::new(Table { buckets: HashMap::new(), swept: None }) }
    }

    /// Takes a token for `key` at `now`: `Ok(())`, or `Err(seconds until one is available)`.
    pub fn check(&self, key: &K, now: Instant) -> Result<(), f64> {
        let Rate { per_second, burst } = self.rate;
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let due = table.swept.is_none_or(|t| now.saturating_duration_since(t).as_secs_f64() >= 1.0);
        if table.buckets.len() >= SWEEP_AT && due && !table.buckets.contains_key(key) {
            // drop the buckets that have refilled: they hold no state worth keeping (at most
            // once a second, so a flood of new addresses cannot make every request a full scan)
            table.swept = Some(now);
            table
                .buckets
                .retain(|_, b| b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * per_second < burst);
        }
        let b = table.buckets.entry(key.clone()).or_insert(Bucket { tokens: burst, at: now });
        b.tokens = (b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * per_second).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err((1.0 - b.tokens) / per_second)
        }
    }

    /// Whether `key` has a token at `now`, without taking it: `Err(seconds until one is)`.
    pub fn available(&self, key: &K, now: Instant) -> Result<(), f64> {
        let Rate { per_second, burst } = self.rate;
        let table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let Some(b) = table.buckets.get(key) else { return Ok(()) };
        let tokens = (b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * per_second).min(burst);
        if tokens >= 1.0 {
            Ok(())
        } else {
            Err((1.0 - tokens) / per_second)
        }
    }

    /// Buckets held.
    pub fn len(&self) -> usize {
        self.table.lock().unwrap_or_else(|p| p.into_inner()).buckets.len()
    }

    /// Whether no bucket is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bursts_then_refills_at_the_rate() {
        let l = Limiter::new(Rate::new(10.0, 3).unwrap());
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.check(&"a", t0).is_ok());
        }
        let wait = l.check(&"a", t0).unwrap_err();
        assert!((wait - 0.1).abs() < 1e-9, "{wait}");
        // another key has its own bucket; looking does not take a token
        assert!(l.available(&"a", t0).is_err());
        assert!(l.available(&"b", t0).is_ok() && l.available(&"b", t0).is_ok());
        assert!(l.check(&"b", t0).is_ok());
        // 0.1 s later one token is back, not more
        let t1 = t0 + Duration::from_millis(100);
        assert!(l.check(&"a", t1).is_ok());
        assert!(l.check(&"a", t1).is_err());
        // a long pause refills to the burst, never beyond
        let t2 = t1 + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(l.check(&"a", t2).is_ok());
        }
        assert!(l.check(&"a", t2).is_err());
    }

    #[test]
    fn a_flood_of_addresses_is_swept() {
        let l = Limiter::new(Rate::new(1000.0, 2).unwrap());
        let t0 = Instant::now();
        for k in 0..SWEEP_AT as u32 {
            l.check(&k, t0).unwrap();
        }
        assert_eq!(l.len(), SWEEP_AT);
        // a second later every bucket has refilled: the next new key sweeps them
        l.check(&u32::MAX, t0 + Duration::from_secs(1)).unwrap();
        assert_eq!(l.len(), 1);
    }

    #[test]
    fn rates_are_validated() {
        assert!(Rate::new(0.0, 1).is_none());
        assert!(Rate::new(f64::NAN, 1).is_none());
        assert!(Rate::new(5.0, 0).is_none());
        assert_eq!(Rate::new(5.0, 10).unwrap().per_second(), 5.0);
    }
}
