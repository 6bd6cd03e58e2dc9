use super::*;
use warmstart_core::{Interaction, InteractionKind, Price, Product, Site, Split};

fn sample() -> (Vec<Site>, Vec<Product>, Vec<Interaction>) {
    let sites = vec![
        Site { key: "a".into(), name: "A".into(), dataset: "d".into() },
        Site { key: "b".into(), name: "B".into(), dataset: "d".into() },
    ];
    let mut p1 = Product::new("a", "1", "Red tee");
    p1.price = Some(Price { amount: 10.0, currency: *b"EUR" });
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
    let inter = vec![
        it("u1", "a", "1", Split::Train),
        it("u1", "b", "9", Split::Train),
        it("u2", "a", "2", Split::Train),
        it("u3", "b", "9", Split::Test),
        it("u3", "a", "1", Split::Train),
        it("u4", "b", "404", Split::Train),
    ];
    (sites, products, inter)
}

#[test]
fn write_is_idempotent_and_updates_changed_products() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("s.sqlite")).unwrap();
    let (sites, mut products, inter) = sample();
    let first = store.write("t", &sites, &products, &inter, "{}", &|_| {}).unwrap();
    assert_eq!((first.products_inserted, first.interactions_inserted, first.users_created), (3, 5, 3));
    assert_eq!(first.interactions_unknown_product, 1);
    assert_eq!(first.unknown_product_examples, vec!["b/404".to_string()]);
    let counts = store.row_counts().unwrap();
    let second = store.write("t", &sites, &products, &inter, "{}", &|_| {}).unwrap();
    assert_eq!((second.products_inserted, second.products_unchanged, second.interactions_inserted), (0, 3, 0));
    assert_eq!(second.interactions_existing, 5);
    let after = store.row_counts().unwrap();
    assert_eq!(counts[..4], after[..4], "second write changed data rows");
    products[1].title = "Navy tee".into();
    let third = store.write("t", &sites, &products, &[], "{}", &|_| {}).unwrap();
    assert_eq!((third.products_updated, third.products_unchanged), (1, 2));
}

#[test]
fn loads_dataset_and_reports_stats() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/s.sqlite");
    let mut store = Store::open(&path).unwrap();
    let (sites, products, inter) = sample();
    store.write("t", &sites, &products, &inter, "{}", &|_| {}).unwrap();
    drop(store);
    let store = Store::open(&path).unwrap();
    let d = store.load_dataset(Some("d")).unwrap();
    assert_eq!((d.sites.len(), d.n_items(), d.n_users(), d.interactions.len()), (2, 3, 3, 5));
    assert_eq!(d.sites[1].items, 2..3);
    assert_eq!(d.overlap()[0].users, 2);
    let b = d.site_by_key("b").unwrap();
    assert_eq!(d.users_with_split_on_site(b, Split::Test).len(), 1);
    assert!(matches!(store.load_dataset(Some("nope")), Err(Error::NotFound { .. })));

    let st = store.stats().unwrap();
    assert_eq!(st.totals["products"], 3);
    assert_eq!(st.totals["interactions"], 5);
    assert_eq!(st.overlap[0].users, 2);
    let sa = &st.sites[0];
    assert_eq!((sa.key.as_str(), sa.products, sa.users), ("a", 2, 3));
    assert!((sa.missing["price"] - 0.5).abs() < 1e-9);
    assert_eq!(st.sites[1].cold_start_test_users, 1);
    assert_eq!(st.datasets[0].users, 3);
}

#[test]
fn rejects_files_that_are_not_stores() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.sqlite");
    std::fs::write(&path, b"this is not a database at all, just some text that is long enough").unwrap();
    let err = Store::open(&path).err().expect("junk must not open");
    assert!(err.to_string().contains("junk.sqlite"), "{err}");
}

#[test]
fn vectors_round_trip_in_f32_and_f16_and_go_stale_when_content_changes() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("s.sqlite")).unwrap();
    let (sites, mut products, inter) = sample();
    store.write("t", &sites, &products, &inter, "{}", &|_| {}).unwrap();
    let cands = store.embed_candidates("m", None).unwrap();
    assert_eq!(cands.len(), 3);
    assert!(cands.iter().all(|c| !c.cached));
    let v = [0.1f32, -0.25, 0.3333];
    let rows: Vec<(i64, String, Vec<f32>)> = cands.iter().map(|c| (c.id, c.content_hash.clone(), v.to_vec())).collect();
    store.put_embeddings("m", &rows, VectorDtype::F32).unwrap();
    store.put_embeddings("m16", &rows, VectorDtype::F16).unwrap();
    let exact = store.load_item_vectors("m", None).unwrap();
    let half = store.load_item_vectors("m16", None).unwrap();
    assert_eq!((exact.dim, exact.count_present(), half.count_present()), (3, 3, 3));
    assert_eq!(exact.row(0), &v);
    assert!(half.row(0).iter().zip(&v).all(|(a, b)| (a - b).abs() < 1e-3), "{:?}", half.row(0));
    assert_ne!(half.row(0), &v, "0.1 and 0.3333 are not representable in f16");
    assert!(store.embed_candidates("m", None).unwrap().iter().all(|c| c.cached));
    // a changed title makes that product's vector stale: missing on load, re-embedded next run
    products[1].title = "Navy tee".into();
    store.write("t", &sites, &products, &inter, "{}", &|_| {}).unwrap();
    let again = store.embed_candidates("m", None).unwrap();
    assert_eq!(again.iter().filter(|c| !c.cached).count(), 1);
    assert_eq!(store.load_item_vectors("m", None).unwrap().count_present(), 2);
}

#[test]
fn a_site_of_another_dataset_is_a_conflict_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("s.sqlite")).unwrap();
    let (sites, products, inter) = sample();
    store.write("t", &sites, &products, &inter, "{}", &|_| {}).unwrap();
    let before = store.row_counts().unwrap();
    // a user's own file that happens to use the benchmark's site key `a`
    let mine = vec![
        Site { key: "mine".into(), name: "Mine".into(), dataset: "custom".into() },
        Site { key: "a".into(), name: "a".into(), dataset: "custom".into() },
    ];
    let err = store
        .write("jsonl", &mine, &[Product::new("mine", "1", "Mug"), Product::new("a", "77", "Mug")], &[], "{}", &|_| {})
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::SiteConflict { .. }), "{msg}");
    assert!(msg.contains("`a`") && msg.contains("`d`") && msg.contains("custom"), "{msg}");
    assert_eq!(store.row_counts().unwrap(), before, "the failed import wrote nothing");
    assert!(store.datasets().unwrap().iter().all(|(d, _)| d != "custom"));
    // the same site under its own dataset is fine
    let ok = vec![Site { key: "a".into(), name: "A".into(), dataset: "d".into() }];
    store.write("t", &ok, &[Product::new("a", "77", "Mug")], &[], "{}", &|_| {}).unwrap();
}
