//! The online loop of a [`Service`]: served recommendations are recorded, feedback events
//! (`POST /v1/events`) are validated against them and stored once, sessions can be erased
//! (`DELETE /v1/sessions/{id}`), old rows leave with the retention window, and live signals
//! and bandit posteriors learn from every accepted event.
//!
//! One writer thread owns a store connection: served lists are appended to a buffer it writes
//! every 10 ms in one transaction (the request never waits; a full buffer drops the list and
//! counts it), and event batches are validated and written by it in arrival order after the
//! buffer, so an event always sees the recommendation it names. Session ids are stored only as a keyed hash (SipHash-1-3 with a secret kept in the
//! store); recommendation records hold the shown items, never the shopper's history.

use std::collections::HashSet;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use warmstart_store::events::{Erased, EventKind, RecommendationRow, Stored};
use warmstart_store::Store;

use crate::experiment::{report_from_store, Experiments};
use crate::live::LiveSignals;
use crate::{Error, Result};

mod writer;
use writer::{writer, UNKNOWN_RECOMMENDATION_RETRIES};

/// Options of the online loop.
#[derive(Debug, Clone)]
pub struct FeedbackOptions {
    /// Events, recommendation records and keys older than this are deleted (seconds).
    pub retention_seconds: i64,
    /// Half-life of trending counts (seconds).
    pub trending_half_life_seconds: f64,
    /// Largest event batch.
    pub max_batch: usize,
    /// Served lists waiting for the writer before new ones are dropped.
    pub queue: usize,
    /// Seed of the bandit's draws.
    pub seed: u64,
}

impl Default for FeedbackOptions {
    fn default() -> Self {
        FeedbackOptions {
            retention_seconds: 90 * 86_400,
            trending_half_life_seconds: 6.0 * 3600.0,
            max_batch: 500,
            queue: 100_000,
            seed: 0x5eed,
        }
    }
}

/// What an event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    /// Items of a recommendation were shown.
    Impression,
    /// An item was clicked.
    Click,
    /// An item was put in the cart.
    Cart,
    /// An item was bought.
    Purchase,
}

impl EventType {
    fn kind(self) -> EventKind {
        match self {
            EventType::Impression => EventKind::Impression,
            EventType::Click => EventKind::Click,
            EventType::Cart => EventKind::Cart,
            EventType::Purchase => EventKind::Purchase,
        }
    }
}

/// A shown item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShownItem {
    /// Product id.
    pub id: String,
    /// 0-based position in the recommendation.
    #[schema(format = Int64, minimum = 0, maximum = 4294967295_u64)]
    pub position: u32,
}

/// One feedback event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventInput {
    /// `impression`, `click`, `cart` or `purchase`.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// Idempotency key (1–128 of letters, digits, `-_.:`): a resent event is a duplicate.
    pub key: String,
    /// Anonymous session id, random on the client (8–128 of letters, digits, `-_.:`).
    pub session: String,
    /// The recommendation (required for impressions and clicks).
    #[serde(default)]
    pub recommendation_id: Option<String>,
    /// Shown items (impressions).
    #[serde(default)]
    pub items: Vec<ShownItem>,
    /// Site of a cart or purchase without a recommendation.
    #[serde(default)]
    pub site: Option<String>,
    /// Product (click, cart, purchase).
    #[serde(default)]
    pub id: Option<String>,
    /// Its position in the recommendation (required for clicks).
    #[serde(default)]
    #[schema(format = Int64, minimum = 0, maximum = 4294967295_u64)]
    pub position: Option<u32>,
    /// Unix seconds (default: now); not in the future, not older than the retention window.
    #[serde(default)]
    pub time: Option<i64>,
}

/// `POST /v1/events`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventsRequest {
    /// Events, processed in order.
    pub events: Vec<EventInput>,
}

/// An event that was not stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RejectedEvent {
    /// Its index in the batch.
    pub index: usize,
    /// `bad_field`, `unknown_recommendation`, `session_mismatch`, `bad_position`,
    /// `wrong_item`, `no_impression`, `unknown_site`, `unknown_product`, `future_time` or
    /// `expired`.
    pub code: String,
    /// What is wrong.
    pub message: String,
}

