//! `warmstart serve --retrieval pgvector`: content-space retrieval through the PostgreSQL
//! store's HNSW index instead of in-process indexes, answering like the in-process server, and
//! serving a product upserted through another replica. Needs `WARMSTART_TEST_POSTGRES`.

mod common;

use std::collections::HashSet;
use std::path::Path;

use common::{http, post, serve, subset, warmstart};
use serde_json::{json, Value};
use warmstart_embed::{write_random_checkpoint, ClipShape};

fn ids(v: &Value) -> Vec<String> {
    v["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_string()).collect()
}

fn overlap(a: &[String], b: &[String]) -> f64 {
    let a: HashSet<&String> = a.iter().collect();
    b.iter().filter(|x| a.contains(x)).count() as f64 / b.len().max(1) as f64
}

#[test]
fn pgvector_retrieval_serves_like_the_in_process_index() {
    let Some(admin) = warmstart_store::test_server("pgvector_retrieval_serves_like_the_in_process_index") else {
        return;
    };
    let db = warmstart_store::TempDatabase::create(&admin).unwrap();
    let store = Path::new(db.url());
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let clip = dir.path().join("clip");
    write_random_checkpoint(&clip, &ClipShape { max_positions: 32, ..ClipShape::tiny() }, 11).unwrap();
    warmstart(store)
        .env("WARMSTART_HOME", &home)
        .args(["ingest", "amazon-art-office"])
        .arg(subset(dir.path()))
        .assert()
        .success();
    warmstart(store)
        .env("WARMSTART_HOME", &home)
        .env("WARMSTART_CLIP_DIR", &clip)
        .args(["embed", "--model", "clip", "--dataset", "amazon-art-office"])
        .assert()
        .success();
    warmstart(store)
        .env("WARMSTART_HOME", &home)
        .args(["train", "content", "--dataset", "amazon-art-office", "--vectors", "clip/text"])
        .assert()
        .success();
    let (da, db_dir) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&da).unwrap();
    std::fs::create_dir_all(&db_dir).unwrap();
    let envs = [("WARMSTART_HOME", home.as_path()), ("WARMSTART_CLIP_DIR", clip.as_path())];
    let a = serve(store, &da, &envs, &["--ann-min-items", "1", "--api-key", "k"]);
    let b = serve(store, &db_dir, &envs, &["--ann-min-items", "1", "--retrieval", "pgvector"]);

    // the same histories, ranked by both: the candidates differ only where the two HNSW
    // searches do, and both are re-ranked exactly
    let mut agreement = Vec::new();
    for first in [0, 100, 200, 300, 400, 500] {
        let history: Vec<Value> = (first..first + 3)
            .map(|i| json!({"site": "amazon-art", "id": i.to_string(), "kind": "purchase"}))
            .collect();
        let body = json!({"site": "amazon-office", "model": "content", "k": 10, "history": history});
        let (ra, rb) = (post(&a.addr, "/v1/recommend", &body), post(&b.addr, "/v1/recommend", &body));
        assert_eq!((ra.status, rb.status), (200, 200), "{}", String::from_utf8_lossy(&rb.body));
        let (ra, rb) = (ra.json(), rb.json());
        assert_eq!((ra["retrieval"].as_str(), rb["retrieval"].as_str()), (Some("ann"), Some("pgvector")), "{rb}");
        assert_eq!(ids(&rb).len(), 10);
        agreement.push(overlap(&ids(&ra), &ids(&rb)));
    }
    let mean = agreement.iter().sum::<f64>() / agreement.len() as f64;
    assert!(mean >= 0.8, "top-10 agreement {agreement:?}");

    let sa = http(&a.addr, "GET", "/v1/sites/amazon-office/products/18644/similar?k=5", &[], None).json();
    let sb = http(&b.addr, "GET", "/v1/sites/amazon-office/products/18644/similar?k=5", &[], None).json();
    assert!(overlap(&ids(&sa), &ids(&sb)) >= 0.6, "{sa} vs {sb}");
    assert!(!ids(&sb).contains(&"18644".to_string()));

    // a product upserted through A (embedded there, its vector stored) is found by B's pgvector search
    let title = "ergonomic walnut desk organizer with drawers";
    let body = json!({"products": [{"id": "pg-new-1", "title": title}]}).to_string();
    let up = http(&a.addr, "PUT", "/v1/sites/amazon-office/products", &[("X-Api-Key", "k")], Some(body.as_bytes()));
    assert_eq!(up.status, 200, "{}", String::from_utf8_lossy(&up.body));
    let ask = json!({"site": "amazon-office", "model": "content", "k": 3, "history": [{"product": {"title": title}}]});
    let t0 = std::time::Instant::now();
    loop {
        let r = post(&b.addr, "/v1/recommend", &ask);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        if ids(&r.json()).first().map(String::as_str) == Some("pg-new-1") {
            break;
        }
        assert!(t0.elapsed().as_secs() < 10, "B never served the upserted product: {}", r.json());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
