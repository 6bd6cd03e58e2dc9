//! The store contract, run against every backend: SQLite always, PostgreSQL when
//! `WARMSTART_TEST_POSTGRES` names a server (CI starts one and sets
//! `WARMSTART_REQUIRE_POSTGRES=1`, so there it cannot be skipped).

use std::path::PathBuf;

use warmstart_core::{EventTime, Interaction, InteractionKind, Price, Product, Site, Split};
use warmstart_store::dump::Table;
use warmstart_store::events::{Erased, EventKind, EventRow, RecommendationRow, Stored};
use warmstart_store::{Error, Store, TempDatabase, VectorDtype};

/// A fresh, empty store of each backend.
struct Fresh {
    name: &'static str,
    location: PathBuf,
    _dir: Option<tempfile::TempDir>,
    _db: Option<TempDatabase>,
}

impl Fresh {
    fn open(&self) -> Store {
        Store::open(&self.location).unwrap_or_else(|e| panic!("{}: {e}", self.name))
    }
}

fn sqlite() -> Fresh {
    let dir = tempfile::tempdir().unwrap();
    Fresh { name: "sqlite", location: dir.path().join("s.sqlite"), _dir: Some(dir), _db: None }
}

fn postgres(test: &str) -> Option<Fresh> {
    let admin = warmstart_store::test_server(test)?;
    let db = TempDatabase::create(&admin).expect("create a test database");
    Some(Fresh { name: "postgres", location: PathBuf::from(db.url()), _dir: None, _db: Some(db) })
}

fn backends(test: &str) -> Vec<Fresh> {
    let mut out = vec![sqlite()];
    out.extend(postgres(test));
    out
}

fn sample() -> (Vec<Site>, Vec<Product>, Vec<Interaction>) {
    let sites = vec![
        Site { key: "a".into(), name: "A".into(), dataset: "d".into() },
        Site { key: "b".into(), name: "B".into(), dataset: "d".into() },
    ];
    let mut p1 = Product::new("a", "1", "Red tee");
    p1.price = Some(Price { amount: 10.0, currency: *b"EUR" });
    p1.description = Some("Cotton, \"soft\"\tand\nwashable".into());
    p1.attributes.insert("size".into(), "M".into());
    p1.refresh_missing();
    let products = vec![p1, Product::new("a", "2", "Blue tee"), Product::new("b", "9", "Stapler")];
    let it = |u: &str, s: &str, p: &str, split| Interaction {
        user: u.into(),
        site: s.into(),
        product: p.into(),
        kind: InteractionKind::Purchase,
        value: None,
        text: None,
        time: Some(EventTime::Sequence(0)),
        split,
    };
    let mut rated = it("u3", "a", "1", Split::Train);
    rated.kind = InteractionKind::Rating;
    rated.value = Some(4.5);
    rated.text = Some("great".into());
    let inter = vec![
        it("u1", "a", "1", Split::Train),
        it("u1", "b", "9", Split::Train),
        it("u2", "a", "2", Split::Train),
        it("u3", "b", "9", Split::Test),
        rated,
        it("u4", "b", "404", Split::Train),
    ];
    (sites, products, inter)
}

