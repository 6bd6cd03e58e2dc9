//! The online loop's writer thread: served lists in batches, event batches in order, the
//! store's event feed into live signals, erasures and the retention purge.

use std::collections::HashSet;
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use warmstart_store::events::{EventKind, EventRow, FeedCursor, RecommendationRow};
use warmstart_store::Store;

use super::{now_seconds, Job, Outcome, Pending};
use crate::live::LiveSignals;
use crate::{Error, Result};

/// How often the writer writes the served lists that gathered (one transaction each time).
pub(super) const RECORD_BATCH_WAIT: Duration = Duration::from_millis(10);

/// Waits before retrying events that name a list not (yet) in the store: another replica
/// records its lists within RECORD_BATCH_WAIT plus a commit.
pub(super) const UNKNOWN_RECOMMENDATION_RETRIES: [Duration; 3] =
    [Duration::from_millis(15), Duration::from_millis(30), Duration::from_millis(60)];

/// How often the writer reads what every process on the store recorded (events and erasures)
/// when it has written nothing itself.
const FEED_POLL: Duration = Duration::from_millis(250);

/// Event rows read from the feed per query.
const FEED_CHUNK: usize = 5_000;

/// How long an erased session's hash stays in `erasures` for other processes to read.
const ERASURE_KEPT_SECONDS: i64 = 3600;

