//! Protocols on a small hand-made two-site dataset: who is held out, what is trained on,
//! what is ranked.

use warmstart_core::{Dataset, DatasetBuilder, EventTime, Interaction, InteractionKind, Product, Site, Split};
use warmstart_eval::protocol::{self, Candidates, ProtocolOptions};
use warmstart_eval::runner::{fit_and_evaluate, EvalConfig};
use warmstart_models::{by_name, PopularityConfig};

/// 40 users on two sites (a: items 0..10, b: items 10..20); users 0..30 train, 30..35 test,
/// 35..40 validation, with sequence positions.
fn dataset() -> Dataset {
    dataset_with(&[])
}

/// [`dataset`] with extra (user, site, item, position, split) interactions.
fn dataset_with(extra: &[(u32, &str, &str, i64, Split)]) -> Dataset {
    let sites = vec![
        Site { key: "a".into(), name: "A".into(), dataset: "d".into() },
        Site { key: "b".into(), name: "B".into(), dataset: "d".into() },
    ];
    let mut products = Vec::new();
    for i in 0..10 {
        products.push(Product::new("a", format!("a{i}"), format!("A item {i}")));
        products.push(Product::new("b", format!("b{i}"), format!("B item {i}")));
    }
    let mut inter = Vec::new();
    for u in 0..40u32 {
        let split = match u {
            0..=29 => Split::Train,
            30..=34 => Split::Test,
            _ => Split::Valid,
        };
        // taste: even users like low ids on both sites, odd users high ids
        let base = if u % 2 == 0 { 0 } else { 5 };
        for (pos, j) in (0..4).enumerate() {
            let (site, item) = if pos % 2 == 0 {
                ("a", format!("a{}", base + (u as usize + j) % 5))
            } else {
                ("b", format!("b{}", base + (u as usize + j) % 5))
            };
            inter.push(Interaction {
                user: format!("u{u}"),
                site: site.into(),
                product: item,
                kind: InteractionKind::Purchase,
                value: None,
                text: None,
                time: Some(EventTime::Sequence(pos as i64)),
                split,
            });
        }
    }
    for &(u, site, item, pos, split) in extra {
        if !products.iter().any(|p| p.external_id == item) {
            products.push(Product::new(site, item, format!("extra item {item}")));
        }
        inter.push(Interaction {
            user: format!("u{u}"),
            site: site.into(),
            product: item.into(),
            kind: InteractionKind::Purchase,
            value: None,
            text: None,
            time: Some(EventTime::Sequence(pos)),
            split,
        });
    }
    DatasetBuilder::from_records(&sites, &products, &inter).unwrap()
}

#[test]
fn cold_start_holds_out_target_interactions_of_published_test_users() {
    let d = dataset();
    let (a, b) = (d.site_by_key("a").unwrap(), d.site_by_key("b").unwrap());
    let task = protocol::cold_start(&d, a, b, None, &ProtocolOptions::default());
    assert_eq!(task.test.len(), 5);
    assert_eq!(task.valid.len(), 5);
    let brange = d.sites[b as usize].items.clone();
    for c in task.test.iter().chain(&task.valid) {
        // nothing of the held-out user's target site is in training
        assert!(task.train.row_indices(c.user as usize).iter().all(|i| !brange.contains(i)));
        // but their source-site history is
        assert!(!task.train.row_indices(c.user as usize).is_empty());
        assert!(c.history.iter().all(|(i, _)| d.sites[a as usize].items.contains(i)));
        assert!(c.relevant.iter().all(|i| brange.contains(i)));
        assert_eq!(c.other_site_history, c.history.len());
    }
    // training users keep everything
    assert_eq!(task.train.row_nnz(0), 4);
}