#[test]
fn write_is_idempotent_and_updates_changed_products() {
    for b in backends("write_is_idempotent") {
        let mut store = b.open();
        let (sites, mut products, inter) = sample();
        let first = store.write("t", &sites, &products, &inter, "{}", &|_| {}).unwrap();
        assert_eq!(
            (first.products_inserted, first.interactions_inserted, first.users_created),
            (3, 5, 3),
            "{}",
            b.name
        );
        assert_eq!(first.interactions_unknown_product, 1, "{}", b.name);
        assert_eq!(first.unknown_product_examples, vec!["b/404".to_string()], "{}", b.name);
        let counts = store.row_counts().unwrap();
        let second = store.write("t", &sites, &products, &inter, "{}", &|_| {}).unwrap();
        assert_eq!((second.products_inserted, second.products_unchanged, second.interactions_inserted), (0, 3, 0));
        assert_eq!(second.interactions_existing, 5, "{}", b.name);
        let after = store.row_counts().unwrap();
        assert_eq!(counts[..4], after[..4], "{}: second write changed data rows", b.name);
        products[1].title = "Navy tee".into();
        let third = store.write("t", &sites, &products, &[], "{}", &|_| {}).unwrap();
        assert_eq!((third.products_updated, third.products_unchanged), (1, 2), "{}", b.name);
        // a product given twice in one import: stored once, with its last content
        let mut again = Product::new("a", "2", "Teal tee");
        again.brand = Some("Acme".into());
        let twice = store.write("t", &sites, &[products[1].clone(), again], &[], "{}", &|_| {}).unwrap();
        assert_eq!(store.row_counts().unwrap()[1], 3, "{}", b.name);
        assert_eq!(twice.products_inserted, 0, "{}", b.name);
        let d = store.load_dataset(Some("d")).unwrap();
        assert_eq!(d.products.iter().find(|p| p.external_id == "2").unwrap().title, "Teal tee", "{}", b.name);
    }
}

#[test]
fn loads_dataset_and_reports_the_same_stats_on_every_backend() {
    let mut seen = Vec::new();
    for b in backends("loads_dataset_and_reports_stats") {
        let mut store = b.open();
        let (sites, products, inter) = sample();
        store.write("t", &sites, &products, &inter, "{}", &|_| {}).unwrap();
        drop(store);
        let store = b.open();
        let d = store.load_dataset(Some("d")).unwrap();
        assert_eq!((d.sites.len(), d.n_items(), d.n_users(), d.interactions.len()), (2, 3, 3, 5), "{}", b.name);
        assert_eq!(d.sites[1].items, 2..3);
        assert_eq!(d.overlap()[0].users, 2);
        let site_b = d.site_by_key("b").unwrap();
        assert_eq!(d.users_with_split_on_site(site_b, Split::Test).len(), 1);
        assert!(matches!(store.load_dataset(Some("nope")), Err(Error::NotFound { .. })), "{}", b.name);
        let mut st = store.stats().unwrap();
        assert_eq!(st.totals["products"], 3);
        assert_eq!(st.totals["interactions"], 5);
        assert_eq!(st.overlap[0].users, 2);
        let sa = &st.sites[0];
        assert_eq!((sa.key.as_str(), sa.products, sa.users), ("a", 2, 3), "{}", b.name);
        assert!((sa.missing["price"] - 0.5).abs() < 1e-9, "{}", b.name);
        assert_eq!(st.sites[1].cold_start_test_users, 1);
        assert_eq!(st.datasets[0].users, 3);
        assert_eq!(store.product_attributes(None).unwrap()[0], vec![("size".to_string(), "M".to_string())]);
        assert_eq!(store.integrity_check().unwrap(), "ok", "{}", b.name);
        st.store.clear();
        seen.push((b.name, st, format!("{:?}", d.interactions), format!("{:?}", d.products)));
    }
    for w in seen.windows(2) {
        assert_eq!(w[0].1, w[1].1, "stats differ between {} and {}", w[0].0, w[1].0);
        assert_eq!(w[0].2, w[1].2, "interactions differ between {} and {}", w[0].0, w[1].0);
        assert_eq!(w[0].3, w[1].3, "products differ between {} and {}", w[0].0, w[1].0);
    }
}

