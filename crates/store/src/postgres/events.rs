//! The online loop's tables in PostgreSQL. Unique keys make every event count once even
//! when several replicas write the same batch at the same moment (`ON CONFLICT DO NOTHING`
//! waits for the other transaction and then skips).

use postgres::types::ToSql;

use super::PgStore;
use crate::events::{
    Engagement, Erased, EventKind, EventRow, FeedCursor, FeedEvent, PositionCounts, RecommendationRow, SessionCounts,
    Stored,
};
use crate::{Error, Result};

pub(super) fn get_secret(s: &PgStore, name: &str) -> Result<Option<[u8; 32]>> {
    let row = s.conn().query_opt("SELECT value FROM secrets WHERE name = $1", &[&name]).map_err(|e| s.err(e))?;
    Ok(row.and_then(|r| <[u8; 32]>::try_from(r.get::<_, &[u8]>(0)).ok()))
}

pub(super) fn secret_or_insert(s: &mut PgStore, name: &str, fresh: [u8; 32]) -> Result<[u8; 32]> {
    s.conn_mut()
        .execute(
            "INSERT INTO secrets(name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            &[&name, &&fresh[..]],
        )
        .map_err(|e| s.err(e))?;
    Ok(get_secret(s, name)?.unwrap_or(fresh))
}

pub(super) fn record_recommendations(s: &mut PgStore, rows: &[RecommendationRow]) -> Result<()> {
    let location = s.location.clone();
    let err = |e| Error::Postgres { location: location.clone(), source: e };
    let mut tx = s.conn_mut().transaction().map_err(err)?;
    let st = tx
        .prepare(
            "INSERT INTO recommendations(id, session, site, model, experiment, variant, items, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING",
        )
        .map_err(err)?;
    for r in rows {
        let items = serde_json::to_string(&r.items).unwrap_or_else(|_| "[]".into());
        tx.execute(&st, &[&r.id, &r.session, &r.site, &r.model, &r.experiment, &r.variant, &items, &r.at])
            .map_err(err)?;
    }
    tx.commit().map_err(err)
}

pub(super) fn recommendation(s: &PgStore, id: &str) -> Result<Option<RecommendationRow>> {
    let row = s
        .conn()
        .query_opt(
            "SELECT id, session, site, model, experiment, variant, items, at FROM recommendations WHERE id = $1",
            &[&id],
        )
        .map_err(|e| s.err(e))?;
    Ok(row.map(|r| RecommendationRow {
        id: r.get(0),
        session: r.get(1),
        site: r.get(2),
        model: r.get(3),
        experiment: r.get(4),
        variant: r.get(5),
        items: serde_json::from_str(r.get(6)).unwrap_or_default(),
        at: r.get(7),
    }))
}

pub(super) fn insert_events(s: &mut PgStore, rows: &[EventRow]) -> Result<Vec<Stored>> {
    let location = s.location.clone();
    let err = |e| Error::Postgres { location: location.clone(), source: e };
    let mut tx = s.conn_mut().transaction().map_err(err)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&super::schema::EVENTS_LOCK]).map_err(err)?;
    let key_st = tx
        .prepare("INSERT INTO event_keys(key, session, at) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING")
        .map_err(err)?;
    let ev_st = tx
        .prepare(
            "INSERT INTO events(key, session, kind, recommendation, experiment, variant, site, product, position, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
        )
        .map_err(err)?;
    let mut out = Vec::with_capacity(rows.len());
    for e in rows {
        if tx.execute(&key_st, &[&e.key, &e.session, &e.at]).map_err(err)? == 0 {
            out.push(Stored::Duplicate);
            continue;
        }
        let mut written = 0;
        for (product, position) in &e.items {
            let position = position.map(i64::from);
            written += tx
                .execute(
                    &ev_st,
                    &[
                        &e.key,
                        &e.session,
                        &(e.kind as i64),
                        &e.recommendation,
                        &e.experiment,
                        &e.variant,
                        &e.site,
                        product,
                        &position,
                        &e.at,
                    ],
                )
                .map_err(err)? as usize;
        }
        out.push(if written == 0 { Stored::Duplicate } else { Stored::Accepted(written) });
    }
    tx.commit().map_err(err)?;
    Ok(out)
}