/// `POST /v1/events`'s answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventsResponse {
    /// Events stored.
    pub accepted: usize,
    /// Events already counted (same key, or the same item of the same recommendation).
    pub duplicates: usize,
    /// Events refused, with why.
    pub rejected: Vec<RejectedEvent>,
}

/// `DELETE /v1/sessions/{id}`'s answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SessionErased {
    /// Event rows deleted.
    pub events: usize,
    /// Recommendation records deleted.
    pub recommendations: usize,
    /// Idempotency keys deleted.
    pub keys: usize,
}

/// An event checked for shape, waiting for the writer's checks against its recommendation.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    index: usize,
    key: String,
    session: String,
    kind: EventKind,
    recommendation: Option<String>,
    site: Option<String>,
    items: Vec<(String, Option<u32>)>,
    at: i64,
}

enum Outcome {
    Stored(Stored),
    Rejected(usize, &'static str, String),
}

enum Job {
    Events(Vec<Pending>, mpsc::Sender<Result<Vec<Outcome>>>),
    Erase(String, mpsc::Sender<Result<Erased>>),
    Purge(mpsc::Sender<Result<Erased>>),
    Flush(mpsc::Sender<()>),
}

/// The online loop's state inside a service.
pub struct Feedback {
    jobs: SyncSender<Job>,
    /// Served lists waiting for the writer (appended without waking it).
    lists: Arc<Mutex<Vec<RecommendationRow>>>,
    key: (u64, u64),
    pub(crate) live: Arc<Mutex<LiveSignals>>,
    pub(crate) experiments: Experiments,
    pub(crate) rng: Mutex<warmstart_core::Rng>,
    pub(crate) opts: FeedbackOptions,
    store_path: std::path::PathBuf,
    unrecorded: AtomicU64,
}

pub(crate) fn now_seconds() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn fresh_secret() -> [u8; 32] {
    let mut out = [0u8; 32];
    if std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut out)).is_err() {
        // std's RandomState is keyed from the OS
        use std::hash::{BuildHasher, Hasher};
        for (i, chunk) in out.chunks_mut(8).enumerate() {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_usize(i);
            h.write_u128(
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos(),
            );
            chunk.copy_from_slice(&h.finish().to_le_bytes());
        }
    }
    out
}

