//! The online loop's tables in SQLite: served lists, events, idempotency keys, secrets.

use rusqlite::{params, OptionalExtension};

use super::SqliteStore;
use crate::events::{
    Engagement, Erased, EventKind, EventRow, FeedCursor, FeedEvent, PositionCounts, RecommendationRow, SessionCounts,
    Stored,
};
use crate::{Error, Result};

pub(super) fn get_secret(s: &SqliteStore, name: &str) -> Result<Option<[u8; 32]>> {
    let got: Option<Vec<u8>> = s
        .conn
        .query_row("SELECT value FROM secrets WHERE name = ?1", params![name], |r| r.get(0))
        .optional()
        .map_err(|e| s.err(e))?;
    Ok(got.and_then(|v| <[u8; 32]>::try_from(v.as_slice()).ok()))
}

pub(super) fn secret_or_insert(s: &mut SqliteStore, name: &str, fresh: [u8; 32]) -> Result<[u8; 32]> {
    s.conn
        .execute("INSERT OR IGNORE INTO secrets(name, value) VALUES (?1, ?2)", params![name, &fresh[..]])
        .map_err(|e| s.err(e))?;
    Ok(get_secret(s, name)?.unwrap_or(fresh))
}
/// Records served recommendations (one transaction).
pub(super) fn record_recommendations(s: &mut SqliteStore, rows: &[RecommendationRow]) -> Result<()> {
    let path = s.path.clone();
    let err = |e| Error::Sqlite { path: path.clone(), source: e };
    let tx = super::begin_write(&mut s.conn).map_err(err)?;
    {
        let mut st = tx
            .prepare_cached(
                "INSERT OR IGNORE INTO recommendations(id, session, site, model, experiment, variant, items, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .map_err(err)?;
        for r in rows {
            let items = serde_json::to_string(&r.items).unwrap_or_else(|_| "[]".into());
            st.execute(params![r.id, r.session, r.site, r.model, r.experiment, r.variant, items, r.at]).map_err(err)?;
        }
    }
    tx.commit().map_err(err)
}

/// A recorded recommendation.
pub(super) fn recommendation(s: &SqliteStore, id: &str) -> Result<Option<RecommendationRow>> {
    s.conn
        .prepare_cached(
            "SELECT id, session, site, model, experiment, variant, items, at FROM recommendations WHERE id = ?1",
        )
        .and_then(|mut st| {
            st.query_row(params![id], |r| {
                let items: String = r.get(6)?;
                Ok(RecommendationRow {
                    id: r.get(0)?,
                    session: r.get(1)?,
                    site: r.get(2)?,
                    model: r.get(3)?,
                    experiment: r.get(4)?,
                    variant: r.get(5)?,
                    items: serde_json::from_str(&items).unwrap_or_default(),
                    at: r.get(7)?,
                })
            })
            .optional()
        })
        .map_err(|e| s.err(e))
}

/// Stores validated events in one transaction, in order: an event whose key was seen, or
/// whose every item row is already counted (an item of a recommendation is shown, clicked,
/// carted and bought at most once), is a duplicate and changes nothing.
pub(super) fn insert_events(s: &mut SqliteStore, rows: &[EventRow]) -> Result<Vec<Stored>> {
    let path = s.path.clone();
    let err = |e| Error::Sqlite { path: path.clone(), source: e };
    let tx = super::begin_write(&mut s.conn).map_err(err)?;
    let mut out = Vec::with_capacity(rows.len());
    {
        // Ids never go back, even after the newest rows were erased: replicas follow the
        // feed by id (`events_after`).
        let mut next: i64 = tx
            .query_row(
                "SELECT max(coalesce((SELECT max(id) FROM events), 0),
                            coalesce((SELECT CAST(value AS INTEGER) FROM settings WHERE name = 'events_id_floor'), 0)) + 1",
                [],
                |r| r.get(0),
            )
            .map_err(err)?;
        let mut key_st =
            tx.prepare_cached("INSERT OR IGNORE INTO event_keys(key, session, at) VALUES (?1, ?2, ?3)").map_err(err)?;
        let mut ev_st = tx
            .prepare_cached(
                "INSERT OR IGNORE INTO events(id, key, session, kind, recommendation, experiment, variant, site, product, position, at)
                 VALUES (?11, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )
            .map_err(err)?;
        for e in rows {
            if key_st.execute(params![e.key, e.session, e.at]).map_err(err)? == 0 {
                out.push(Stored::Duplicate);
                continue;
            }
            let mut written = 0;
            for (product, position) in &e.items {
                written += ev_st
                    .execute(params![
                        e.key,
                        e.session,
                        e.kind as i64,
                        e.recommendation,
                        e.experiment,
                        e.variant,
                        e.site,
                        product,
                        position,
                        e.at,
                        next
                    ])
                    .map_err(err)?;
                next += 1;
            }
            out.push(if written == 0 { Stored::Duplicate } else { Stored::Accepted(written) });
        }
    }
    tx.commit().map_err(err)?;
    Ok(out)
}

/// Whether an item of a recommendation has an event of this kind.
pub(super) fn has_event(s: &SqliteStore, recommendation: &str, kind: EventKind, product: &str) -> Result<bool> {
    s.conn
        .prepare_cached("SELECT 1 FROM events WHERE recommendation = ?1 AND kind = ?2 AND product = ?3")
        .and_then(|mut st| st.exists(params![recommendation, kind as i64, product]))
        .map_err(|e| s.err(e))
}

/// Whether an event with this idempotency key is stored.
pub(super) fn has_event_key(s: &SqliteStore, key: &str) -> Result<bool> {
    s.conn
        .prepare_cached("SELECT 1 FROM event_keys WHERE key = ?1")
        .and_then(|mut st| st.exists(params![key]))
        .map_err(|e| s.err(e))
}

/// Erases everything stored about a session (its events, its recommendations, its keys).
pub(super) fn delete_session(s: &mut SqliteStore, session: &str) -> Result<Erased> {
    erase(s, "session = ?1", params![session], Some(session))
}

/// Erases events, recommendations and keys older than `before` (unix seconds): the
/// retention window.
pub(super) fn purge_events(s: &mut SqliteStore, before: i64) -> Result<Erased> {
    erase(s, "at < ?1", params![before], None)
}

/// Deletes the rows matching `cond`; an erased session is also recorded in `erasures` so that
/// other processes on the store forget it from memory.
fn erase(s: &mut SqliteStore, cond: &str, p: &[&dyn rusqlite::ToSql], session: Option<&str>) -> Result<Erased> {
    let path = s.path.clone();
    let err = |e| Error::Sqlite { path: path.clone(), source: e };
    let tx = super::begin_write(&mut s.conn).map_err(err)?;
    tx.execute(
        "INSERT INTO settings(name, value)
         SELECT 'events_id_floor', max(coalesce((SELECT max(id) FROM events), 0),
                                       coalesce((SELECT CAST(value AS INTEGER) FROM settings WHERE name = 'events_id_floor'), 0))
         WHERE true
         ON CONFLICT(name) DO UPDATE SET value = excluded.value",
        [],
    )
    .map_err(err)?;
    if let Some(session) = session {
        tx.execute(
            "INSERT INTO erasures(session, at) VALUES (?1, CAST(strftime('%s', 'now') AS INTEGER))",
            params![session],
        )
        .map_err(err)?;
    }
    let events = tx.execute(&format!("DELETE FROM events WHERE {cond}"), p).map_err(err)?;
    let recommendations = tx.execute(&format!("DELETE FROM recommendations WHERE {cond}"), p).map_err(err)?;
    let keys = tx.execute(&format!("DELETE FROM event_keys WHERE {cond}"), p).map_err(err)?;
    tx.commit().map_err(err)?;
    Ok(Erased { events, recommendations, keys })
}

/// Rows stored for a session (events, recommendations, keys), for tests and audits.
pub(super) fn session_rows(s: &SqliteStore, session: &str) -> Result<Erased> {
    let count = |table: &str| -> Result<usize> {
        s.conn
            .query_row(&format!("SELECT COUNT(*) FROM {table} WHERE session = ?1"), params![session], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n as usize)
            .map_err(|e| s.err(e))
    };
    Ok(Erased { events: count("events")?, recommendations: count("recommendations")?, keys: count("event_keys")? })
}

/// Sessions assigned to each variant of an experiment and their recommendations:
/// (variant, sessions, recommendations).
pub(super) fn experiment_assignments(s: &SqliteStore, experiment: &str) -> Result<Vec<(String, u64, u64)>> {
    let mut st = s
        .conn
        .prepare_cached(
            "SELECT variant, COUNT(DISTINCT session), COUNT(*) FROM recommendations
             WHERE experiment = ?1 AND variant IS NOT NULL GROUP BY variant ORDER BY variant",
        )
        .map_err(|e| s.err(e))?;
    let rows = st
        .query_map(params![experiment], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64, r.get::<_, i64>(2)? as u64)))
        .and_then(|it| it.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(|e| s.err(e))?;
    Ok(rows)
}