fn exists(s: &PgStore, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<bool> {
    Ok(s.conn().query_opt(sql, params).map_err(|e| s.err(e))?.is_some())
}

pub(super) fn has_event(s: &PgStore, recommendation: &str, kind: EventKind, product: &str) -> Result<bool> {
    exists(
        s,
        "SELECT 1 FROM events WHERE recommendation = $1 AND kind = $2 AND product = $3 LIMIT 1",
        &[&recommendation, &(kind as i64), &product],
    )
}

pub(super) fn has_event_key(s: &PgStore, key: &str) -> Result<bool> {
    exists(s, "SELECT 1 FROM event_keys WHERE key = $1", &[&key])
}

/// Deletes the rows matching `cond`; an erased session is also recorded in `erasures` so that
/// other replicas forget it from memory.
pub(super) fn erase(s: &mut PgStore, cond: &str, p: &(dyn ToSql + Sync), session: Option<&str>) -> Result<Erased> {
    let location = s.location.clone();
    let err = |e| Error::Postgres { location: location.clone(), source: e };
    let mut tx = s.conn_mut().transaction().map_err(err)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&super::schema::EVENTS_LOCK]).map_err(err)?;
    if let Some(session) = session {
        tx.execute("INSERT INTO erasures(session, at) VALUES ($1, extract(epoch FROM now())::bigint)", &[&session])
            .map_err(err)?;
    }
    let events = tx.execute(&format!("DELETE FROM events WHERE {cond}"), &[p]).map_err(err)? as usize;
    let recommendations = tx.execute(&format!("DELETE FROM recommendations WHERE {cond}"), &[p]).map_err(err)? as usize;
    let keys = tx.execute(&format!("DELETE FROM event_keys WHERE {cond}"), &[p]).map_err(err)? as usize;
    tx.commit().map_err(err)?;
    Ok(Erased { events, recommendations, keys })
}

pub(super) fn session_rows(s: &PgStore, session: &str) -> Result<Erased> {
    let r = s
        .conn()
        .query_one(
            "SELECT (SELECT count(*) FROM events WHERE session = $1), (SELECT count(*) FROM recommendations WHERE session = $1),
                    (SELECT count(*) FROM event_keys WHERE session = $1)",
            &[&session],
        )
        .map_err(|e| s.err(e))?;
    Ok(Erased {
        events: r.get::<_, i64>(0) as usize,
        recommendations: r.get::<_, i64>(1) as usize,
        keys: r.get::<_, i64>(2) as usize,
    })
}

pub(super) fn experiment_assignments(s: &PgStore, experiment: &str) -> Result<Vec<(String, u64, u64)>> {
    let rows = s
        .conn()
        .query(
            "SELECT variant, COUNT(DISTINCT session), COUNT(*) FROM recommendations
             WHERE experiment = $1 AND variant IS NOT NULL GROUP BY variant ORDER BY variant COLLATE \"C\"",
            &[&experiment],
        )
        .map_err(|e| s.err(e))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get::<_, i64>(1) as u64, r.get::<_, i64>(2) as u64)).collect())
}

pub(super) fn experiment_sessions(s: &PgStore, experiment: &str) -> Result<Vec<SessionCounts>> {
    let rows = s
        .conn()
        .query(
            "SELECT variant, SUM((kind = 0)::int)::bigint, SUM((kind = 1)::int)::bigint, SUM((kind = 2)::int)::bigint,
                    SUM((kind = 3)::int)::bigint FROM events
             WHERE experiment = $1 AND variant IS NOT NULL GROUP BY variant, session
             ORDER BY variant COLLATE \"C\", session COLLATE \"C\"",
            &[&experiment],
        )
        .map_err(|e| s.err(e))?;
    Ok(rows
        .iter()
        .map(|r| SessionCounts {
            variant: r.get(0),
            impressions: r.get::<_, i64>(1) as u64,
            clicks: r.get::<_, i64>(2) as u64,
            carts: r.get::<_, i64>(3) as u64,
            purchases: r.get::<_, i64>(4) as u64,
        })
        .collect())
}

