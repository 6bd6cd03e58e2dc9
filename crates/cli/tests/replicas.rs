//! Several `warmstart serve` processes on one store: a catalog write through one replica is
//! served by the others within the sync interval, and feedback events sent to different
//! replicas are counted once. Runs on SQLite (two processes, one file) and on PostgreSQL when
//! `WARMSTART_TEST_POSTGRES` names a server (CI sets it).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{http, impression, post, serve, subset, warmstart};
use serde_json::{json, Value};

fn office_products(addr: &str) -> u64 {
    let sites: Value = http(addr, "GET", "/v1/sites", &[], None).json();
    sites.as_array().unwrap().iter().find(|s| s["site"] == "amazon-office").unwrap()["products"].as_u64().unwrap()
}

/// Polls `addr` until the office catalog has `want` products; returns how long that took.
fn wait_for_count(addr: &str, want: u64) -> Duration {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(10) {
        if office_products(addr) == want {
            return t0.elapsed();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{addr}: the office catalog never reached {want} products (has {})", office_products(addr));
}

/// Posts one event. The list it names was just served by the other replica, whose writer
/// records it within milliseconds: the receiving replica waits for it rather than refusing.
fn events(addr: &str, body: &Value) -> Value {
    let r = post(addr, "/v1/events", &json!({ "events": [body] }));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

fn replicas_share_one_store(store: &Path, dir: &Path) {
    let home = dir.join("home");
    warmstart(store)
        .env("WARMSTART_HOME", &home)
        .args(["ingest", "amazon-art-office"])
        .arg(subset(dir))
        .assert()
        .success();
    warmstart(store)
        .env("WARMSTART_HOME", &home)
        .args(["train", "pop", "--dataset", "amazon-art-office"])
        .assert()
        .success();
    let (da, db) = (dir.join("a"), dir.join("b"));
    std::fs::create_dir_all(&da).unwrap();
    std::fs::create_dir_all(&db).unwrap();
    let a = serve(store, &da, &[("WARMSTART_HOME", &home)], &["--api-key", "k"]);
    let b = serve(store, &db, &[("WARMSTART_HOME", &home)], &["--api-key", "k"]);
    let auth = [("X-Api-Key", "k")];
    let before = office_products(&b.addr);
    assert_eq!(office_products(&a.addr), before);

    // an upsert through A is served by B within the sync interval (500 ms) and a poll
    let body = json!({"products": [{"id": "replica-1", "title": "walnut desk organizer"}]}).to_string();
    let up = http(&a.addr, "PUT", "/v1/sites/amazon-office/products", &auth, Some(body.as_bytes()));
    assert_eq!(up.status, 200, "{}", String::from_utf8_lossy(&up.body));
    assert_eq!(office_products(&a.addr), before + 1, "the writing replica serves it at once");
    let seen = wait_for_count(&b.addr, before + 1);
    assert!(seen < Duration::from_secs(3), "B took {seen:?}");
    // a removal through B reaches A
    let del = json!({"ids": ["replica-1"]}).to_string();
    let d = http(&b.addr, "DELETE", "/v1/sites/amazon-office/products", &auth, Some(del.as_bytes()));
    assert_eq!(d.status, 200, "{}", String::from_utf8_lossy(&d.body));
    wait_for_count(&a.addr, before);
    // a product imported by another process (warmstart ingest) reaches both
    let extra = dir.join("extra.jsonl");
    std::fs::write(&extra, "{\"site\":\"amazon-office\",\"id\":\"cli-1\",\"title\":\"stapler\"}\n").unwrap();
    warmstart(store)
        .env("WARMSTART_HOME", &home)
        .args(["ingest", "jsonl", "--dataset", "amazon-art-office"])
        .arg(&extra)
        .assert()
        .success();
    wait_for_count(&a.addr, before + 1);
    wait_for_count(&b.addr, before + 1);

    // events about one list, sent to both replicas, count once
    let r = post(
        &a.addr,
        "/v1/recommend",
        &json!({"site": "amazon-office", "history": [{"site": "amazon-art", "id": "37"}], "k": 4, "model": "pop", "session": "replica-session-1"}),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let rec = r.json();
    let shown = |key: &str| impression(key, "replica-session-1", &rec);
    let first = events(&b.addr, &shown("imp-1"));
    assert_eq!((first["accepted"].as_u64(), first["duplicates"].as_u64()), (Some(1), Some(0)), "{first}");
    let again = events(&a.addr, &shown("imp-2"));
    assert_eq!((again["accepted"].as_u64(), again["duplicates"].as_u64()), (Some(0), Some(1)), "{again}");
    let same_key = events(&b.addr, &shown("imp-1"));
    assert_eq!(same_key["duplicates"].as_u64(), Some(1), "{same_key}");
    // live signals follow every replica's events: a purchase through B counts once at A
    let bought = rec["items"][3]["id"].as_str().unwrap().to_string();
    let purchase = json!({"type": "purchase", "key": "buy-1", "session": "replica-session-2",
        "site": "amazon-office", "id": bought});
    assert_eq!(events(&b.addr, &purchase)["accepted"], 1);
    let live_top = |addr: &str| -> (String, f64) {
        let r = post(
            addr,
            "/v1/recommend",
            &json!({"site": "amazon-office", "history": [{"site": "amazon-art", "id": "37"}], "k": 1, "model": "live-popular"}),
        );
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let v = r.json();
        (v["items"][0]["id"].as_str().unwrap_or_default().to_string(), v["items"][0]["score"].as_f64().unwrap_or(0.0))
    };
    let t0 = Instant::now();
    while live_top(&a.addr).0 != bought {
        assert!(t0.elapsed() < Duration::from_secs(5), "A never learnt B's purchase: {:?}", live_top(&a.addr));
        std::thread::sleep(Duration::from_millis(50));
    }
    for addr in [&a.addr, &b.addr] {
        let (top, score) = live_top(addr);
        assert_eq!(top, bought, "{addr}");
        assert!((score - 5.0).abs() < 0.01, "{addr}: a purchase weighs 5, counted once: {score}");
    }
    // an erasure through B makes A forget the session's recent clicks too: clicks of the same
    // session id after the erasure are not linked to clicks before it
    let click_through_a = |key: &str, position: usize| {
        let r = post(
            &a.addr,
            "/v1/recommend",
            &json!({"site": "amazon-office", "history": [{"site": "amazon-art", "id": "37"}], "k": 4, "model": "pop", "session": "replica-session-3"}),
        );
        let list = r.json();
        let imp = impression(&format!("{key}-imp"), "replica-session-3", &list);
        let click = json!({"type": "click", "key": format!("{key}-click"), "session": "replica-session-3",
            "recommendation_id": list["recommendation_id"], "id": list["items"][position]["id"], "position": position});
        let r = post(&a.addr, "/v1/events", &json!({ "events": [imp, click] }));
        assert_eq!(r.json()["accepted"], 2, "{}", String::from_utf8_lossy(&r.body));
        list["items"][position]["id"].as_str().unwrap().to_string()
    };
    let first = click_through_a("before", 0);
    assert_eq!(http(&b.addr, "DELETE", "/v1/sessions/replica-session-3", &[], None).status, 200);
    std::thread::sleep(Duration::from_millis(1000));
    let second = click_through_a("after", 2);
    let similar = http(
        &a.addr,
        "GET",
        &format!("/v1/sites/amazon-office/products/{second}/similar?model=co-click&k=5"),
        &[],
        None,
    );
    let linked: Vec<String> = similar.json()["items"]
        .as_array()
        .map(|v| v.iter().filter_map(|i| i["id"].as_str().map(String::from)).collect())
        .unwrap_or_default();
    assert!(!linked.contains(&first), "A still linked the erased session's click on {first}: {linked:?}");

    // a model trained while both serve is picked up by both without a restart
    let version = |addr: &str| -> u64 {
        let sites: Value = http(addr, "GET", "/v1/sites", &[], None).json();
        let office = sites.as_array().unwrap().iter().find(|s| s["site"] == "amazon-office").unwrap().clone();
        office["models"].as_array().unwrap().iter().find(|m| m["model"] == "pop").unwrap()["version"].as_u64().unwrap()
    };
    let v1 = version(&a.addr);
    warmstart(store)
        .env("WARMSTART_HOME", &home)
        .args(["train", "pop", "--dataset", "amazon-art-office"])
        .assert()
        .success();
    for addr in [&a.addr, &b.addr] {
        let t0 = Instant::now();
        while version(addr) == v1 {
            assert!(t0.elapsed() < Duration::from_secs(20), "{addr} never loaded the new artifact");
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(version(addr), v1 + 1);
    }
    // and erasing the session through either replica removes it everywhere
    let erased = http(&b.addr, "DELETE", "/v1/sessions/replica-session-1", &[], None);
    assert_eq!(erased.status, 200, "{}", String::from_utf8_lossy(&erased.body));
    assert_eq!(erased.json()["events"], 4, "four shown items");

    // a replica stopped with SIGTERM closes its store connections and exits cleanly
    let mut b = b;
    let stopped = std::process::Command::new("kill").args(["-TERM", &b.child.id().to_string()]).status().unwrap();
    assert!(stopped.success());
    let status = b.child.wait().unwrap();
    let log = std::fs::read_to_string(db.join("server.log")).unwrap();
    assert!(status.success() && !log.contains("panicked"), "{status}: {log}");
}

#[test]
fn two_replicas_on_one_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    replicas_share_one_store(&dir.path().join("s.sqlite"), dir.path());
}

#[test]
fn two_replicas_on_one_postgres_database() {
    let Some(admin) = warmstart_store::test_server("two_replicas_on_one_postgres_database") else { return };
    let db = warmstart_store::TempDatabase::create(&admin).unwrap();
    let dir = tempfile::tempdir().unwrap();
    replicas_share_one_store(Path::new(db.url()), dir.path());
}