/// Per session and variant of an experiment: its event counts (sessions with at least one
/// event).
pub(super) fn experiment_sessions(s: &SqliteStore, experiment: &str) -> Result<Vec<SessionCounts>> {
    let mut st = s
        .conn
        .prepare_cached(
            "SELECT variant, SUM(kind = 0), SUM(kind = 1), SUM(kind = 2), SUM(kind = 3) FROM events
             WHERE experiment = ?1 AND variant IS NOT NULL GROUP BY variant, session ORDER BY variant, session",
        )
        .map_err(|e| s.err(e))?;
    let rows = st
        .query_map(params![experiment], |r| {
            Ok(SessionCounts {
                variant: r.get(0)?,
                impressions: r.get::<_, i64>(1)? as u64,
                clicks: r.get::<_, i64>(2)? as u64,
                carts: r.get::<_, i64>(3)? as u64,
                purchases: r.get::<_, i64>(4)? as u64,
            })
        })
        .and_then(|it| it.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(|e| s.err(e))?;
    Ok(rows)
}

/// Impressions and clicks by variant and position.
pub(super) fn experiment_positions(s: &SqliteStore, experiment: &str) -> Result<Vec<PositionCounts>> {
    let mut st = s
        .conn
        .prepare_cached(
            "SELECT variant, position, SUM(kind = 0), SUM(kind = 1) FROM events
             WHERE experiment = ?1 AND variant IS NOT NULL AND position IS NOT NULL
             GROUP BY variant, position ORDER BY variant, position",
        )
        .map_err(|e| s.err(e))?;
    let rows = st
        .query_map(params![experiment], |r| {
            Ok(PositionCounts {
                variant: r.get(0)?,
                position: r.get::<_, i64>(1)? as u32,
                impressions: r.get::<_, i64>(2)? as u64,
                clicks: r.get::<_, i64>(3)? as u64,
            })
        })
        .and_then(|it| it.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(|e| s.err(e))?;
    Ok(rows)
}

/// Event counts of every (experiment, variant, kind): the bandit's posteriors at start.
pub(super) fn variant_event_counts(s: &SqliteStore, up_to: i64) -> Result<Vec<(String, String, EventKind, u64)>> {
    let mut st = s
        .conn
        .prepare_cached(
            "SELECT experiment, variant, kind, COUNT(*) FROM events
             WHERE experiment IS NOT NULL AND variant IS NOT NULL AND id <= ?1 GROUP BY experiment, variant, kind",
        )
        .map_err(|e| s.err(e))?;
    let rows = st
        .query_map(params![up_to], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)?, r.get::<_, i64>(3)? as u64)))
        .and_then(|it| it.collect::<rusqlite::Result<Vec<(String, String, i64, u64)>>>())
        .map_err(|e| s.err(e))?;
    Ok(rows.into_iter().filter_map(|(e, v, k, n)| EventKind::from_i64(k).map(|k| (e, v, k, n))).collect())
}