pub(super) fn experiment_positions(s: &PgStore, experiment: &str) -> Result<Vec<PositionCounts>> {
    let rows = s
        .conn()
        .query(
            "SELECT variant, position, SUM((kind = 0)::int)::bigint, SUM((kind = 1)::int)::bigint FROM events
             WHERE experiment = $1 AND variant IS NOT NULL AND position IS NOT NULL
             GROUP BY variant, position ORDER BY variant COLLATE \"C\", position",
            &[&experiment],
        )
        .map_err(|e| s.err(e))?;
    Ok(rows
        .iter()
        .map(|r| PositionCounts {
            variant: r.get(0),
            position: r.get::<_, i64>(1) as u32,
            impressions: r.get::<_, i64>(2) as u64,
            clicks: r.get::<_, i64>(3) as u64,
        })
        .collect())
}

pub(super) fn variant_event_counts(s: &PgStore, up_to: i64) -> Result<Vec<(String, String, EventKind, u64)>> {
    let rows = s
        .conn()
        .query(
            "SELECT experiment, variant, kind, COUNT(*) FROM events
             WHERE experiment IS NOT NULL AND variant IS NOT NULL AND id <= $1 GROUP BY experiment, variant, kind",
            &[&up_to],
        )
        .map_err(|e| s.err(e))?;
    Ok(rows
        .iter()
        .filter_map(|r| EventKind::from_i64(r.get(2)).map(|k| (r.get(0), r.get(1), k, r.get::<_, i64>(3) as u64)))
        .collect())
}

pub(super) fn recent_engagement(s: &PgStore, since: i64, up_to: i64) -> Result<Vec<Engagement>> {
    let rows = s
        .conn()
        .query(
            "SELECT site, product, kind, at, session FROM events WHERE kind > 0 AND at >= $1 AND id <= $2 ORDER BY id",
            &[&since, &up_to],
        )
        .map_err(|e| s.err(e))?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            EventKind::from_i64(r.get(2)).map(|kind| Engagement {
                site: r.get(0),
                product: r.get(1),
                kind,
                at: r.get(3),
                session: r.get(4),
            })
        })
        .collect())
}

pub(super) fn feed_cursor(s: &PgStore) -> Result<FeedCursor> {
    let r = s
        .conn()
        .query_one("SELECT coalesce((SELECT max(id) FROM events), 0), coalesce((SELECT max(id) FROM erasures), 0)", &[])
        .map_err(|e| s.err(e))?;
    Ok(FeedCursor { event: r.get(0), erasure: r.get(1) })
}

pub(super) fn events_after(s: &PgStore, after: i64, limit: usize) -> Result<Vec<FeedEvent>> {
    let rows = s
        .conn()
        .query(
            "SELECT id, site, product, kind, at, session, experiment, variant FROM events WHERE id > $1 ORDER BY id LIMIT $2",
            &[&after, &(limit as i64)],
        )
        .map_err(|e| s.err(e))?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            EventKind::from_i64(r.get(3)).map(|kind| FeedEvent {
                id: r.get(0),
                site: r.get(1),
                product: r.get(2),
                kind,
                at: r.get(4),
                session: r.get(5),
                experiment: r.get(6),
                variant: r.get(7),
            })
        })
        .collect())
}

pub(super) fn erasures_after(s: &PgStore, after: i64) -> Result<Vec<(i64, String)>> {
    let rows = s
        .conn()
        .query("SELECT id, session FROM erasures WHERE id > $1 ORDER BY id", &[&after])
        .map_err(|e| s.err(e))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

pub(super) fn prune_erasures(s: &mut PgStore, before: i64) -> Result<usize> {
    Ok(s.conn_mut().execute("DELETE FROM erasures WHERE at < $1", &[&before]).map_err(|e| s.err(e))? as usize)
}
