//! An import into SQLite: sites, products (content-hashed, so unchanged ones are skipped and
//! changed ones bump the catalog version), users and interactions in one writing
//! transaction, with the import's summary and log recorded.

use super::*;

/// Writes one import (see [`StoreBackend::write`]).
pub(super) fn write(
    store: &mut SqliteStore,
    source: &str,
    sites: &[Site],
    products: &[Product],
    interactions: &[Interaction],
    log: &str,
    progress: &dyn Fn(u64),
) -> Result<WriteSummary> {
    let path = store.path.clone();
    let e = |source| Error::Sqlite { path: path.clone(), source };
    let tx = begin_write(&mut store.conn).map_err(e)?;
    let mut s = WriteSummary::default();
    let mut site_ids: HashMap<String, i64> = HashMap::new();
    {
        let mut find_site = tx.prepare_cached("SELECT id, dataset FROM sites WHERE key = ?1").map_err(e)?;
        let mut ins_site = tx.prepare_cached("INSERT INTO sites(key, name, dataset) VALUES (?1, ?2, ?3)").map_err(e)?;
        let mut all_sites: Vec<Site> = sites.to_vec();
        for p in products {
            if !all_sites.iter().any(|x| x.key == p.site) {
                all_sites.push(Site { key: p.site.clone(), name: p.site.clone(), dataset: source.to_string() });
            }
        }
        for site in &all_sites {
            let found: Option<(i64, String)> =
                find_site.query_row([&site.key], |r| Ok((r.get(0)?, r.get(1)?))).optional().map_err(e)?;
            let id = match found {
                // site keys are global: a source may not add to another dataset group's site
                Some((_, stored)) if stored != site.dataset => {
                    return Err(Error::SiteConflict { site: site.key.clone(), stored, import: site.dataset.clone() });
                }
                Some((id, _)) => id,
                None => {
                    ins_site.execute(params![site.key, site.name, site.dataset]).map_err(e)?;
                    s.sites_created += 1;
                    tx.last_insert_rowid()
                }
            };
            site_ids.insert(site.key.clone(), id);
        }
    }
    let version = if products.is_empty() { 0 } else { bump_catalog_version(&tx).map_err(e)? };
    {
        let mut find = tx
            .prepare_cached("SELECT id, content_hash FROM products WHERE site_id = ?1 AND external_id = ?2")
            .map_err(e)?;
        let mut ins = tx
            .prepare_cached(
                "INSERT INTO products(site_id, external_id, title, description, brand, category, price, currency, price_usd, image, attributes, missing, content_hash, version)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )
            .map_err(e)?;
        let mut upd = tx
            .prepare_cached(
                "UPDATE products SET title=?2, description=?3, brand=?4, category=?5, price=?6, currency=?7, price_usd=?8, image=?9, attributes=?10, missing=?11, content_hash=?12, version=?13 WHERE id=?1",
            )
            .map_err(e)?;
        for (n, p) in products.iter().enumerate() {
            let site = site_ids[&p.site];
            let hash = content_hash(p);
            let StoredProduct { attrs, price, cur, usd, image, cat } = StoredProduct::of(p);
            let existing: Option<(i64, String)> =
                find.query_row(params![site, p.external_id], |r| Ok((r.get(0)?, r.get(1)?))).optional().map_err(e)?;
            match existing {
                None => {
                    ins.execute(params![
                        site,
                        p.external_id,
                        p.title,
                        p.description,
                        p.brand,
                        cat,
                        price,
                        cur,
                        usd,
                        image,
                        attrs,
                        p.missing.0,
                        hash,
                        version
                    ])
                    .map_err(e)?;
                    s.products_inserted += 1;
                }
                Some((_, old)) if old == hash => s.products_unchanged += 1,
                Some((id, _)) => {
                    upd.execute(params![
                        id,
                        p.title,
                        p.description,
                        p.brand,
                        cat,
                        price,
                        cur,
                        usd,
                        image,
                        attrs,
                        p.missing.0,
                        hash,
                        version
                    ])
                    .map_err(e)?;
                    s.products_updated += 1;
                }
            }
            if n % 4096 == 0 {
                progress(n as u64);
            }
        }
    }
    if !interactions.is_empty() {
        // product lookup for the sites the interactions touch
        let mut pid: HashMap<(i64, String), i64> = HashMap::new();
        let mut touched: Vec<&str> = interactions.iter().map(|i| i.site.as_str()).collect();
        touched.sort_unstable();
        touched.dedup();
        {
            let mut find_site = tx.prepare_cached("SELECT id, dataset FROM sites WHERE key = ?1").map_err(e)?;
            let mut q = tx.prepare_cached("SELECT id, external_id FROM products WHERE site_id = ?1").map_err(e)?;
            for key in touched {
                let sid: Option<i64> = match site_ids.get(key) {
                    Some(id) => Some(*id),
                    None => find_site.query_row([key], |r| r.get(0)).optional().map_err(e)?,
                };
                let Some(sid) = sid else { continue };
                site_ids.insert(key.to_string(), sid);
                let rows = q.query_map([sid], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))).map_err(e)?;
                for row in rows {
                    let (id, ext) = row.map_err(e)?;
                    pid.insert((sid, ext), id);
                }
            }
        }
        let mut uid: HashMap<&str, i64> = HashMap::new();
        let mut find_user = tx.prepare_cached("SELECT id FROM users WHERE key = ?1").map_err(e)?;
        let mut ins_user = tx.prepare_cached("INSERT INTO users(key) VALUES (?1)").map_err(e)?;
        let mut ins = tx
            .prepare_cached(
                "INSERT OR IGNORE INTO interactions(user_id, product_id, kind, value, text, time_kind, time, split)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .map_err(e)?;
        for (n, it) in interactions.iter().enumerate() {
            let product = site_ids.get(&it.site).and_then(|sid| pid.get(&(*sid, it.product.clone())));
            let Some(&product) = product else {
                s.interactions_unknown_product += 1;
                if s.unknown_product_examples.len() < 10 {
                    s.unknown_product_examples.push(format!("{}/{}", it.site, it.product));
                }
                continue;
            };
            let user = match uid.get(it.user.as_str()) {
                Some(u) => *u,
                None => {
                    let u: Option<i64> = find_user.query_row([&it.user], |r| r.get(0)).optional().map_err(e)?;
                    let u = match u {
                        Some(u) => u,
                        None => {
                            ins_user.execute([&it.user]).map_err(e)?;
                            s.users_created += 1;
                            tx.last_insert_rowid()
                        }
                    };
                    uid.insert(&it.user, u);
                    u
                }
            };
            let (tk, tv) = time_cols(it.time);
            let changed = ins
                .execute(params![user, product, it.kind.code(), it.value, it.text, tk, tv, it.split.code()])
                .map_err(e)?;
            if changed == 1 {
                s.interactions_inserted += 1;
            } else {
                s.interactions_existing += 1;
            }
            if n % 4096 == 0 {
                progress((products.len() + n) as u64);
            }
        }
    }
    tx.execute(
        "INSERT INTO imports(source, at, summary, report) VALUES (?1, strftime('%s','now'), ?2, ?3)",
        params![source, serde_json::to_string(&s).unwrap_or_default(), log],
    )
    .map_err(e)?;
    tx.commit().map_err(e)?;
    Ok(s)
}