/// Clicks, carts and purchases since `since` (unix seconds), oldest first, to rebuild
/// live signals at start.
pub(super) fn recent_engagement(s: &SqliteStore, since: i64, up_to: i64) -> Result<Vec<Engagement>> {
    let mut st = s
        .conn
        .prepare_cached(
            "SELECT site, product, kind, at, session FROM events WHERE kind > 0 AND at >= ?1 AND id <= ?2 ORDER BY id",
        )
        .map_err(|e| s.err(e))?;
    let rows = st
        .query_map(params![since, up_to], |r| Ok((r.get::<_, i64>(2)?, r.get(0)?, r.get(1)?, r.get(3)?, r.get(4)?)))
        .and_then(|it| it.collect::<rusqlite::Result<Vec<(i64, String, String, i64, String)>>>())
        .map_err(|e| s.err(e))?;
    Ok(rows
        .into_iter()
        .filter_map(|(k, site, product, at, session)| {
            EventKind::from_i64(k).map(|kind| Engagement { site, product, kind, at, session })
        })
        .collect())
}

/// The last event row id and the last erasure id.
pub(super) fn feed_cursor(s: &SqliteStore) -> Result<FeedCursor> {
    s.conn
        .query_row(
            "SELECT coalesce((SELECT max(id) FROM events), 0), coalesce((SELECT max(id) FROM erasures), 0)",
            [],
            |r| Ok(FeedCursor { event: r.get(0)?, erasure: r.get(1)? }),
        )
        .map_err(|e| s.err(e))
}