#[test]
fn vectors_round_trip_in_f32_and_f16_and_go_stale_when_content_changes() {
    for b in backends("vectors_round_trip") {
        let mut store = b.open();
        let (sites, mut products, inter) = sample();
        store.write("t", &sites, &products, &inter, "{}", &|_| {}).unwrap();
        let cands = store.embed_candidates("m", None).unwrap();
        assert_eq!(cands.len(), 3);
        assert!(cands.iter().all(|c| !c.cached));
        let v = [0.1f32, -0.25, 0.3333];
        let rows: Vec<(i64, String, Vec<f32>)> =
            cands.iter().map(|c| (c.id, c.content_hash.clone(), v.to_vec())).collect();
        store.put_embeddings("m", &rows, VectorDtype::F32).unwrap();
        store.put_embeddings("m16", &rows, VectorDtype::F16).unwrap();
        let exact = store.load_item_vectors("m", None).unwrap();
        let half = store.load_item_vectors("m16", None).unwrap();
        assert_eq!((exact.dim, exact.count_present(), half.count_present()), (3, 3, 3), "{}", b.name);
        assert_eq!(exact.row(0), &v, "{}", b.name);
        assert!(half.row(0).iter().zip(&v).all(|(a, b)| (a - b).abs() < 1e-3), "{:?}", half.row(0));
        assert_ne!(half.row(0), &v, "0.1 and 0.3333 are not representable in f16");
        assert!(store.embed_candidates("m", None).unwrap().iter().all(|c| c.cached));
        // a changed title makes that product's vector stale: missing on load, re-embedded next run
        products[1].title = "Navy tee".into();
        store.write("t", &sites, &products, &inter, "{}", &|_| {}).unwrap();
        let again = store.embed_candidates("m", None).unwrap();
        assert_eq!(again.iter().filter(|c| !c.cached).count(), 1, "{}", b.name);
        assert_eq!(store.load_item_vectors("m", None).unwrap().count_present(), 2, "{}", b.name);
    }
}

#[test]
fn a_site_of_another_dataset_is_a_conflict_and_nothing_is_written() {
    for b in backends("site_conflict") {
        let mut store = b.open();
        let (sites, products, inter) = sample();
        store.write("t", &sites, &products, &inter, "{}", &|_| {}).unwrap();
        let before = store.row_counts().unwrap();
        let mine = vec![
            Site { key: "mine".into(), name: "Mine".into(), dataset: "custom".into() },
            Site { key: "a".into(), name: "a".into(), dataset: "custom".into() },
        ];
        let err = store
            .write(
                "jsonl",
                &mine,
                &[Product::new("mine", "1", "Mug"), Product::new("a", "77", "Mug")],
                &[],
                "{}",
                &|_| {},
            )
            .unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::SiteConflict { .. }), "{}: {msg}", b.name);
        assert!(msg.contains("`a`") && msg.contains("`d`") && msg.contains("custom"), "{msg}");
        assert_eq!(store.row_counts().unwrap(), before, "{}: the failed import wrote nothing", b.name);
        assert!(store.datasets().unwrap().iter().all(|(d, _)| d != "custom"));
        let ok = vec![Site { key: "a".into(), name: "A".into(), dataset: "d".into() }];
        store.write("t", &ok, &[Product::new("a", "77", "Mug")], &[], "{}", &|_| {}).unwrap();
    }
}