fn token_ok(s: &str, min: usize) -> bool {
    (min..=128).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

/// Checks a session id's shape (8–128 of letters, digits, `-_.:`).
pub fn check_session(field: &str, s: &str) -> Result<()> {
    if token_ok(s, 8) {
        Ok(())
    } else {
        Err(Error::bad(field, "a session id is 8–128 characters of letters, digits, - _ . :"))
    }
}

impl Feedback {
    /// Opens the loop on a store: its secret, live signals rebuilt from retained events, and
    /// the writer thread (which purges expired rows at once and then hourly).
    pub fn start(store_path: &Path, opts: FeedbackOptions, experiments: Experiments) -> Result<Feedback> {
        let mut store = Store::open(store_path)?;
        let secret = store.secret("session-hash", fresh_secret)?;
        let key = (
            u64::from_le_bytes(secret[..8].try_into().expect("8 bytes")),
            u64::from_le_bytes(secret[8..16].try_into().expect("8 bytes")),
        );
        store.purge_events(now_seconds() - opts.retention_seconds)?;
        let mut live = LiveSignals::new(opts.trending_half_life_seconds);
        // everything up to the cursor now, aggregated; what any process stores later, followed
        let cursor = store.feed_cursor()?;
        for e in store.recent_engagement(now_seconds() - opts.retention_seconds, cursor.event)? {
            live.engage(&e.site, &e.product, e.kind, e.at, &e.session);
        }
        for (x, v, kind, n) in store.variant_event_counts(cursor.event)? {
            match kind {
                EventKind::Impression => live.count_variant(&x, &v, n, 0),
                EventKind::Click => live.count_variant(&x, &v, 0, n),
                _ => {}
            }
        }
        let live = Arc::new(Mutex::new(live));
        let (tx, rx) = mpsc::sync_channel(64);
        let lists = Arc::new(Mutex::new(Vec::new()));
        let (writer_live, writer_lists) = (live.clone(), lists.clone());
        let retention = opts.retention_seconds;
        std::thread::Builder::new()
            .name("feedback-writer".into())
            .spawn(move || writer(store, rx, writer_lists, writer_live, retention, cursor))
            .map_err(|e| Error::io(store_path, e))?;
        Ok(Feedback {
            jobs: tx,
            lists,
            key,
            live,
            rng: Mutex::new(warmstart_core::Rng::new(opts.seed)),
            experiments,
            opts,
            store_path: store_path.to_path_buf(),
            unrecorded: AtomicU64::new(0),
        })
    }

    /// The stored form of a session id: a keyed hash, so the store never holds the id itself.
    pub fn session_hash(&self, session: &str) -> String {
        use std::hash::Hasher;
        let mut h = siphasher::sip::SipHasher13::new_with_keys(self.key.0, self.key.1);
        h.write(session.as_bytes());
        format!("{:016x}", h.finish())
    }

    /// Queues a served recommendation for recording (never waits on the writer; a full queue
    /// drops it and counts it).
    pub(crate) fn record(&self, row: RecommendationRow) {
        match self.lists.lock() {
            Ok(mut l) if l.len() < self.opts.queue => l.push(row),
            _ => {
                self.unrecorded.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Recommendations dropped because the writer fell behind.
    pub fn unrecorded(&self) -> u64 {
        self.unrecorded.load(Ordering::Relaxed)
    }

    fn call<T>(&self, job: impl FnOnce(mpsc::Sender<T>) -> Job) -> Result<T> {
        let (tx, rx) = mpsc::channel();
        let gone = || Error::Artifact {
            path: self.store_path.display().to_string(),
            reason: "the feedback writer stopped".into(),
        };
        self.jobs.send(job(tx)).map_err(|_| gone())?;
        rx.recv().map_err(|_| gone())
    }

    /// Waits until every queued record is written.
    pub fn flush(&self) -> Result<()> {
        self.call(Job::Flush)
    }

    /// Deletes expired rows now.
    pub fn purge(&self) -> Result<SessionErased> {
        let e = self.call(Job::Purge)??;
        Ok(SessionErased { events: e.events, recommendations: e.recommendations, keys: e.keys })
    }

    /// `DELETE /v1/sessions/{id}`: every row of the session, and its recent clicks in memory.
    pub fn erase_session(&self, session: &str) -> Result<SessionErased> {
        check_session("session", session)?;
        let e = self.call(|tx| Job::Erase(self.session_hash(session), tx))??;
        Ok(SessionErased { events: e.events, recommendations: e.recommendations, keys: e.keys })
    }

    /// `POST /v1/events`, with `known_product(site, id)` answering whether a site sells a
    /// product (`None`: no such site).
    pub fn post(
        &self,
        req: &EventsRequest,
        known_product: impl Fn(&str, &str) -> Option<bool>,
    ) -> Result<EventsResponse> {
        if req.events.is_empty() || req.events.len() > self.opts.max_batch {
            return Err(Error::bad("events", format!("1–{} events", self.opts.max_batch)));
        }
        let now = now_seconds();
        let mut out = EventsResponse::default();
        let mut pending = Vec::new();
        let mut keys = HashSet::new();
        for (index, e) in req.events.iter().enumerate() {
            match self.check(index, e, now, &known_product) {
                Err((code, message)) => out.rejected.push(RejectedEvent { index, code: code.into(), message }),
                Ok(p) => {
                    if !keys.insert(p.key.clone()) {
                        out.duplicates += 1;
                    } else {
                        pending.push(p);
                    }
                }
            }
        }
        // A list served by another replica on the same store is known here once that
        // replica's writer has flushed it (every RECORD_BATCH_WAIT): an event naming a list
        // not found yet is retried a few times before it is refused as unknown.
        for wait in UNKNOWN_RECOMMENDATION_RETRIES.iter().map(Some).chain([None]) {
            if pending.is_empty() {
                break;
            }
            let outcomes = self.call(|tx| Job::Events(pending.clone(), tx))??;
            let mut retry = Vec::new();
            for (p, o) in pending.into_iter().zip(outcomes) {
                match o {
                    Outcome::Rejected(_, code, _) if code == "unknown_recommendation" && wait.is_some() => {
                        retry.push(p)
                    }
                    Outcome::Stored(Stored::Accepted(_)) => out.accepted += 1,
                    Outcome::Stored(Stored::Duplicate) => out.duplicates += 1,
                    Outcome::Rejected(index, code, message) => {
                        out.rejected.push(RejectedEvent { index, code: code.into(), message })
                    }
                }
            }
            if let (Some(w), false) = (wait, retry.is_empty()) {
                std::thread::sleep(*w);
            }
            pending = retry;
        }
        out.rejected.sort_by_key(|r| r.index);
        Ok(out)
    }

    /// Shape checks that need no store.
    fn check(
        &self,
        index: usize,
        e: &EventInput,
        now: i64,
        known_product: &impl Fn(&str, &str) -> Option<bool>,
    ) -> std::result::Result<Pending, (&'static str, String)> {
        let at = format!("events[{index}]");
        if !token_ok(&e.key, 1) {
            return Err(("bad_field", format!("{at}.key: 1–128 characters of letters, digits, - _ . :")));
        }
        if !token_ok(&e.session, 8) {
            return Err(("bad_field", format!("{at}.session: 8–128 characters of letters, digits, - _ . :")));
        }
        let time = e.time.unwrap_or(now);
        if time > now + 300 {
            return Err(("future_time", format!("{at}.time: {time} is in the future")));
        }
        if time < now - self.opts.retention_seconds {
            return Err((
                "expired",
                format!("{at}.time: older than the {} s retention window", self.opts.retention_seconds),
            ));
        }
        if let Some(r) = &e.recommendation_id {
            if !token_ok(r, 1) {
                return Err(("bad_field", format!("{at}.recommendation_id: not a recommendation id")));
            }
        }
        let items: Vec<(String, Option<u32>)> = match e.kind {
            EventType::Impression => {
                if e.recommendation_id.is_none() {
                    return Err((
                        "bad_field",
                        format!("{at}.recommendation_id: an impression names its recommendation"),
                    ));
                }
                if e.id.is_some() || e.position.is_some() {
                    return Err(("bad_field", format!("{at}: an impression lists its `items`, not `id`/`position`")));
                }
                if e.items.is_empty() || e.items.len() > 1000 {
                    return Err(("bad_field", format!("{at}.items: 1–1000 shown items")));
                }
                let mut seen = HashSet::new();
                if let Some(d) = e.items.iter().find(|i| !seen.insert(i.position)) {
                    return Err(("bad_position", format!("{at}.items: position {} given twice", d.position)));
                }
                e.items.iter().map(|i| (i.id.clone(), Some(i.position))).collect()
            }
            kind => {
                if !e.items.is_empty() {
                    return Err(("bad_field", format!("{at}.items: only impressions list items")));
                }
                let Some(id) = e.id.clone().filter(|i| !i.is_empty() && i.len() <= 512) else {
                    return Err(("bad_field", format!("{at}.id: the product is required")));
                };
                if kind == EventType::Click && (e.recommendation_id.is_none() || e.position.is_none()) {
                    return Err(("bad_field", format!("{at}: a click names its recommendation_id and position")));
                }
                if e.recommendation_id.is_none() {
                    let Some(site) = e.site.as_deref() else {
                        return Err(("bad_field", format!("{at}.site: required without a recommendation_id")));
                    };
                    match known_product(site, &id) {
                        None => return Err(("unknown_site", format!("{at}.site: no site `{site}`"))),
                        Some(false) => {
                            return Err(("unknown_product", format!("{at}.id: `{site}` has no product `{id}`")))
                        }
                        Some(true) => {}
                    }
                }
                vec![(id, e.position)]
            }
        };
        Ok(Pending {
            index,
            key: e.key.clone(),
            session: self.session_hash(&e.session),
            kind: e.kind.kind(),
            recommendation: e.recommendation_id.clone(),
            site: e.site.clone(),
            items,
            at: time,
        })
    }

    /// The report of a declared experiment from the stored events.
    pub fn report(&self, key: &str) -> Result<crate::experiment::ExperimentReport> {
        let x =
            self.experiments.get(key).ok_or_else(|| Error::NotFound { what: "experiment", key: key.to_string() })?;
        self.flush()?;
        report_from_store(&Store::open(&self.store_path)?, x)
    }
}
