//! The online loop over real HTTP: experiments assign sessions stably, feedback events are
//! validated against the recommendations they name and counted once, the report's counts are
//! exactly what was sent, live signals learn from clicks without a restart, a session is erased
//! everywhere, the retention window is enforced at start, and neither the log nor the store
//! file holds a raw session id or a shopper's history.

mod common;

use std::path::Path;

use common::{http, impression, post, serve, subset, warmstart, Server};
use serde_json::{json, Value};

const EXPERIMENTS: &str = r#"
[[experiment]]
key = "ab"
control = "pop"
[[experiment.variant]]
name = "pop"
model = "pop"
[[experiment.variant]]
name = "als"
model = "als"

[[experiment]]
key = "bandit"
allocation = "thompson"
[[experiment.variant]]
name = "pop"
model = "pop"
[[experiment.variant]]
name = "trending"
model = "live-trending"
"#;

fn start(store: &Path, dir: &Path, extra: &[&str]) -> Server {
    let file = dir.join("experiments.toml");
    std::fs::write(&file, EXPERIMENTS).unwrap();
    let mut args = vec!["--experiments", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    serve(store, dir, &[], &args)
}

fn recommend(addr: &str, body: Value) -> Value {
    let r = post(addr, "/v1/recommend", &body);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

fn events(addr: &str, events: Value) -> Value {
    let r = post(addr, "/v1/events", &json!({ "events": events }));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

fn click(key: &str, session: &str, rec: &Value, position: usize) -> Value {
    json!({"type": "click", "key": key, "session": session, "recommendation_id": rec["recommendation_id"],
           "id": rec["items"][position]["id"], "position": position})
}

fn codes(resp: &Value) -> Vec<String> {
    resp["rejected"].as_array().unwrap().iter().map(|r| r["code"].as_str().unwrap().to_string()).collect()
}

#[test]
fn events_experiments_live_signals_and_erasure_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s.sqlite");
    warmstart(&store).args(["ingest", "amazon-art-office"]).arg(subset(dir.path())).assert().success();
    for m in ["pop", "als"] {
        warmstart(&store).args(["train", m, "--dataset", "amazon-art-office"]).assert().success();
    }
    let server = start(&store, dir.path(), &[]);
    let addr = server.addr.as_str();
    // a shopper's Art history, as the shop's page would send it
    let sites: Value = http(addr, "GET", "/v1/sites", &[], None).json();
    assert!(sites.as_array().unwrap().iter().any(|s| s["site"] == "amazon-office"));
    let art = recommend(
        addr,
        json!({"site": "amazon-art", "history": [{"site": "amazon-office", "id": "B00006IFHD"}], "k": 3, "model": "pop"}),
    );
    let history: Vec<Value> = art["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| json!({"site": "amazon-art", "id": i["id"], "kind": "purchase"}))
        .collect();
    let history_ids: Vec<String> = history.iter().map(|h| h["id"].as_str().unwrap().to_string()).collect();

    // experiment assignment: stable per session, recorded in the response
    let ask = |session: &str, key: &str| {
        recommend(
            addr,
            json!({"site": "amazon-office", "history": history, "k": 5, "session": session, "experiment": key}),
        )
    };
    let s1 = "session-aaaaaaaa-0001";
    let r1 = ask(s1, "ab");
    assert_eq!(r1["experiment"], "ab");
    let v1 = r1["variant"].as_str().unwrap().to_string();
    assert_eq!(r1["model"], v1.as_str(), "variant names the model here");
    for _ in 0..3 {
        assert_eq!(ask(s1, "ab")["variant"], v1.as_str());
    }
    let mut seen = std::collections::HashSet::new();
    for n in 0..40 {
        seen.insert(ask(&format!("session-spread-{n:04}"), "ab")["variant"].as_str().unwrap().to_string());
    }
    assert_eq!(seen.len(), 2, "both variants get sessions");
    // bad experiment requests
    let bad = |body: Value, status: u16| {
        let r = post(addr, "/v1/recommend", &body);
        assert_eq!(r.status, status, "{body}: {}", String::from_utf8_lossy(&r.body));
        assert!(r.json()["error"]["message"].is_string());
    };
    bad(json!({"site": "amazon-office", "history": history, "experiment": "ab"}), 400);
    bad(json!({"site": "amazon-office", "history": history, "experiment": "ab", "session": s1, "model": "als"}), 400);
    bad(json!({"site": "amazon-office", "history": history, "experiment": "nope", "session": s1}), 404);
    bad(json!({"site": "amazon-office", "history": history, "session": "short"}), 400);
    bad(json!({"site": "amazon-office", "history": history, "session": "has space in it"}), 400);

    // events: accepted once, duplicates counted, every bad event named
    let ok = events(addr, json!([impression("k-imp-1", s1, &r1), click("k-clk-1", s1, &r1, 1)]));
    assert_eq!((ok["accepted"].as_u64(), ok["duplicates"].as_u64()), (Some(2), Some(0)), "{ok}");
    let again = events(
        addr,
        json!([impression("k-imp-1", s1, &r1), impression("k-imp-2", s1, &r1), click("k-clk-2", s1, &r1, 1)]),
    );
    assert_eq!((again["accepted"].as_u64(), again["duplicates"].as_u64()), (Some(0), Some(3)), "{again}");
    let r2 = ask(s1, "ab");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let mut wrong_item = click("k-bad-2", s1, &r1, 2);
    wrong_item["id"] = r1["items"][3]["id"].clone();
    let mut future = click("k-bad-5", s1, &r1, 2);
    future["time"] = json!(now + 86_400);
    let mut expired = click("k-bad-6", s1, &r1, 2);
    expired["time"] = json!(now - 400 * 86_400);
    let mut unknown_rec = click("k-bad-4", s1, &r1, 0);
    unknown_rec["recommendation_id"] = json!("0123456789abcdef0123456789abcdef");
    let mut out_of_range = click("k-bad-1", s1, &r1, 0);
    out_of_range["position"] = json!(7);
    let bad_events = json!([
        out_of_range,
        wrong_item,
        click("k-bad-3", s1, &r2, 0),
        unknown_rec,
        future,
        expired,
        click("k-bad-7", "session-someone-else", &r1, 1),
        {"type": "purchase", "key": "k-bad-8", "session": s1, "site": "amazon-office", "id": "no-such-product"},
        {"type": "purchase", "key": "k-bad-9", "session": s1, "site": "no-such-shop", "id": "x"},
        {"type": "click", "key": "k-bad-10", "session": s1, "recommendation_id": r1["recommendation_id"]},
        {"type": "impression", "key": "k bad", "session": s1, "recommendation_id": r1["recommendation_id"], "items": [{"id": "x", "position": 0}]},
        {"type": "cart", "key": "k-cart-1", "session": s1, "recommendation_id": r1["recommendation_id"], "id": r1["items"][1]["id"]},
        {"type": "purchase", "key": "k-buy-1", "session": s1, "site": "amazon-office", "id": r1["items"][4]["id"]},
    ]);
    let resp = events(addr, bad_events);
    assert_eq!(
        codes(&resp),
        [
            "bad_position",
            "wrong_item",
            "no_impression",
            "unknown_recommendation",
            "future_time",
            "expired",
            "session_mismatch",
            "unknown_product",
            "unknown_site",
            "bad_field",
            "bad_field"
        ],
        "{resp}"
    );
    assert_eq!(resp["accepted"], 2, "{resp}");
    let idx: Vec<u64> = resp["rejected"].as_array().unwrap().iter().map(|r| r["index"].as_u64().unwrap()).collect();
    assert_eq!(idx, (0..11).collect::<Vec<u64>>());
    // malformed batches are 4xx JSON errors
    for (body, status) in [
        (json!({"events": []}), 400),
        (json!({"events": [{"type": "click"}]}), 400),
        (json!({"events": [{"type": "wink", "key": "k", "session": s1}]}), 400),
        (json!({"evts": []}), 400),
    ] {
        let r = post(addr, "/v1/events", &body);
        assert_eq!(r.status, status, "{body}");
        assert!(r.json()["error"]["code"].is_string());
    }
    let many: Vec<Value> = (0..501)
        .map(|n| json!({"type": "purchase", "key": format!("m{n}"), "session": s1, "site": "amazon-office", "id": "x"}))
        .collect();
    assert_eq!(post(addr, "/v1/events", &json!({ "events": many })).status, 400);

    // the report counts exactly what was accepted
    let report = http(addr, "GET", "/v1/experiments/ab/report", &[], None).json();
    let v = report["variants"].as_array().unwrap().iter().find(|x| x["name"] == v1.as_str()).unwrap().clone();
    assert_eq!(
        (v["sessions"].as_u64(), v["impressions"].as_u64(), v["clicks"].as_u64(), v["carts"].as_u64()),
        (Some(1), Some(5), Some(1), Some(1)),
        "{report}"
    );
    assert!((v["ctr"]["value"].as_f64().unwrap() - 0.2).abs() < 1e-12);
    assert!(report["sample_ratio"]["p_value"].is_number());
    assert_eq!(http(addr, "GET", "/v1/experiments/nope/report", &[], None).status, 404);

    // live signals: clicks move an item to the top of live-popular / the bandit's trending arm,
    // and co-clicks link products, without a restart
    // engagement weights: purchase 5 (item 4) > click 1 + cart 3 (item 1) > nothing
    let live = recommend(addr, json!({"site": "amazon-office", "history": history, "k": 3, "model": "live-popular"}));
    assert_eq!(
        (&live["items"][0]["id"], &live["items"][1]["id"]),
        (&r1["items"][4]["id"], &r1["items"][1]["id"]),
        "{live}"
    );
    assert!((live["items"][0]["score"].as_f64().unwrap() - 5.0).abs() < 0.01);
    let s2 = "session-bbbbbbbb-0002";
    let r3 =
        recommend(addr, json!({"site": "amazon-office", "history": history, "k": 5, "model": "pop", "session": s2}));
    let e =
        events(addr, json!([impression("s2-imp", s2, &r3), click("s2-c0", s2, &r3, 0), click("s2-c2", s2, &r3, 2)]));
    assert_eq!(e["accepted"], 3, "{e}");
    let a = r3["items"][0]["id"].as_str().unwrap();
    let sim = http(addr, "GET", &format!("/v1/sites/amazon-office/products/{a}/similar?model=co-click&k=5"), &[], None)
        .json();
    assert_eq!(sim["items"][0]["id"], r3["items"][2]["id"], "{sim}");
    let b = recommend(
        addr,
        json!({"site": "amazon-office", "history": history, "k": 5, "session": s2, "experiment": "bandit"}),
    );
    assert!(b["variant"] == "pop" || b["variant"] == "trending");

    // erasure: every row of the session, answered with counts; a second erase finds nothing
    let del = http(addr, "DELETE", &format!("/v1/sessions/{s1}"), &[], None);
    assert_eq!(del.status, 200);
    let del = del.json();
    assert_eq!(del["events"], 5 + 1 + 1 + 1, "{del}");
    // keys: two impressions, two clicks (the second a duplicate by its rows), a cart, a purchase
    assert_eq!((del["recommendations"].as_u64(), del["keys"].as_u64()), (Some(5), Some(6)), "{del}");
    let del2 = http(addr, "DELETE", &format!("/v1/sessions/{s1}"), &[], None).json();
    assert_eq!((del2["events"].as_u64(), del2["recommendations"].as_u64()), (Some(0), Some(0)));
    assert_eq!(http(addr, "DELETE", "/v1/sessions/x", &[], None).status, 400);
    let report = http(addr, "GET", "/v1/experiments/ab/report", &[], None).json();
    let v = report["variants"].as_array().unwrap().iter().find(|x| x["name"] == v1.as_str()).unwrap().clone();
    assert_eq!(v["impressions"], 0, "{report}");
    let metrics = String::from_utf8(http(addr, "GET", "/metrics", &[], None).body).unwrap();
    assert!(metrics.contains("warmstart_events_total{outcome=\"accepted\"}"));
    assert!(metrics.contains("warmstart_recommendations_unrecorded_total 0"));
    drop(server);

    // privacy: no raw session id, history product or title in the log; no raw session id in the store
    let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap();
    for needle in [s1, s2, "session-spread-0001"].iter().map(|s| s.to_string()).chain(history_ids.iter().cloned()) {
        assert!(!log.contains(&needle), "the log holds `{needle}`");
    }
    let mut bytes = std::fs::read(&store).unwrap();
    for wal in ["-wal", "-shm"] {
        let mut p = store.clone().into_os_string();
        p.push(wal);
        bytes.extend(std::fs::read(p).unwrap_or_default());
    }
    for s in [s2, "session-spread-0001"] {
        assert!(!bytes.windows(s.len()).any(|w| w == s.as_bytes()), "the store holds the raw session id {s}");
    }

    // the retention window: a restart with a window shorter than the events' age purges them
    std::thread::sleep(std::time::Duration::from_millis(4000));
    let server = start(&store, dir.path(), &["--events-retention-days", "0.00002"]);
    let report = http(&server.addr, "GET", "/v1/experiments/ab/report", &[], None).json();
    assert!(
        report["variants"].as_array().unwrap().iter().all(|v| v["impressions"] == 0 && v["recommendations"] == 0),
        "{report}"
    );
    let del = http(&server.addr, "DELETE", &format!("/v1/sessions/{s2}"), &[], None).json();
    assert_eq!(del["events"], 0, "purged already: {del}");
    // feedback off: the routes answer 404 and recommendations still work
    drop(server);
    let server = serve(&store, dir.path(), &[], &["--no-feedback"]);
    assert_eq!(post(&server.addr, "/v1/events", &json!({"events": [impression("k", s2, &r3)]})).status, 404);
    let r = post(&server.addr, "/v1/recommend", &json!({"site": "amazon-office", "history": history, "session": s2}));
    assert_eq!(r.status, 200);
}
