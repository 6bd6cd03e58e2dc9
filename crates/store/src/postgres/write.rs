//! Imports into PostgreSQL: rows go through binary `COPY` into temporary staging tables, then
//! one set-based upsert per table, all in one transaction. Same outcome and summary as the
//! SQLite backend's row-by-row writes.

use std::collections::HashMap;

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};
use postgres::{Client, Transaction};
use warmstart_core::{Interaction, Product, Site};

use crate::rows::{time_cols, StoredProduct};
use crate::{content_hash, Error, Result, WriteSummary};

/// Takes the next catalog version inside the writing transaction. The row lock it takes
/// serialises catalog writers until commit, so versions become visible in order and a
/// replica that has seen version `v` never misses a change numbered below it.
pub(super) fn bump_catalog_version(tx: &mut Transaction<'_>) -> Result<i64, postgres::Error> {
    Ok(tx
        .query_one(
            "UPDATE settings SET value = (value::bigint + 1)::text WHERE name = 'catalog_version' RETURNING value::bigint",
            &[],
        )?
        .get(0))
}

/// One product as staged for the upsert.
struct StagedProduct<'a> {
    p: &'a Product,
    hash: String,
}

#[allow(clippy::too_many_arguments)]
pub(super) fn write(
    client: &mut Client,
    location: &str,
    source: &str,
    sites: &[Site],
    products: &[Product],
    interactions: &[Interaction],
    log: &str,
    progress: &dyn Fn(u64),
) -> Result<WriteSummary> {
    let err = |e| Error::Postgres { location: location.to_string(), source: e };
    let mut tx = client.transaction().map_err(err)?;
    // staging joins and the ordered upserts sort in memory rather than spilling
    tx.batch_execute("SET LOCAL work_mem = '64MB'").map_err(err)?;
    let mut s = WriteSummary::default();

    // sites, in the order the import names them
    let mut site_ids: HashMap<String, i64> = HashMap::new();
    let mut all_sites: Vec<Site> = sites.to_vec();
    for p in products {
        if !all_sites.iter().any(|x| x.key == p.site) {
            all_sites.push(Site { key: p.site.clone(), name: p.site.clone(), dataset: source.to_string() });
        }
    }
    for site in &all_sites {
        let found = tx.query_opt("SELECT id, dataset FROM sites WHERE key = $1", &[&site.key]).map_err(err)?;
        let id: i64 = match found {
            Some(r) if r.get::<_, String>(1) != site.dataset => {
                return Err(Error::SiteConflict {
                    site: site.key.clone(),
                    stored: r.get(1),
                    import: site.dataset.clone(),
                });
            }
            Some(r) => r.get(0),
            None => {
                s.sites_created += 1;
                tx.query_one(
                    "INSERT INTO sites(key, name, dataset) VALUES ($1, $2, $3) RETURNING id",
                    &[&site.key, &site.name, &site.dataset],
                )
                .map_err(err)?
                .get(0)
            }
        };
        site_ids.insert(site.key.clone(), id);
    }

    if !products.is_empty() {
        let version = bump_catalog_version(&mut tx).map_err(err)?;
        // a product given twice: stored where it first appears, with its last content
        let mut slot: HashMap<(&str, &str), usize> = HashMap::new();
        let mut staged: Vec<StagedProduct<'_>> = Vec::with_capacity(products.len());
        for p in products {
            let hash = content_hash(p);
            match slot.get(&(p.site.as_str(), p.external_id.as_str())) {
                Some(&i) => {
                    if staged[i].hash == hash {
                        s.products_unchanged += 1;
                    } else {
                        s.products_updated += 1;
                    }
                    staged[i] = StagedProduct { p, hash };
                }
                None => {
                    slot.insert((p.site.as_str(), p.external_id.as_str()), staged.len());
                    staged.push(StagedProduct { p, hash });
                }
            }
        }
        tx.batch_execute(
            "CREATE TEMP TABLE stage_products(n BIGINT, site_id BIGINT, external_id TEXT, title TEXT, description TEXT,
               brand TEXT, category TEXT, price DOUBLE PRECISION, currency TEXT, price_usd DOUBLE PRECISION, image TEXT,
               attributes TEXT, missing BIGINT, content_hash TEXT) ON COMMIT DROP",
        )
        .map_err(err)?;
        {
            let sink = tx.copy_in("COPY stage_products FROM STDIN (FORMAT binary)").map_err(err)?;
            let types = [
                Type::INT8,
                Type::INT8,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::FLOAT8,
                Type::TEXT,
                Type::FLOAT8,
                Type::TEXT,
                Type::TEXT,
                Type::INT8,
                Type::TEXT,
            ];
            let mut w = BinaryCopyInWriter::new(sink, &types);
            for (n, sp) in staged.iter().enumerate() {
                let p = sp.p;
                let StoredProduct { attrs, price, cur, usd, image, cat } = StoredProduct::of(p);
                let row: [&(dyn ToSql + Sync); 14] = [
                    &(n as i64),
                    &site_ids[&p.site],
                    &p.external_id,
                    &p.title,
                    &p.description,
                    &p.brand,
                    &cat,
                    &price,
                    &cur,
                    &usd,
                    &image,
                    &attrs,
                    &(p.missing.0 as i64),
                    &sp.hash,
                ];
                w.write(&row).map_err(err)?;
                if n % 4096 == 0 {
                    progress(n as u64);
                }
            }
            w.finish().map_err(err)?;
        }
        let changed = tx
            .query(
                "INSERT INTO products(site_id, external_id, title, description, brand, category, price, currency, price_usd,
                   image, attributes, missing, content_hash, version)
                 SELECT site_id, external_id, title, description, brand, category, price, currency, price_usd,
                   image, attributes, missing, content_hash, $1 FROM stage_products ORDER BY n
                 ON CONFLICT (site_id, external_id) DO UPDATE SET title = excluded.title, description = excluded.description,
                   brand = excluded.brand, category = excluded.category, price = excluded.price, currency = excluded.currency,
                   price_usd = excluded.price_usd, image = excluded.image, attributes = excluded.attributes,
                   missing = excluded.missing, content_hash = excluded.content_hash, version = excluded.version
                 WHERE products.content_hash <> excluded.content_hash
                 RETURNING (xmax::text = '0')",
                &[&version],
            )
            .map_err(err)?;
        let inserted = changed.iter().filter(|r| r.get::<_, bool>(0)).count() as u64;
        s.products_inserted += inserted;
        s.products_updated += changed.len() as u64 - inserted;
        s.products_unchanged += staged.len() as u64 - changed.len() as u64;
    }

    if !interactions.is_empty() {
        tx.batch_execute(
            "CREATE TEMP TABLE stage_interactions(n BIGINT, user_key TEXT, site_key TEXT, external_id TEXT, kind BIGINT,
               value DOUBLE PRECISION, text TEXT, time_kind BIGINT, time BIGINT, split BIGINT) ON COMMIT DROP",
        )
        .map_err(err)?;
        {
            let sink = tx.copy_in("COPY stage_interactions FROM STDIN (FORMAT binary)").map_err(err)?;
            let types = [
                Type::INT8,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::INT8,
                Type::FLOAT8,
                Type::TEXT,
                Type::INT8,
                Type::INT8,
                Type::INT8,
            ];
            let mut w = BinaryCopyInWriter::new(sink, &types);
            for (n, it) in interactions.iter().enumerate() {
                let (tk, tv) = time_cols(it.time);
                let row: [&(dyn ToSql + Sync); 10] = [
                    &(n as i64),
                    &it.user,
                    &it.site,
                    &it.product,
                    &(it.kind.code() as i64),
                    &it.value.map(f64::from),
                    &it.text,
                    &tk,
                    &tv,
                    &(it.split.code() as i64),
                ];
                w.write(&row).map_err(err)?;
                if n % 4096 == 0 {
                    progress((products.len() + n) as u64);
                }
            }
            w.finish().map_err(err)?;
        }
        tx.batch_execute(
            "CREATE TEMP TABLE stage_known ON COMMIT DROP AS
               SELECT st.*, p.id AS product_id FROM stage_interactions st
               LEFT JOIN sites s ON s.key = st.site_key
               LEFT JOIN products p ON p.site_id = s.id AND p.external_id = st.external_id",
        )
        .map_err(err)?;
        let unknown = tx
            .query(
                "SELECT site_key, external_id, count(*) OVER () FROM stage_known WHERE product_id IS NULL ORDER BY n LIMIT 10",
                &[],
            )
            .map_err(err)?;
        if let Some(first) = unknown.first() {
            s.interactions_unknown_product = first.get::<_, i64>(2) as u64;
            s.unknown_product_examples =
                unknown.iter().map(|r| format!("{}/{}", r.get::<_, String>(0), r.get::<_, String>(1))).collect();
        }
        let known: i64 =
            tx.query_one("SELECT count(*) FROM stage_known WHERE product_id IS NOT NULL", &[]).map_err(err)?.get(0);
        s.users_created = tx
            .execute(
                "INSERT INTO users(key) SELECT user_key FROM stage_known WHERE product_id IS NOT NULL
                 GROUP BY user_key ORDER BY min(n) ON CONFLICT (key) DO NOTHING",
                &[],
            )
            .map_err(err)?;
        let inserted = tx
            .execute(
                "INSERT INTO interactions(user_id, product_id, kind, value, text, time_kind, time, split)
                 SELECT u.id, k.product_id, k.kind, k.value, k.text, k.time_kind, k.time, k.split
                 FROM stage_known k JOIN users u ON u.key = k.user_key WHERE k.product_id IS NOT NULL ORDER BY k.n
                 ON CONFLICT DO NOTHING",
                &[],
            )
            .map_err(err)?;
        s.interactions_inserted = inserted;
        s.interactions_existing = known as u64 - inserted;
    }
    tx.execute(
        "INSERT INTO imports(source, at, summary, report) VALUES ($1, extract(epoch FROM now())::bigint, $2, $3)",
        &[&source, &serde_json::to_string(&s).unwrap_or_default(), &log],
    )
    .map_err(err)?;
    tx.commit().map_err(err)?;
    Ok(s)
}