/// The writer: every RECORD_BATCH_WAIT, or as soon as a job arrives, the served lists that
/// gathered go in one transaction; then the job (events in order, erasure, purge, flush). A
/// list is queued before its response is sent, so it is written before any event naming it is
/// handled. Live signals follow the store's event feed — this process's events right after
/// writing them, other replicas' within FEED_POLL — so every replica learns from every event
/// once. Expired rows are purged hourly.
pub(super) fn writer(
    mut store: Store,
    rx: Receiver<Job>,
    lists: Arc<Mutex<Vec<RecommendationRow>>>,
    live: Arc<Mutex<LiveSignals>>,
    retention: i64,
    mut cursor: FeedCursor,
) {
    let mut last_purge = Instant::now();
    let mut last_follow = Instant::now();
    let log = |what: &str, e: &dyn std::fmt::Display| {
        eprintln!("{}", serde_json::json!({"level": "error", "writer": what, "error": e.to_string()}));
    };
    loop {
        let job = match rx.recv_timeout(RECORD_BATCH_WAIT) {
            Ok(j) => Some(j),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        let records = lists.lock().map(|mut l| std::mem::take(&mut *l)).unwrap_or_default();
        if !records.is_empty() {
            if let Err(e) = store.record_recommendations(&records) {
                log("record", &e);
            }
        }
        let due = last_follow.elapsed() >= FEED_POLL;
        let mut follow = |store: &Store| {
            last_follow = Instant::now();
            if let Err(e) = follow_feed(store, &mut cursor, &live) {
                log("follow", &e);
            }
        };
        match job {
            None if due => follow(&store),
            None => {}
            Some(Job::Events(pending, reply)) => {
                let outcome = write_events(&mut store, pending);
                follow(&store);
                let _ = reply.send(outcome);
            }
            Some(Job::Erase(session, reply)) => {
                if let Ok(mut l) = live.lock() {
                    l.forget_session(&session);
                }
                let _ = reply.send(store.delete_session(&session).map_err(Error::from));
            }
            Some(Job::Purge(reply)) => {
                let _ = reply.send(store.purge_events(now_seconds() - retention).map_err(Error::from));
            }
            Some(Job::Flush(reply)) => {
                let _ = reply.send(());
            }
        }
        if last_purge.elapsed() > Duration::from_secs(3600) {
            last_purge = Instant::now();
            if let Err(e) = store.purge_events(now_seconds() - retention) {
                log("purge", &e);
            }
            if let Err(e) = store.prune_erasures(now_seconds() - ERASURE_KEPT_SECONDS) {
                log("prune erasures", &e);
            }
        }
    }
}

/// Reads the event rows and erasures stored after `cursor` by any process and feeds them to
/// the live signals.
fn follow_feed(store: &Store, cursor: &mut FeedCursor, live: &Mutex<LiveSignals>) -> Result<()> {
    loop {
        let rows = store.events_after(cursor.event, FEED_CHUNK)?;
        if let Ok(mut l) = live.lock() {
            for e in &rows {
                l.observe(e);
            }
        }
        if let Some(last) = rows.last() {
            cursor.event = last.id;
        }
        if rows.len() < FEED_CHUNK {
            break;
        }
    }
    let erased = store.erasures_after(cursor.erasure)?;
    if let Ok(mut l) = live.lock() {
        for (_, session) in &erased {
            l.forget_session(session);
        }
    }
    if let Some((id, _)) = erased.last() {
        cursor.erasure = *id;
    }
    Ok(())
}

/// Validates events against their recommendations and stores them.
fn write_events(store: &mut Store, pending: Vec<Pending>) -> Result<Vec<Outcome>> {
    let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(pending.len());
    let mut rows = Vec::new();
    let mut row_of = Vec::new();
    // impressions earlier in this batch: (recommendation, product)
    let mut shown: HashSet<(String, String)> = HashSet::new();
    for p in pending {
        let rec = match &p.recommendation {
            None => None,
            Some(id) => match store.recommendation(id)? {
                Some(r) => Some(r),
                None => {
                    outcomes.push(Some(Outcome::Rejected(
                        p.index,
                        "unknown_recommendation",
                        format!("events[{}].recommendation_id: no recommendation `{id}` (unknown or expired)", p.index),
                    )));
                    continue;
                }
            },
        };
        let reject = |code: &'static str, message: String| Some(Outcome::Rejected(p.index, code, message));
        let mut items = p.items.clone();
        let mut bad = None;
        if let Some(r) = &rec {
            if r.session.as_ref().is_some_and(|s| *s != p.session) {
                bad = reject(
                    "session_mismatch",
                    format!("events[{}].session: not the session of the recommendation", p.index),
                );
            } else if p.site.as_ref().is_some_and(|s| *s != r.site) {
                bad = reject("bad_field", format!("events[{}].site: the recommendation is for `{}`", p.index, r.site));
            }
            for (id, pos) in items.iter_mut() {
                if bad.is_some() {
                    break;
                }
                match *pos {
                    Some(q) if q as usize >= r.items.len() => {
                        bad = reject(
                            "bad_position",
                            format!("events[{}]: position {q} is outside the {} shown items", p.index, r.items.len()),
                        );
                    }
                    Some(q) if r.items[q as usize] != *id => {
                        bad = reject(
                            "wrong_item",
                            format!("events[{}]: position {q} showed `{}`, not `{id}`", p.index, r.items[q as usize]),
                        );
                    }
                    Some(_) => {}
                    None => match r.items.iter().position(|x| x == id) {
                        Some(q) => *pos = Some(q as u32),
                        None => {
                            bad = reject(
                                "wrong_item",
                                format!("events[{}].id: `{id}` was not in the recommendation", p.index),
                            )
                        }
                    },
                }
            }
            if bad.is_none() && p.kind == EventKind::Click {
                let (id, _) = &items[0];
                if !shown.contains(&(r.id.clone(), id.clone())) && !store.has_event(&r.id, EventKind::Impression, id)? {
                    bad = reject(
                        "no_impression",
                        format!("events[{}]: a click on `{id}` before its impression", p.index),
                    );
                }
            }
        }
        if bad.is_some() {
            outcomes.push(bad);
            continue;
        }
        if p.kind == EventKind::Impression {
            if let Some(r) = &rec {
                shown.extend(items.iter().map(|(id, _)| (r.id.clone(), id.clone())));
            }
        }
        row_of.push(outcomes.len());
        outcomes.push(None);
        rows.push(EventRow {
            key: p.key,
            session: p.session,
            kind: p.kind,
            recommendation: rec.as_ref().map(|r| r.id.clone()),
            experiment: rec.as_ref().and_then(|r| r.experiment.clone()),
            variant: rec.as_ref().and_then(|r| r.variant.clone()),
            site: rec.as_ref().map(|r| r.site.clone()).or(p.site).unwrap_or_default(),
            items,
            at: p.at,
        });
    }
    let stored = store.insert_events(&rows)?;
    for (slot, s) in row_of.into_iter().zip(stored) {
        outcomes[slot] = Some(Outcome::Stored(s));
    }
    Ok(outcomes.into_iter().flatten().collect())
}
