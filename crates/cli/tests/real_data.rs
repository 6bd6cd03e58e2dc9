//! Imports every shared dataset through the command line and checks the exact counts.

mod common;
use common::*;

#[test]
fn shared_datasets_import_with_exact_counts_and_reimport_changes_nothing() {
    let data = data_dir();
    assert!(data.join("amazon-art-office").is_dir(), "shared data not found at {}", data.display());
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store.sqlite");

    for (source, sub) in [
        ("fashion-products", "fashion-products"),
        ("amazon-art-office", "amazon-art-office"),
        ("cdrib", "cdrib-game-video"),
        ("movielens-100k", "movielens-100k"),
    ] {
        warmstart(&store).args(["ingest", source]).arg(data.join(sub)).assert().success();
    }
    let st = stats(&store);

    let fashion = site(&st, "fashion");
    assert_eq!(fashion["products"], 44_446);
    assert_eq!(fashion["products_with_image"], 44_441);

    let ds = |name: &str| st["datasets"].as_array().unwrap().iter().find(|d| d["name"] == name).unwrap().clone();
    let amazon = ds("amazon-art-office");
    assert_eq!(amazon["products"], 38_396);
    assert_eq!(amazon["sites"].as_array().unwrap().len(), 2);
    assert_eq!(amazon["users"], 9_577);
    assert_eq!(site(&st, "amazon-art")["products"], 18_639);
    assert_eq!(site(&st, "amazon-office")["products"], 19_757);
    // the published split: users 8000..8999 are the test users on both sites
    assert_eq!(site(&st, "amazon-art")["cold_start_test_users"], 1_000);

    let game = site(&st, "cdrib-game");
    let video = site(&st, "cdrib-video");
    assert_eq!(game["products"], 12_319);
    assert_eq!(video["products"], 8_751);
    assert_eq!(game["cold_start_test_users"], 212);
    assert_eq!(video["cold_start_test_users"], 216);
    let overlap = st["overlap"].as_array().unwrap().iter().find(|o| o["a"] == "cdrib-game").unwrap();
    assert_eq!(overlap["users"], 2_179);

    let ml = ds("movielens-100k");
    assert_eq!(
        (ml["users"].as_i64(), ml["products"].as_i64(), ml["interactions"].as_i64()),
        (Some(943), Some(1_682), Some(100_000))
    );

    // A second ingest of the same file changes nothing.
    let before = st["totals"].clone();
    let out = warmstart(&store)
        .args(["--json", "ingest", "amazon-art-office"])
        .arg(data.join("amazon-art-office"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["written"]["products_inserted"], 0);
    assert_eq!(v["written"]["products_unchanged"], 38_396);
    assert_eq!(v["written"]["interactions_inserted"], 0);
    let after = stats(&store)["totals"].clone();
    for k in ["sites", "products", "users", "interactions", "products_with_image"] {
        assert_eq!(before[k], after[k], "{k} changed on re-import");
    }
}

#[test]
fn fashion_catalog_dealt_into_shops_deterministically() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s.sqlite");
    let path = data_dir().join("fashion-products/styles.csv");
    warmstart(&store)
        .args(["ingest", "fashion-products", "--shops", "3", "--no-verify-images"])
        .arg(&path)
        .assert()
        .success();
    let st = stats(&store);
    let sizes: Vec<i64> =
        (1..=3).map(|i| site(&st, &format!("fashion-shop-{i}"))["products"].as_i64().unwrap()).collect();
    assert_eq!(sizes.iter().sum::<i64>(), 44_446);
    assert!(sizes.iter().all(|&n| (13_500..16_000).contains(&n)), "uneven deal {sizes:?}");
    // same seed, same deal
    let store2 = dir.path().join("s2.sqlite");
    warmstart(&store2)
        .args(["ingest", "fashion-products", "--shops", "3", "--no-verify-images"])
        .arg(&path)
        .assert()
        .success();
    let st2 = stats(&store2);
    let sizes2: Vec<i64> =
        (1..=3).map(|i| site(&st2, &format!("fashion-shop-{i}"))["products"].as_i64().unwrap()).collect();
    assert_eq!(sizes, sizes2);
}