#[test]
fn catalog_changes_carry_upserts_vectors_and_removals_in_version_order() {
    for b in backends("catalog_changes") {
        let mut store = b.open();
        let (sites, products, inter) = sample();
        store.write("t", &sites, &products, &inter, "{}", &|_| {}).unwrap();
        let v0 = store.catalog_version().unwrap();
        assert!(v0 > 0, "{}", b.name);
        assert!(store.catalog_changes("d", v0, Some("m")).unwrap().is_empty());
        // a reader that saw v0 learns exactly what changed after it
        let mut tee = Product::new("a", "2", "Navy tee");
        tee.brand = Some("Acme".into());
        store.write("api", &sites[..1], &[tee], &[], "{}", &|_| {}).unwrap();
        let ids = store.product_rows("a", &["2".into(), "nope".into()]).unwrap();
        assert!(ids[1].is_none(), "{}", b.name);
        let (id, hash) = ids[0].clone().unwrap();
        store.put_embeddings("m", &[(id, hash, vec![1.0, 0.0])], VectorDtype::F32).unwrap();
        assert_eq!(store.remove_products("b", &["9".into(), "404".into()]).unwrap(), 1, "{}", b.name);
        let changes = store.catalog_changes("d", v0, Some("m")).unwrap();
        let summary: Vec<(String, String, bool, bool)> = changes
            .iter()
            .map(|c| (c.site.clone(), c.meta.external_id.clone(), c.removed, c.vector.is_some()))
            .collect();
        assert_eq!(
            summary,
            vec![("a".into(), "2".into(), false, true), ("b".into(), "9".into(), true, false)],
            "{}",
            b.name
        );
        assert_eq!(changes[0].meta.brand.as_deref(), Some("Acme"));
        assert!(changes.windows(2).all(|w| w[0].version <= w[1].version));
        assert_eq!(store.removed_products(Some("d")).unwrap(), vec![("b".to_string(), "9".to_string())]);
        let v1 = store.catalog_version().unwrap();
        store.restore_products("b", &["9".into()]).unwrap();
        let back = store.catalog_changes("d", v1, None).unwrap();
        assert_eq!(back.len(), 1, "{}", b.name);
        assert!(!back[0].removed && store.removed_products(None).unwrap().is_empty(), "{}", b.name);
    }
}

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
    for b in backends("events_counted_once") {
        let mut s = b.open();
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
        assert_eq!(
            out,
            vec![Stored::Accepted(3), Stored::Duplicate, Stored::Duplicate, Stored::Accepted(1)],
            "{}",
            b.name
        );
        assert!(s.has_event("r1", EventKind::Click, "y").unwrap() && s.has_event_key("k2").unwrap());
        let sessions = s.experiment_sessions("exp").unwrap();
        assert_eq!(sessions.len(), 1);
        assert_eq!((sessions[0].impressions, sessions[0].clicks), (3, 1), "{}", b.name);
        let pos = s.experiment_positions("exp").unwrap();
        assert_eq!(pos.iter().find(|p| p.position == 1).map(|p| (p.impressions, p.clicks)), Some((1, 1)));
        assert_eq!(s.experiment_assignments("exp").unwrap(), vec![("a".to_string(), 1, 1)]);
        let end = s.feed_cursor().unwrap();
        assert_eq!(s.variant_event_counts(end.event).unwrap().len(), 2, "{}", b.name);
        assert_eq!(s.recent_engagement(0, end.event).unwrap().len(), 1, "{}", b.name);
        assert_eq!(s.recent_engagement(0, end.event - 1).unwrap().len(), 0, "{}: up to a cursor", b.name);
        let erased = s.delete_session("h1").unwrap();
        assert_eq!(erased, Erased { events: 4, recommendations: 1, keys: 3 }, "{}", b.name);
        assert_eq!(s.session_rows("h1").unwrap(), Erased::default());
        let k1 = s.secret("session", || [7; 32]).unwrap();
        assert_eq!(s.secret("session", || [9; 32]).unwrap(), k1, "{}", b.name);
    }
}

