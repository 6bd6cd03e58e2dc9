//! `warmstart stats` over PostgreSQL: the same figures as the SQLite backend's, in one
//! read-only transaction.

use std::collections::BTreeMap;

use postgres::Client;
use warmstart_core::MissingFields;

use crate::stats::{datasets_of, Overlap, SiteStats, StoreStats};

pub(super) fn compute(client: &mut Client, location: &str) -> Result<StoreStats, postgres::Error> {
    let mut tx = client.transaction()?;
    let mut totals = BTreeMap::new();
    for (name, sql) in [
        ("sites", "SELECT count(*) FROM sites"),
        ("products", "SELECT count(*) FROM products"),
        ("products_with_image", "SELECT count(*) FROM products WHERE image IS NOT NULL"),
        ("users", "SELECT count(*) FROM users"),
        ("interactions", "SELECT count(*) FROM interactions"),
        ("imports", "SELECT count(*) FROM imports"),
    ] {
        totals.insert(name.to_string(), tx.query_one(sql, &[])?.get::<_, i64>(0));
    }
    tx.batch_execute(
        "CREATE TEMP TABLE user_site ON COMMIT DROP AS
           SELECT i.user_id AS user_id, p.site_id AS site_id, count(*) AS n,
                  sum((i.split = 0)::int) AS n_train, sum((i.split = 1)::int) AS n_valid, sum((i.split = 2)::int) AS n_test
           FROM interactions i JOIN products p ON p.id = i.product_id GROUP BY 1, 2;
         CREATE INDEX ON user_site(site_id);",
    )?;
    let flags: Vec<(u8, &str)> = MissingFields::FIELDS.to_vec();
    let missing_sql: String =
        flags.iter().map(|(f, _)| format!(", avg(((p.missing & {f}) != 0)::int)::float8")).collect();
    let site_rows = tx.query(
        &format!(
            "SELECT s.id, s.key, s.name, s.dataset, count(p.id), sum((p.image IS NOT NULL)::int)::bigint {missing_sql}
             FROM sites s LEFT JOIN products p ON p.site_id = s.id GROUP BY s.id ORDER BY s.dataset COLLATE \"C\", s.id"
        ),
        &[],
    )?;
    let per_user = tx.prepare(
        "SELECT count(*), coalesce(sum(n), 0)::bigint, coalesce(sum((n_train = 0 AND n_test > 0)::int), 0)::bigint,
                coalesce(sum((n_train = 0 AND n_valid > 0)::int), 0)::bigint
         FROM user_site WHERE site_id = $1",
    )?;
    let mut sites = Vec::new();
    for r in &site_rows {
        let id: i64 = r.get(0);
        let mut missing = BTreeMap::new();
        for (i, (_, name)) in flags.iter().enumerate() {
            missing.insert(name.to_string(), r.get::<_, Option<f64>>(6 + i).unwrap_or(0.0));
        }
        let u = tx.query_one(&per_user, &[&id])?;
        sites.push(SiteStats {
            key: r.get(1),
            name: r.get(2),
            dataset: r.get(3),
            products: r.get(4),
            products_with_image: r.get::<_, Option<i64>>(5).unwrap_or(0),
            users: u.get(0),
            interactions: u.get(1),
            cold_start_test_users: u.get(2),
            cold_start_valid_users: u.get(3),
            missing,
        });
    }
    let groups = tx
        .query(
            "SELECT s.dataset, count(DISTINCT us.user_id), coalesce(sum(us.n), 0)::bigint
             FROM sites s LEFT JOIN user_site us ON us.site_id = s.id GROUP BY s.dataset ORDER BY s.dataset COLLATE \"C\"",
            &[],
        )?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let datasets = datasets_of(&sites, groups);
    let overlap = tx
        .query(
            "SELECT sa.key, sb.key, count(*) FROM user_site a JOIN user_site b ON a.user_id = b.user_id AND a.site_id < b.site_id
             JOIN sites sa ON sa.id = a.site_id JOIN sites sb ON sb.id = b.site_id
             GROUP BY a.site_id, b.site_id, sa.key, sb.key ORDER BY a.site_id, b.site_id",
            &[],
        )?
        .iter()
        .map(|r| Overlap { a: r.get(0), b: r.get(1), users: r.get(2) })
        .collect();
    tx.commit()?;
    Ok(StoreStats { store: location.to_string(), totals, datasets, sites, overlap })
}
