//! The online loop's tables: served recommendations, feedback events, their idempotency keys
//! and the experiment aggregates read by reports. Validation of what an event may say lives
//! in the application layer; this module persists, deduplicates and aggregates.

/// A served recommendation list (no history: only what was shown, by which model).
#[derive(Debug, Clone, PartialEq)]
pub struct RecommendationRow {
    /// Recommendation id.
    pub id: String,
    /// Keyed hash of the session id, when the request had one.
    pub session: Option<String>,
    /// Site ranked.
    pub site: String,
    /// Model name.
    pub model: String,
    /// Experiment key.
    pub experiment: Option<String>,
    /// Variant name.
    pub variant: Option<String>,
    /// Shown product ids, best first.
    pub items: Vec<String>,
    /// Unix seconds.
    pub at: i64,
}

/// What a feedback event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// Items were shown.
    Impression = 0,
    /// An item was clicked.
    Click = 1,
    /// An item was put in the cart.
    Cart = 2,
    /// An item was bought.
    Purchase = 3,
}

impl EventKind {
    pub(crate) fn from_i64(v: i64) -> Option<EventKind> {
        Some(match v {
            0 => EventKind::Impression,
            1 => EventKind::Click,
            2 => EventKind::Cart,
            3 => EventKind::Purchase,
            _ => return None,
        })
    }
}

/// One validated event: one row per item it names.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    /// Idempotency key of the event.
    pub key: String,
    /// Keyed hash of the session id.
    pub session: String,
    /// Kind.
    pub kind: EventKind,
    /// The recommendation it refers to.
    pub recommendation: Option<String>,
    /// Experiment of that recommendation.
    pub experiment: Option<String>,
    /// Variant of that recommendation.
    pub variant: Option<String>,
    /// Site.
    pub site: String,
    /// (product id, position in the recommendation) pairs.
    pub items: Vec<(String, Option<u32>)>,
    /// Unix seconds.
    pub at: i64,
}

/// What storing one event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// New: this many item rows were written.
    Accepted(usize),
    /// Its idempotency key was seen before, or every item row it names is already counted.
    Duplicate,
}

/// One session of one variant in an experiment: its feedback counts.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionCounts {
    /// Variant.
    pub variant: String,
    /// Impressions (shown items).
    pub impressions: u64,
    /// Clicks.
    pub clicks: u64,
    /// Add-to-carts.
    pub carts: u64,
    /// Purchases.
    pub purchases: u64,
}

/// Impressions and clicks of a variant at one position.
#[derive(Debug, Clone, PartialEq)]
pub struct PositionCounts {
    /// Variant.
    pub variant: String,
    /// 0-based position.
    pub position: u32,
    /// Impressions.
    pub impressions: u64,
    /// Clicks.
    pub clicks: u64,
}

/// What deleting a session or purging old events removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Erased {
    /// Event rows.
    pub events: usize,
    /// Recommendation records.
    pub recommendations: usize,
    /// Idempotency keys.
    pub keys: usize,
}

/// A stored click, cart or purchase.
#[derive(Debug, Clone, PartialEq)]
pub struct Engagement {
    /// Site.
    pub site: String,
    /// Product id.
    pub product: String,
    /// Click, cart or purchase.
    pub kind: EventKind,
    /// Unix seconds.
    pub at: i64,
    /// Keyed hash of the session id.
    pub session: String,
}

/// One stored event row as replicas read it back: in the order rows were stored, so a
/// process can follow what every other process on the store recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedEvent {
    /// Row id: increasing in commit order on both backends.
    pub id: i64,
    /// Site.
    pub site: String,
    /// Product id.
    pub product: String,
    /// Kind.
    pub kind: EventKind,
    /// Unix seconds.
    pub at: i64,
    /// Keyed hash of the session id.
    pub session: String,
    /// Experiment of the recommendation it refers to.
    pub experiment: Option<String>,
    /// Variant of that recommendation.
    pub variant: Option<String>,
}

/// Where a follower of the event feed stands: the last event row and the last erasure read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeedCursor {
    /// Last event row id read.
    pub event: i64,
    /// Last erasure id read.
    pub erasure: i64,
}