#[test]
fn the_event_feed_is_read_in_commit_order_and_ids_never_go_back() {
    for b in backends("event_feed") {
        let mut s = b.open();
        s.record_recommendations(&[rec("r1", "h1", &["x", "y", "z"])]).unwrap();
        let start = s.feed_cursor().unwrap();
        s.insert_events(&[event("k1", "h1", EventKind::Impression, &[("x", 0), ("y", 1)])]).unwrap();
        s.insert_events(&[event("k2", "h1", EventKind::Click, &[("y", 1)])]).unwrap();
        let feed = s.events_after(start.event, 100).unwrap();
        let got: Vec<_> = feed.iter().map(|e| (e.product.as_str(), e.kind)).collect();
        assert_eq!(got, vec![("x", EventKind::Impression), ("y", EventKind::Impression), ("y", EventKind::Click)]);
        assert!(feed.windows(2).all(|w| w[0].id < w[1].id), "{}", b.name);
        assert_eq!(feed[2].experiment.as_deref(), Some("exp"));
        assert_eq!(s.events_after(start.event, 2).unwrap().len(), 2, "{}: limit", b.name);
        let seen = s.feed_cursor().unwrap();
        assert_eq!(seen.event, feed[2].id);
        // erasing the newest rows must not let later rows take ids a follower has passed
        s.delete_session("h1").unwrap();
        let erased = s.erasures_after(seen.erasure).unwrap();
        assert_eq!(erased.iter().map(|e| e.1.as_str()).collect::<Vec<_>>(), vec!["h1"], "{}", b.name);
        s.record_recommendations(&[rec("r2", "h2", &["x"])]).unwrap();
        let mut e = event("k3", "h2", EventKind::Impression, &[("x", 0)]);
        e.recommendation = Some("r2".into());
        s.insert_events(&[e]).unwrap();
        let later = s.events_after(seen.event, 100).unwrap();
        assert_eq!(later.len(), 1, "{}: the row after an erasure is new to a follower", b.name);
        assert!(later[0].id > seen.event);
        // erasure records are kept only until pruned
        assert_eq!(s.prune_erasures(0).unwrap(), 0);
        assert_eq!(s.prune_erasures(i64::MAX).unwrap(), 1, "{}", b.name);
        assert!(s.erasures_after(0).unwrap().is_empty());
    }
}

#[test]
fn purge_removes_only_rows_older_than_the_window() {
    for b in backends("purge_window") {
        let mut s = b.open();
        let mut old = rec("r0", "h0", &["x"]);
        old.at = 10;
        s.record_recommendations(&[old, rec("r1", "h1", &["x"])]).unwrap();
        let mut e = event("k0", "h0", EventKind::Impression, &[("x", 0)]);
        e.recommendation = Some("r0".into());
        e.at = 10;
        s.insert_events(&[e, event("k1", "h1", EventKind::Impression, &[("x", 0)])]).unwrap();
        assert_eq!(s.purge_events(50).unwrap(), Erased { events: 1, recommendations: 1, keys: 1 }, "{}", b.name);
        assert!(s.recommendation("r0").unwrap().is_none() && s.recommendation("r1").unwrap().is_some());
    }
}

/// Every table of a store, as rows.
fn dump_all(store: &Store) -> Vec<(Table, Vec<warmstart_store::dump::Row>)> {
    Table::ALL
        .iter()
        .map(|&t| {
            let mut rows = Vec::new();
            store
                .dump_table(t, &mut |chunk| {
                    rows.extend(chunk);
                    Ok(())
                })
                .unwrap();
            (t, rows)
        })
        .collect()
}

fn filled(b: &Fresh) -> Store {
    let mut store = b.open();
    let (sites, products, inter) = sample();
    store.write("t", &sites, &products, &inter, "{\"report\":1}", &|_| {}).unwrap();
    let cands = store.embed_candidates("m", None).unwrap();
    let rows: Vec<(i64, String, Vec<f32>)> =
        cands.iter().map(|c| (c.id, c.content_hash.clone(), vec![0.5, -0.125, c.id as f32])).collect();
    store.put_embeddings("m", &rows, VectorDtype::F32).unwrap();
    store.put_embeddings("h", &rows, VectorDtype::F16).unwrap();
    store.remove_products("a", &["2".into()]).unwrap();
    store.record_recommendations(&[rec("r1", "h1", &["x", "y"])]).unwrap();
    store.insert_events(&[event("k1", "h1", EventKind::Impression, &[("x", 0), ("y", 1)])]).unwrap();
    store.secret("session", || [3; 32]).unwrap();
    store
}