#[test]
fn cdrib_protocol_ranks_each_row_against_sampled_items() {
    // b10: a test row whose item no one trained on (CDRIB's loader leaves such rows out and
    // never draws the item as a negative)
    let d = dataset_with(&[(30, "b", "b10", 3, Split::Test)]);
    let b10 = d.products.iter().position(|p| p.external_id == "b10").unwrap() as u32;
    let opts = ProtocolOptions { negatives: 50, ..Default::default() };
    let task = protocol::cdrib(&d, 0, 1, &opts);
    assert_eq!(task.test.len(), 10, "two target rows for each of 5 test users, b10's row left out");
    assert!(task.notes.iter().any(|n| n.contains("1 test rows whose item has no training row")), "{:?}", task.notes);
    for c in &task.test {
        let Candidates::List(l) = &c.candidates else { panic!("sampled candidates expected") };
        assert_eq!(l.len(), 51);
        assert_eq!(l[0], c.relevant[0]);
        assert!(l.iter().all(|i| d.sites[1].items.contains(i) && *i != b10));
        // negatives are never one of the user's own held-out items
        let own: Vec<u32> = task.test.iter().filter(|o| o.user == c.user).flat_map(|o| o.relevant.clone()).collect();
        assert!(l[1..].iter().all(|i| !own.contains(i)), "a user's own test item drawn as a negative");
    }
    // deterministic with the seed
    let again = protocol::cdrib(&d, 0, 1, &opts);
    assert_eq!(format!("{:?}", task.test[3].candidates), format!("{:?}", again.test[3].candidates));
}

#[test]
fn leave_one_out_targets_the_last_position() {
    // URLLM's data: a user's two test lines share a prefix and differ in the last item; both
    // targets in one shop make two cases
    let d = dataset_with(&[(30, "b", "b9", 3, Split::Test)]);
    let task = protocol::leave_one_out(&d, 1, &ProtocolOptions::default()).unwrap();
    assert_eq!(task.test.len(), 6, "one case per target");
    let twice: Vec<_> = task.test.iter().filter(|c| c.user == task.test[0].user).collect();
    assert_eq!(twice.len(), 2);
    assert_ne!(twice[0].relevant, twice[1].relevant);
    assert_eq!(twice[0].history, twice[1].history, "the same prefix");
    for c in &task.test {
        assert_eq!(c.relevant.len(), 1);
        // last position 3 is a b-item; the history holds positions 0..3 (3 items at most)
        assert!(c.history.len() <= 3);
        assert!(c.history.iter().all(|h| !c.relevant.contains(&h.0)), "no target in the history");
        // held-out users are not trained on at all (folded in from their history)
        assert!(task.train.row_indices(c.user as usize).is_empty());
    }
    assert!(task.valid.iter().all(|c| task.train.row_indices(c.user as usize).is_empty()));
    // site a's targets: the last position is on site b, so there are none
    assert!(protocol::leave_one_out(&d, 0, &ProtocolOptions::default()).unwrap().test.is_empty());
}

#[test]
fn folds_partition_the_users_and_models_beat_random() {
    let d = dataset();
    let folds = protocol::cold_start_folds(&d, 0, 1, 5, &ProtocolOptions::default()).unwrap();
    let mut users: Vec<u32> = folds.iter().flat_map(|t| t.test.iter().map(|c| c.user)).collect();
    users.sort_unstable();
    let n = users.len();
    users.dedup();
    assert_eq!((n, users.len()), (40, 40), "every user tested exactly once");

    let task = protocol::cold_start(&d, 0, 1, None, &ProtocolOptions::default());
    let cfg = EvalConfig { ks: vec![5], seed: 1, item_vectors: None };
    for name in ["itemknn", "als"] {
        let m = by_name(name, 1, 7).unwrap();
        let r = fit_and_evaluate(m.as_ref(), &d, &task, &cfg, false).unwrap();
        // 10 candidates, 2 relevant, taste fully predictable from the other site
        assert!(r.metrics["recall@5"] > 0.9, "{name}: {:?}", r.metrics);
        assert!(r.segments.contains_key("history=1-2"));
    }
    let pop = PopularityConfig::builder().build().unwrap();
    let r = fit_and_evaluate(&pop, &d, &task, &cfg, false).unwrap();
    assert!(r.metrics["recall@5"] < 0.9);
}

#[test]
fn random_split_excludes_training_items() {
    let d = dataset();
    let task = protocol::random_split(&d, 0, &ProtocolOptions::default());
    for c in &task.test {
        for r in &c.relevant {
            assert!(!c.exclude.contains(r));
        }
        assert_eq!(c.exclude.len(), c.history.len());
    }
}