/// Up to `limit` event rows after `after`, in id order.
pub(super) fn events_after(s: &SqliteStore, after: i64, limit: usize) -> Result<Vec<FeedEvent>> {
    let mut st = s
        .conn
        .prepare_cached(
            "SELECT id, site, product, kind, at, session, experiment, variant FROM events WHERE id > ?1 ORDER BY id LIMIT ?2",
        )
        .map_err(|e| s.err(e))?;
    let rows = st
        .query_map(params![after, limit as i64], |r| {
            Ok((
                r.get::<_, i64>(3)?,
                FeedEvent {
                    id: r.get(0)?,
                    site: r.get(1)?,
                    product: r.get(2)?,
                    kind: EventKind::Impression,
                    at: r.get(4)?,
                    session: r.get(5)?,
                    experiment: r.get(6)?,
                    variant: r.get(7)?,
                },
            ))
        })
        .and_then(|it| it.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(|e| s.err(e))?;
    Ok(rows.into_iter().filter_map(|(k, e)| EventKind::from_i64(k).map(|kind| FeedEvent { kind, ..e })).collect())
}

/// Erasures after `after`, in id order.
pub(super) fn erasures_after(s: &SqliteStore, after: i64) -> Result<Vec<(i64, String)>> {
    let mut st =
        s.conn.prepare_cached("SELECT id, session FROM erasures WHERE id > ?1 ORDER BY id").map_err(|e| s.err(e))?;
    let rows = st
        .query_map(params![after], |r| Ok((r.get(0)?, r.get(1)?)))
        .and_then(|it| it.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(|e| s.err(e))?;
    Ok(rows)
}

/// Deletes erasure records older than `before`.
pub(super) fn prune_erasures(s: &mut SqliteStore, before: i64) -> Result<usize> {
    s.conn.execute("DELETE FROM erasures WHERE at < ?1", params![before]).map_err(|e| s.err(e))
}