#[test]
fn a_store_copied_to_another_backend_is_the_same_store() {
    let Some(pg) = postgres("copy_between_backends") else { return };
    let lite = sqlite();
    let source = filled(&lite);
    let mut target = pg.open();
    let copied = warmstart_store::copy_store(&source, &mut target, &|_, _| {}).unwrap();
    assert!(copied > 15, "{copied} rows");
    assert_eq!(dump_all(&source), dump_all(&target), "postgres holds what sqlite held");
    let (mut a, mut b) = (source.stats().unwrap(), target.stats().unwrap());
    a.store.clear();
    b.store.clear();
    assert_eq!(a, b);
    assert_eq!(source.catalog_version().unwrap(), target.catalog_version().unwrap());
    assert_eq!(
        format!("{:?}", source.load_item_vectors("h", None).unwrap()),
        format!("{:?}", target.load_item_vectors("h", None).unwrap())
    );
    // and back again, into a second SQLite file
    let lite2 = sqlite();
    let mut back = lite2.open();
    warmstart_store::copy_store(&target, &mut back, &|_, _| {}).unwrap();
    assert_eq!(dump_all(&source), dump_all(&back), "sqlite → postgres → sqlite is lossless");
    // ids keep counting after the copied ones
    let more = back.write("d", &[], &[Product::new("b", "10", "Tape")], &[], "{}", &|_| {}).unwrap();
    assert_eq!(more.products_inserted, 1);
    let mut target = target;
    target.write("d", &[], &[Product::new("b", "10", "Tape")], &[], "{}", &|_| {}).unwrap();
    assert_eq!(dump_all(&back)[1], dump_all(&target)[1], "new rows get the same ids on both");
    // a copy never lands on a store that holds something
    let err = warmstart_store::copy_store(&source, &mut target, &|_, _| {}).unwrap_err();
    assert!(err.to_string().contains("not empty"), "{err}");
}

#[test]
fn two_connections_writing_the_same_events_count_them_once() {
    let Some(pg) = postgres("concurrent_events") else { return };
    let mut first = pg.open();
    first.record_recommendations(&[rec("r1", "h1", &["x", "y", "z"])]).unwrap();
    let batch: Vec<EventRow> = (0..200)
        .map(|i| event(&format!("k{i}"), "h1", EventKind::Impression, &[("x", 0), ("y", 1), ("z", 2)]))
        .collect();
    let accepted: Vec<usize> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let batch = &batch;
                let location = pg.location.clone();
                scope.spawn(move || {
                    let mut s = Store::open(&location).unwrap();
                    s.insert_events(batch)
                        .unwrap()
                        .iter()
                        .map(|o| match o {
                            Stored::Accepted(n) => *n,
                            Stored::Duplicate => 0,
                        })
                        .sum()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(accepted.iter().sum::<usize>(), 3, "{accepted:?}: three items, each shown once");
    assert_eq!(first.session_rows("h1").unwrap(), Erased { events: 3, recommendations: 1, keys: 200 });
}

#[test]
fn pgvector_hnsw_finds_the_nearest_products() {
    let Some(pg) = postgres("pgvector_hnsw") else { return };
    let mut store = warmstart_store::PgStore::open(pg.location.to_str().unwrap()).unwrap();
    use warmstart_store::StoreBackend;
    let site = Site { key: "s".into(), name: "S".into(), dataset: "d".into() };
    let products: Vec<Product> = (0..300).map(|i| Product::new("s", i.to_string(), format!("p{i}"))).collect();
    store.write("d", &[site], &products, &[], "{}", &|_| {}).unwrap();
    let ids: Vec<String> = (0..300).map(|i| i.to_string()).collect();
    let rows = store.product_rows("s", &ids).unwrap();
    // points on a circle: the neighbours of angle i are i±1, i±2, …
    let put: Vec<(i64, String, Vec<f32>)> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let (id, hash) = r.clone().unwrap();
            let a = i as f32 * std::f32::consts::TAU / 300.0;
            (id, hash, vec![a.cos(), a.sin(), 0.0])
        })
        .collect();
    store.put_embeddings("circle", &put, VectorDtype::F32).unwrap();
    let exact = store.nearest("circle", &put[10].2, 3, 40).unwrap();
    assert!(store.create_vector_index("circle", 3, 16, 64).unwrap());
    assert!(!store.create_vector_index("circle", 3, 16, 64).unwrap(), "built once");
    let got = store.nearest("circle", &put[10].2, 3, 40).unwrap();
    assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), exact.iter().map(|g| g.0).collect::<Vec<_>>());
    assert_eq!(got[0].0, put[10].0);
    assert!(got[0].1.abs() < 1e-5, "{got:?}");
    let mut near: Vec<i64> = got[1..].iter().map(|g| g.0).collect();
    near.sort();
    assert_eq!(near, vec![put[9].0, put[11].0]);
    assert!(store.create_vector_index("circle", 3, 1, 64).is_err(), "m below 2 is refused");
}

