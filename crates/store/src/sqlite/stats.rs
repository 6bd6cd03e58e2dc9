//! `warmstart stats` over SQLite.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::Connection;
use warmstart_core::MissingFields;

use crate::stats::{datasets_of, Overlap, SiteStats, StoreStats};

pub(crate) fn compute(conn: &Connection, path: &Path) -> rusqlite::Result<StoreStats> {
    let one = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0));
    let mut totals = BTreeMap::new();
    totals.insert("sites".to_string(), one("SELECT count(*) FROM sites")?);
    totals.insert("products".to_string(), one("SELECT count(*) FROM products")?);
    totals.insert("products_with_image".to_string(), one("SELECT count(*) FROM products WHERE image IS NOT NULL")?);
    totals.insert("users".to_string(), one("SELECT count(*) FROM users")?);
    totals.insert("interactions".to_string(), one("SELECT count(*) FROM interactions")?);
    totals.insert("imports".to_string(), one("SELECT count(*) FROM imports")?);

    conn.execute_batch(
        "DROP TABLE IF EXISTS temp.user_site;
         CREATE TEMP TABLE user_site AS
           SELECT i.user_id AS user_id, p.site_id AS site_id, count(*) AS n,
                  sum(i.split = 0) AS n_train, sum(i.split = 1) AS n_valid, sum(i.split = 2) AS n_test
           FROM interactions i JOIN products p ON p.id = i.product_id GROUP BY 1, 2;
         CREATE INDEX temp.user_site_user ON user_site(user_id);",
    )?;
    let flags: Vec<(u8, &str)> = MissingFields::FIELDS.to_vec();
    let missing_sql: String = flags.iter().map(|(f, _)| format!(", avg((missing & {f}) != 0)")).collect();
    let mut q = conn.prepare(&format!(
        "SELECT s.id, s.key, s.name, s.dataset, count(p.id), sum(p.image IS NOT NULL) {missing_sql}
         FROM sites s LEFT JOIN products p ON p.site_id = s.id GROUP BY s.id ORDER BY s.dataset, s.id"
    ))?;
    let mut per_user = conn.prepare(
        "SELECT count(*), coalesce(sum(n), 0), coalesce(sum(n_train = 0 AND n_test > 0), 0), coalesce(sum(n_train = 0 AND n_valid > 0), 0)
         FROM user_site WHERE site_id = ?1",
    )?;
    let mut sites = Vec::new();
    let rows = q.query_map([], |r| {
        let mut missing = BTreeMap::new();
        for (i, (_, name)) in flags.iter().enumerate() {
            missing.insert(name.to_string(), r.get::<_, Option<f64>>(6 + i)?.unwrap_or(0.0));
        }
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, i64>(4)?,
            r.get::<_, Option<i64>>(5)?.unwrap_or(0),
            missing,
        ))
    })?;
    for row in rows {
        let (id, key, name, dataset, products, with_image, missing) = row?;
        let (users, interactions, cold_test, cold_valid) =
            per_user.query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
        sites.push(SiteStats {
            key,
            name,
            dataset,
            products,
            products_with_image: with_image,
            users,
            interactions,
            cold_start_test_users: cold_test,
            cold_start_valid_users: cold_valid,
            missing,
        });
    }

    let mut dq = conn.prepare(
        "SELECT s.dataset, count(DISTINCT us.user_id), coalesce(sum(us.n), 0)
         FROM sites s LEFT JOIN user_site us ON us.site_id = s.id GROUP BY s.dataset ORDER BY s.dataset",
    )?;
    let groups = dq
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let datasets = datasets_of(&sites, groups);

    let mut oq = conn.prepare(
        "SELECT sa.key, sb.key, count(*) FROM user_site a JOIN user_site b ON a.user_id = b.user_id AND a.site_id < b.site_id
         JOIN sites sa ON sa.id = a.site_id JOIN sites sb ON sb.id = b.site_id GROUP BY a.site_id, b.site_id ORDER BY a.site_id, b.site_id",
    )?;
    let overlap = oq
        .query_map([], |r| Ok(Overlap { a: r.get(0)?, b: r.get(1)?, users: r.get(2)? }))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    conn.execute_batch("DROP TABLE IF EXISTS temp.user_site;")?;
    Ok(StoreStats { store: path.display().to_string(), totals, datasets, sites, overlap })
}
