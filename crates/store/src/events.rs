//! The online loop's tables: served recommendations, feedback events, their idempotency keys
//! and the experiment aggregates read by reports. Validation of what an event may say lives
//! in the application layer; this module persists, deduplicates and aggregates.

use rusqlite::{params, OptionalExtension};

use crate::{Error, Result, Store};

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
    fn from_i64(v: i64) -> Option<EventKind> {
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

impl Store {
    /// A store-wide random secret (created on first use; 32 bytes).
    pub fn secret(&mut self, name: &str, fresh: impl FnOnce() -> [u8; 32]) -> Result<[u8; 32]> {
        let got: Option<Vec<u8>> = self
            .conn
            .query_row("SELECT value FROM secrets WHERE name = ?1", params![name], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))?;
        if let Some(v) = got.filter(|v| v.len() == 32) {
            let mut out = [0u8; 32];
            out.copy_from_slice(&v);
            return Ok(out);
        }
        let v = fresh();
        self.conn
            .execute("INSERT OR REPLACE INTO secrets(name, value) VALUES (?1, ?2)", params![name, &v[..]])
            .map_err(|e| self.err(e))?;
        Ok(v)
    }

    /// Records served recommendations (one transaction).
    pub fn record_recommendations(&mut self, rows: &[RecommendationRow]) -> Result<()> {
        let path = self.path.clone();
        let err = |e| Error::Sqlite { path: path.clone(), source: e };
        let tx = self.conn.transaction().map_err(err)?;
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO recommendations(id, session, site, model, experiment, variant, items, at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(err)?;
            for r in rows {
                let items = serde_json::to_string(&r.items).unwrap_or_else(|_| "[]".into());
                st.execute(params![r.id, r.session, r.site, r.model, r.experiment, r.variant, items, r.at])
                    .map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    /// A recorded recommendation.
    pub fn recommendation(&self, id: &str) -> Result<Option<RecommendationRow>> {
        self.conn
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
            .map_err(|e| self.err(e))
    }

    /// Stores validated events in one transaction, in order: an event whose key was seen, or
    /// whose every item row is already counted (an item of a recommendation is shown, clicked,
    /// carted and bought at most once), is a duplicate and changes nothing.
    pub fn insert_events(&mut self, rows: &[EventRow]) -> Result<Vec<Stored>> {
        let path = self.path.clone();
        let err = |e| Error::Sqlite { path: path.clone(), source: e };
        let tx = self.conn.transaction().map_err(err)?;
        let mut out = Vec::with_capacity(rows.len());
        {
            let mut key_st = tx
                .prepare_cached("INSERT OR IGNORE INTO event_keys(key, session, at) VALUES (?1, ?2, ?3)")
                .map_err(err)?;
            let mut ev_st = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO events(key, session, kind, recommendation, experiment, variant, site, product, position, at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
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
                            e.at
                        ])
                        .map_err(err)?;
                }
                out.push(if written == 0 { Stored::Duplicate } else { Stored::Accepted(written) });
            }
        }
        tx.commit().map_err(err)?;
        Ok(out)
    }

    /// Whether an item of a recommendation has an event of this kind.
    pub fn has_event(&self, recommendation: &str, kind: EventKind, product: &str) -> Result<bool> {
        self.conn
            .prepare_cached("SELECT 1 FROM events WHERE recommendation = ?1 AND kind = ?2 AND product = ?3")
            .and_then(|mut st| st.exists(params![recommendation, kind as i64, product]))
            .map_err(|e| self.err(e))
    }

    /// Whether an event with this idempotency key is stored.
    pub fn has_event_key(&self, key: &str) -> Result<bool> {
        self.conn
            .prepare_cached("SELECT 1 FROM event_keys WHERE key = ?1")
            .and_then(|mut st| st.exists(params![key]))
            .map_err(|e| self.err(e))
    }

    /// Erases everything stored about a session (its events, its recommendations, its keys).
    pub fn delete_session(&mut self, session: &str) -> Result<Erased> {
        self.erase("session = ?1", params![session])
    }

    /// Erases events, recommendations and keys older than `before` (unix seconds): the
    /// retention window.
    pub fn purge_events(&mut self, before: i64) -> Result<Erased> {
        self.erase("at < ?1", params![before])
    }

    fn erase(&mut self, cond: &str, p: &[&dyn rusqlite::ToSql]) -> Result<Erased> {
        let path = self.path.clone();
        let err = |e| Error::Sqlite { path: path.clone(), source: e };
        let tx = self.conn.transaction().map_err(err)?;
        let events = tx.execute(&format!("DELETE FROM events WHERE {cond}"), p).map_err(err)?;
        let recommendations = tx.execute(&format!("DELETE FROM recommendations WHERE {cond}"), p).map_err(err)?;
        let keys = tx.execute(&format!("DELETE FROM event_keys WHERE {cond}"), p).map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(Erased { events, recommendations, keys })
    }

    /// Rows stored for a session (events, recommendations, keys), for tests and audits.
    pub fn session_rows(&self, session: &str) -> Result<Erased> {
        let count = |table: &str| -> Result<usize> {
            self.conn
                .query_row(&format!("SELECT COUNT(*) FROM {table} WHERE session = ?1"), params![session], |r| {
                    r.get::<_, i64>(0)
                })
                .map(|n| n as usize)
                .map_err(|e| self.err(e))
        };
        Ok(Erased { events: count("events")?, recommendations: count("recommendations")?, keys: count("event_keys")? })
    }

    /// Sessions assigned to each variant of an experiment and their recommendations:
    /// (variant, sessions, recommendations).
    pub fn experiment_assignments(&self, experiment: &str) -> Result<Vec<(String, u64, u64)>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT variant, COUNT(DISTINCT session), COUNT(*) FROM recommendations
                 WHERE experiment = ?1 AND variant IS NOT NULL GROUP BY variant ORDER BY variant",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![experiment], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64, r.get::<_, i64>(2)? as u64)))
            .and_then(|it| it.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| self.err(e))?;
        Ok(rows)
    }

    /// Per session and variant of an experiment: its event counts (sessions with at least one
    /// event).
    pub fn experiment_sessions(&self, experiment: &str) -> Result<Vec<SessionCounts>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT variant, SUM(kind = 0), SUM(kind = 1), SUM(kind = 2), SUM(kind = 3) FROM events
                 WHERE experiment = ?1 AND variant IS NOT NULL GROUP BY variant, session ORDER BY variant, session",
            )
            .map_err(|e| self.err(e))?;
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
            .map_err(|e| self.err(e))?;
        Ok(rows)
    }

    /// Impressions and clicks by variant and position.
    pub fn experiment_positions(&self, experiment: &str) -> Result<Vec<PositionCounts>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT variant, position, SUM(kind = 0), SUM(kind = 1) FROM events
                 WHERE experiment = ?1 AND variant IS NOT NULL AND position IS NOT NULL
                 GROUP BY variant, position ORDER BY variant, position",
            )
            .map_err(|e| self.err(e))?;
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
            .map_err(|e| self.err(e))?;
        Ok(rows)
    }

    /// Event counts of every (experiment, variant, kind): the bandit's posteriors at start.
    pub fn variant_event_counts(&self) -> Result<Vec<(String, String, EventKind, u64)>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT experiment, variant, kind, COUNT(*) FROM events
                 WHERE experiment IS NOT NULL AND variant IS NOT NULL GROUP BY experiment, variant, kind",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)?, r.get::<_, i64>(3)? as u64)))
            .and_then(|it| it.collect::<rusqlite::Result<Vec<(String, String, i64, u64)>>>())
            .map_err(|e| self.err(e))?;
        Ok(rows.into_iter().filter_map(|(e, v, k, n)| EventKind::from_i64(k).map(|k| (e, v, k, n))).collect())
    }

    /// Clicks, carts and purchases since `since` (unix seconds), oldest first, to rebuild
    /// live signals at start.
    pub fn recent_engagement(&self, since: i64) -> Result<Vec<Engagement>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT site, product, kind, at, session FROM events WHERE kind > 0 AND at >= ?1 ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![since], |r| Ok((r.get::<_, i64>(2)?, r.get(0)?, r.get(1)?, r.get(3)?, r.get(4)?)))
            .and_then(|it| it.collect::<rusqlite::Result<Vec<(i64, String, String, i64, String)>>>())
            .map_err(|e| self.err(e))?;
        Ok(rows
            .into_iter()
            .filter_map(|(k, site, product, at, session)| {
                EventKind::from_i64(k).map(|kind| Engagement { site, product, kind, at, session })
            })
            .collect())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, session: &str, items: &[&str]) -> RecommendationRow {
        RecommendationRow {
            id: id.into(),
            session: Some(session.into()),
            site: "shop".into(),
            model: "pop".into(),
            experiment: Some("exp".into()),
            variant: Some("a".into()),
            items: items.iter().map(|s| s.to_string()).collect(),
            at: 100,
        }
    }

    fn event(key: &str, session: &str, kind: EventKind, items: &[(&str, u32)]) -> EventRow {
        EventRow {
            key: key.into(),
            session: session.into(),
            kind,
            recommendation: Some("r1".into()),
            experiment: Some("exp".into()),
            variant: Some("a".into()),
            site: "shop".into(),
            items: items.iter().map(|(p, i)| (p.to_string(), Some(*i))).collect(),
            at: 100,
        }
    }

    #[test]
    fn events_are_counted_once_and_sessions_erased_everywhere() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("s.sqlite")).unwrap();
        s.record_recommendations(&[rec("r1", "h1", &["x", "y", "z"])]).unwrap();
        assert_eq!(s.recommendation("r1").unwrap().unwrap().items, vec!["x", "y", "z"]);
        assert!(s.recommendation("nope").unwrap().is_none());
        let out = s
            .insert_events(&[
                event("k1", "h1", EventKind::Impression, &[("x", 0), ("y", 1), ("z", 2)]),
                event("k1", "h1", EventKind::Impression, &[("x", 0)]),
                event("k2", "h1", EventKind::Impression, &[("x", 0)]),
                event("k3", "h1", EventKind::Click, &[("y", 1)]),
            ])
            .unwrap();
        assert_eq!(out, vec![Stored::Accepted(3), Stored::Duplicate, Stored::Duplicate, Stored::Accepted(1)]);
        assert!(s.has_event("r1", EventKind::Click, "y").unwrap());
        let sessions = s.experiment_sessions("exp").unwrap();
        assert_eq!(sessions.len(), 1);
        assert_eq!((sessions[0].impressions, sessions[0].clicks), (3, 1));
        let pos = s.experiment_positions("exp").unwrap();
        assert_eq!(pos.iter().find(|p| p.position == 1).map(|p| (p.impressions, p.clicks)), Some((1, 1)));
        assert_eq!(s.experiment_assignments("exp").unwrap(), vec![("a".to_string(), 1, 1)]);
        let erased = s.delete_session("h1").unwrap();
        assert_eq!(erased, Erased { events: 4, recommendations: 1, keys: 3 });
        assert_eq!(s.session_rows("h1").unwrap(), Erased::default());
        let k1 = s.secret("session", || [7; 32]).unwrap();
        assert_eq!(s.secret("session", || [9; 32]).unwrap(), k1);
    }

    #[test]
    fn purge_removes_only_rows_older_than_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("s.sqlite")).unwrap();
        let mut old = rec("r0", "h0", &["x"]);
        old.at = 10;
        s.record_recommendations(&[old, rec("r1", "h1", &["x"])]).unwrap();
        let mut e = event("k0", "h0", EventKind::Impression, &[("x", 0)]);
        e.recommendation = Some("r0".into());
        e.at = 10;
        s.insert_events(&[e, event("k1", "h1", EventKind::Impression, &[("x", 0)])]).unwrap();
        assert_eq!(s.purge_events(50).unwrap(), Erased { events: 1, recommendations: 1, keys: 1 });
        assert!(s.recommendation("r0").unwrap().is_none() && s.recommendation("r1").unwrap().is_some());
    }
}