/// The service writes catalog changes on one connection while its event writer (or another
/// replica) commits on another: no write may fail for the other's lock.
#[test]
fn catalog_and_event_writes_on_two_connections_never_fail_busy() {
    for b in backends("two_writers") {
        let mut catalog = b.open();
        let (sites, products, _) = sample();
        catalog.write("d", &sites, &products, &[], "{}", &|_| {}).unwrap();
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            let events = scope.spawn(|| {
                let mut s = b.open();
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    s.record_recommendations(&[rec(&format!("r{n}"), "h", &["x"])])
                        .unwrap_or_else(|e| panic!("{}: event write {n}: {e}", b.name));
                    n += 1;
                }
                n
            });
            for round in 0..150 {
                let site = Site { key: "a".into(), name: "A".into(), dataset: "d".into() };
                let p = Product::new("a", format!("new-{round}"), format!("product {round}"));
                let w = catalog.write("d", &[site], &[p], &[], "{}", &|_| {});
                if let Err(e) = w {
                    stop.store(true, std::sync::atomic::Ordering::Relaxed);
                    panic!("{}: catalog write {round}: {e}", b.name);
                }
                catalog.remove_products("a", &[format!("new-{round}")]).unwrap();
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            assert!(events.join().unwrap() > 0);
        });
    }
}

/// A store written by the previous schema (SQLite version 4, PostgreSQL version 1: no
/// erasure records) is migrated when opened, keeps its events, and feeds erasures after.
#[test]
fn a_store_of_the_previous_schema_migrates_and_keeps_its_events() {
    for b in backends("previous_schema") {
        {
            let mut s = b.open();
            s.record_recommendations(&[rec("r1", "h1", &["x"])]).unwrap();
            s.insert_events(&[event("k1", "h1", EventKind::Impression, &[("x", 0)])]).unwrap();
        }
        // take the store back to the previous schema
        match b.name {
            "sqlite" => {
                let c = rusqlite::Connection::open(&b.location).unwrap();
                c.execute_batch("DROP TABLE erasures; PRAGMA user_version = 4;").unwrap();
            }
            _ => {
                let mut c = postgres::Client::connect(b.location.to_str().unwrap(), postgres::NoTls).unwrap();
                c.batch_execute("DROP TABLE erasures; UPDATE settings SET value = '1' WHERE name = 'schema_version'")
                    .unwrap();
            }
        }
        let mut s = b.open();
        assert_eq!(s.events_after(0, 10).unwrap().len(), 1, "{}: events kept", b.name);
        let before = s.feed_cursor().unwrap();
        s.delete_session("h1").unwrap();
        assert_eq!(s.erasures_after(before.erasure).unwrap().len(), 1, "{}: erasures recorded", b.name);
    }
}
