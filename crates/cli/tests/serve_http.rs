//! `warmstart train` + `warmstart serve` end to end over real HTTP: a store built from a
//! subset of the shared Amazon Art/Office data, text vectors from a small seeded CLIP
//! checkpoint (through `WARMSTART_CLIP_DIR`), artifacts of four models, the server on an
//! ephemeral port. Every endpoint, every bad input, parity with the library's own ranking,
//! the OpenAPI document against the routes, and a restart that memory-maps the indexes.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};

use std::time::{Duration, Instant};

use common::{http, post, serve, subset, warmstart, Server};
use serde_json::{json, Value};
use warmstart_embed::{write_random_checkpoint, ClipShape};

fn start(store: &Path, clip: &Path, dir: &Path) -> Server {
    start_with(store, clip, dir, &[])
}

fn start_with(store: &Path, clip: &Path, dir: &Path, extra: &[&str]) -> Server {
    let mut args = vec!["--api-key", "sekret", "--ann-min-items", "1000", "--max-body", "65536"];
    args.extend_from_slice(extra);
    serve(store, dir, &[("WARMSTART_CLIP_DIR", clip)], &args)
}

/// Every kind of model that serves: popularity, item-kNN, ALS and BPR factors, content, and
/// the neural two-tower and GraphSAGE (one epoch each, for speed).
const MODELS: [&str; 7] = ["pop", "itemknn", "als", "bpr", "content", "two-tower:epochs=1", "graphsage:epochs=1"];

#[test]
fn train_and_serve_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let (store, clip) = (dir.path().join("s.sqlite"), dir.path().join("clip"));
    write_random_checkpoint(&clip, &ClipShape { max_positions: 32, ..ClipShape::tiny() }, 11).unwrap();
    warmstart(&store).args(["ingest", "amazon-art-office"]).arg(subset(dir.path())).assert().success();
    warmstart(&store)
        .env("WARMSTART_CLIP_DIR", &clip)
        .args(["embed", "--model", "clip", "--dataset", "amazon-art-office"])
        .assert()
        .success();
    let mut manifests = HashMap::new();
    for model in MODELS {
        let out = warmstart(&store)
            .args(["--json", "train", model, "--dataset", "amazon-art-office", "--vectors", "clip/text"])
            .output()
            .unwrap();
        assert!(out.status.success(), "train {model}: {}", String::from_utf8_lossy(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        manifests.insert(model, v);
    }
    // a manifest says what was trained and what that very fit scored
    let knn = &manifests["itemknn"]["manifest"];
    assert_eq!(knn["version"], 1);
    assert_eq!(knn["items"], 38_396);
    let tasks = knn["evaluation"]["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 2, "{knn}");
    assert!(tasks.iter().all(|t| t["cases"].as_u64().unwrap() > 10 && t["metrics"]["ndcg@10"].as_f64().unwrap() > 0.0));
    assert!(manifests["als"]["manifest"]["index"].as_array().unwrap().len() == 2, "ALS indexes per site");
    // training again publishes a new version beside the old one
    let again = warmstart(&store).args(["--json", "train", "pop", "--dataset", "amazon-art-office"]).output().unwrap();
    let again: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(again["manifest"]["version"], 2);
    // a bad model name or parameter fails before any work
    let bad = warmstart(&store).args(["train", "knn"]).output().unwrap();
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("knn"));

    let server = start(&store, &clip, dir.path());
    let addr = server.addr.as_str();
    assert_eq!(http(addr, "GET", "/healthz", &[], None).status, 200);
    assert_eq!(http(addr, "GET", "/readyz", &[], None).status, 200);
    let sites = http(addr, "GET", "/v1/sites", &[], None).json();
    let office = sites.as_array().unwrap().iter().find(|s| s["site"] == "amazon-office").unwrap();
    assert_eq!(office["models"].as_array().unwrap().len(), MODELS.len());
    assert!(office["models"].as_array().unwrap().iter().any(|m| m["default"] == true));

    // a user's Art history, by known product ids
    let art_ids: Vec<String> = (0..20).map(|i| (i * 37).to_string()).collect();
    let history: Vec<Value> =
        art_ids.iter().map(|id| json!({"site": "amazon-art", "id": id, "kind": "purchase"})).collect();
    for model in MODELS {
        let r =
            post(addr, "/v1/recommend", &json!({"site": "amazon-office", "history": history, "k": 10, "model": model}));
        assert_eq!(r.status, 200, "{model}: {}", String::from_utf8_lossy(&r.body));
        let v = r.json();
        assert_eq!(v["items"].as_array().unwrap().len(), 10, "{model}: {v}");
        assert_eq!(v["model"], model);
        assert_eq!(v["recommendation_id"].as_str().unwrap().len(), 32);
        assert_eq!(v["history"]["known"], 20);
        let scores: Vec<f64> = v["items"].as_array().unwrap().iter().map(|i| i["score"].as_f64().unwrap()).collect();
        assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{model}: best first {scores:?}");
        // models with item vectors retrieve from the ANN index and find what exact scoring finds
        if !["pop", "itemknn"].contains(&model) {
            assert_eq!(v["retrieval"], "ann", "{model}");
            let exact = post(
                addr,
                "/v1/recommend",
                &json!({"site": "amazon-office", "history": history, "k": 10, "model": model, "exact": true}),
            )
            .json();
            let ids = |v: &Value| -> Vec<String> {
                v["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_string()).collect()
            };
            let (ann, exact) = (ids(&v), ids(&exact));
            let overlap = ann.iter().filter(|i| exact.contains(i)).count();
            assert!(overlap >= 8, "{model}: ANN recall@10 {overlap}/10");
        }
    }
    // the neural models' artifacts carry their own per-site indexes
    for model in ["bpr", "two-tower:epochs=1", "graphsage:epochs=1"] {
        assert_eq!(manifests[model]["manifest"]["index"].as_array().unwrap().len(), 2, "{model}");
    }
    // item-kNN explains with a product of the history
    let r =
        post(addr, "/v1/recommend", &json!({"site": "amazon-office", "history": history, "model": "itemknn"})).json();
    let why = &r["items"][0]["explanation"];
    assert!(why["text"].as_str().unwrap().starts_with("because you bought"), "{why}");
    assert!(art_ids.contains(&why["because_of"]["id"].as_str().unwrap().to_string()));

    // parity: the server's exact answer is the library's ranking of the same fitted artifact
    let art_dir = PathBuf::from(manifests["als"]["dir"].as_str().unwrap());
    let als = warmstart_models::load(&art_dir.join("model"), None).unwrap();
    let st = warmstart_store::Store::open(&store).unwrap();
    let d = st.load_dataset(Some("amazon-art-office")).unwrap();
    let office_range = d.sites[d.site_by_key("amazon-office").unwrap() as usize].items.clone();
    let art = d.site_by_key("amazon-art").unwrap();
    let item = |id: &str| d.products.iter().position(|p| p.site == art && p.external_id == id).unwrap() as u32;
    let hist: Vec<(u32, f32)> = art_ids.iter().map(|id| (item(id), 1.0)).collect();
    let top = als.recommend(&hist, office_range.clone(), 10, &[]).unwrap();
    let expected: Vec<String> = top.iter().map(|(i, _)| d.products[*i as usize].external_id.clone()).collect();
    let r = post(
        addr,
        "/v1/recommend",
        &json!({"site": "amazon-office", "history": history, "model": "als", "exact": true}),
    );
    let got: Vec<String> =
        r.json()["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().into()).collect();
    assert_eq!(got, expected, "server and library agree");
    // the ANN path finds (nearly) the same list
    let r = post(addr, "/v1/recommend", &json!({"site": "amazon-office", "history": history, "model": "als"})).json();
    assert_eq!(r["retrieval"], "ann");
    let ann: Vec<String> = r["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().into()).collect();
    let overlap = ann.iter().filter(|i| expected.contains(i)).count();
    assert!(overlap >= 8, "ANN recall@10 {overlap}/10");

    // unknown products: by metadata (embedded on the fly) and by unknown id (counted)
    let r = post(
        addr,
        "/v1/recommend",
        &json!({"site": "amazon-office", "model": "content", "history": [
            {"product": {"title": "acrylic paint set with brushes", "brand": "Artist's Loft", "category": ["Arts", "Painting"]}, "kind": "cart"},
            {"site": "amazon-art", "id": "no-such-product"},
        ]}),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!((v["history"]["embedded"].as_u64(), v["history"]["unknown"].as_u64()), (Some(1), Some(1)), "{v}");
    assert!(v["items"][0]["explanation"]["text"].as_str().unwrap().contains("acrylic paint set"), "{v}");
    // filters and diversity
    let r = post(
        addr,
        "/v1/recommend",
        &json!({"site": "amazon-office", "history": history, "model": "content",
        "filters": {"category": "office products"}, "diversity": 0.5, "k": 5}),
    );
    assert_eq!(r.status, 200);
    for item in r.json()["items"].as_array().unwrap() {
        assert!(item["category"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c.as_str().unwrap().eq_ignore_ascii_case("office products")));
    }
    // exclusions are respected
    let first =
        post(addr, "/v1/recommend", &json!({"site": "amazon-office", "history": history, "model": "itemknn"})).json();
    let first_id = first["items"][0]["id"].clone();
    let r = post(
        addr,
        "/v1/recommend",
        &json!({"site": "amazon-office", "history": history, "model": "itemknn", "exclude": [first_id]}),
    )
    .json();
    assert!(r["items"].as_array().unwrap().iter().all(|i| i["id"] != first_id));

    // embed, vectors, profile requests
    let e = post(addr, "/v1/embed", &json!({"products": [{"title": "stapler"}, {"title": "glue stick"}]}));
    assert_eq!(e.status, 200);
    let e = e.json();
    let dim = e["dim"].as_u64().unwrap() as usize;
    assert_eq!(e["vectors"].as_array().unwrap().len(), 2);
    let v = http(addr, "GET", "/v1/sites/amazon-office/vectors?dtype=f16", &[], None);
    assert_eq!(v.status, 200);
    assert_eq!(&v.body[..8], b"WSVEC001");
    let n = u32::from_le_bytes(v.body[12..16].try_into().unwrap()) as usize;
    assert_eq!(u32::from_le_bytes(v.body[8..12].try_into().unwrap()) as usize, dim);
    assert!(n > 19_000, "{n} vectors");
    let etag = v.headers["etag"].clone();
    assert_eq!(
        http(addr, "GET", "/v1/sites/amazon-office/vectors?dtype=f16", &[("If-None-Match", &etag)], None).status,
        304
    );
    // the public catalog of the same rows, and item-kNN's neighbour lists for a device
    let decoded = warmstart_scoring::SiteVectors::decode(&v.body).unwrap();
    let cat = http(addr, "GET", "/v1/sites/amazon-office/catalog", &[], None);
    assert_eq!(cat.status, 200);
    let cat_etag = cat.headers["etag"].clone();
    let cat = cat.json();
    let ids: Vec<&str> = cat["products"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(ids, decoded.ids.iter().map(String::as_str).collect::<Vec<_>>(), "catalog rows = vector rows");
    assert!(cat["products"][0]["title"].as_str().is_some_and(|t| !t.is_empty()));
    let cached = http(addr, "GET", "/v1/sites/amazon-office/catalog", &[("If-None-Match", &cat_etag)], None);
    assert_eq!(cached.status, 304);
    let nb = http(addr, "GET", "/v1/sites/amazon-office/neighbours?model=itemknn", &[], None);
    assert_eq!(nb.status, 200, "{}", String::from_utf8_lossy(&nb.body));
    let lists = warmstart_scoring::NeighbourLists::decode(&nb.body).unwrap();
    assert!(lists.sources.iter().all(|(s, _)| s == "amazon-art"), "only the other shop's products are sources");
    assert!(lists.sources.len() > 1000 && lists.targets.len() > 1000, "{} sources", lists.sources.len());
    for (code, path) in [
        (400, "/v1/sites/amazon-office/neighbours?model=als"),
        (404, "/v1/sites/amazon-office/neighbours?model=nope"),
        (400, "/v1/sites/amazon-office/neighbours"),
        (404, "/v1/sites/nowhere/neighbours?model=itemknn"),
        (404, "/v1/sites/nowhere/catalog"),
    ] {
        let r = http(addr, "GET", path, &[], None);
        assert_eq!(r.status, code, "{path}: {}", String::from_utf8_lossy(&r.body));
        assert!(r.json()["error"]["code"].is_string(), "{path}");
    }
    // the device engine ranks from these downloads exactly as the service does
    let mut device = warmstart_device::Device::new();
    device.load_neighbours("amazon-office", &nb.body).unwrap();
    let bought: Vec<Value> =
        lists.sources.iter().take(3).map(|(s, i)| json!({"site": s, "id": i, "kind": "purchase"})).collect();
    let served = post(
        addr,
        "/v1/recommend",
        &json!({"site": "amazon-office", "model": "itemknn", "k": 10, "exact": true, "history": bought}),
    )
    .json();
    let req: warmstart_device::RankRequest = serde_json::from_value(json!({"target": "amazon-office", "model": "neighbours", "k": 10,
        "history": lists.sources.iter().take(3).map(|(s, i)| json!({"site": s, "id": i, "weight": 1.0})).collect::<Vec<_>>()})).unwrap();
    let on_device: Vec<String> = device.rank(&req).unwrap().items.into_iter().map(|i| i.id).collect();
    let on_server: Vec<String> =
        served["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(on_device, on_server);

    let profile: Vec<f64> = e["vectors"][0].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    let r = post(addr, "/v1/recommend", &json!({"site": "amazon-office", "profile": profile, "model": "content"}));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));

    // similar items, across shops too
    let sim = http(addr, "GET", "/v1/sites/amazon-art/products/37/similar?k=5&target=amazon-office", &[], None);
    assert_eq!(sim.status, 200, "{}", String::from_utf8_lossy(&sim.body));
    assert_eq!(sim.json()["items"].as_array().unwrap().len(), 5);
    let sim = http(addr, "GET", "/v1/sites/amazon-office/products/18644/similar?k=3&model=als", &[], None);
    assert_eq!(sim.status, 200, "{}", String::from_utf8_lossy(&sim.body));

    // catalog writes: key required; an upsert is searchable at once; a delete hides it
    let product = json!({"products": [{"id": "new-1", "title": "ergonomic walnut desk organizer", "price": "$24.99", "category": ["Office Products", "Desk Accessories"]}]});
    let body = product.to_string();
    assert_eq!(http(addr, "PUT", "/v1/sites/amazon-office/products", &[], Some(body.as_bytes())).status, 401);
    assert_eq!(
        http(addr, "PUT", "/v1/sites/amazon-office/products", &[("X-Api-Key", "wrong")], Some(body.as_bytes())).status,
        401
    );
    let auth = [("Authorization", "Bearer sekret")];
    let up = http(addr, "PUT", "/v1/sites/amazon-office/products", &auth, Some(body.as_bytes()));
    assert_eq!(up.status, 200, "{}", String::from_utf8_lossy(&up.body));
    assert_eq!(up.json()["inserted"], 1);
    let r = post(addr, "/v1/recommend", &json!({"site": "amazon-office", "model": "content", "k": 3,
        "history": [{"product": {"title": "ergonomic walnut desk organizer", "category": ["Office Products", "Desk Accessories"]}}]})).json();
    assert_eq!(r["items"][0]["id"], "new-1", "{r}");
    assert_eq!(r["items"][0]["price_usd"], 24.99);
    let sim = http(addr, "GET", "/v1/sites/amazon-office/products/new-1/similar?k=3", &[], None);
    assert_eq!(sim.status, 200);
    let del = json!({"ids": ["new-1", "missing"]}).to_string();
    let d = http(addr, "DELETE", "/v1/sites/amazon-office/products", &auth, Some(del.as_bytes())).json();
    assert_eq!((d["removed"].as_u64(), d["not_found"].as_u64()), (Some(1), Some(1)));
    let r = post(
        addr,
        "/v1/recommend",
        &json!({"site": "amazon-office", "model": "content", "k": 3,
        "history": [{"product": {"title": "ergonomic walnut desk organizer"}}]}),
    )
    .json();
    assert!(r["items"].as_array().unwrap().iter().all(|i| i["id"] != "new-1"));

    // bad input: a JSON error with a 4xx status, never a panic
    let bad: Vec<(Value, u16, &str)> = vec![
        (json!({"site": "nope", "history": history}), 404, "site"),
        (json!({"site": "amazon-office", "history": history, "model": "nope"}), 404, "model"),
        (json!({"site": "amazon-office", "history": history, "k": 0}), 400, "k"),
        (json!({"site": "amazon-office", "history": history, "k": 100000}), 400, "k"),
        (json!({"site": "amazon-office"}), 400, "history"),
        (json!({"site": "amazon-office", "profile": vec![0.1; dim + 1], "model": "content"}), 400, "profile"),
        (json!({"site": "amazon-office", "profile": vec![0.0; dim], "model": "content"}), 400, "profile"),
        (json!({"site": "amazon-office", "profile": vec![0.1; dim], "model": "als"}), 400, "model"),
        (json!({"site": "amazon-office", "history": history, "diversity": 2}), 400, "diversity"),
        (
            json!({"site": "amazon-office", "history": history, "filters": {"min_price": 5, "max_price": 1}}),
            400,
            "filters",
        ),
        (json!({"site": "amazon-office", "history": history, "colour": "red"}), 400, "colour"),
        (json!({"site": "amazon-office", "history": [{"kind": "view"}]}), 400, "history[0]"),
        (json!({"site": "amazon-office", "history": [{"site": "amazon-art", "id": "1", "rating": 9}]}), 400, "rating"),
        (
            json!({"site": "amazon-office", "history": vec![json!({"site": "amazon-art", "id": "1"}); 501]}),
            400,
            "history",
        ),
    ];
    for (body, status, word) in bad {
        let r = post(addr, "/v1/recommend", &body);
        assert_eq!(r.status, status, "{body}: {}", String::from_utf8_lossy(&r.body));
        let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(msg.contains(word), "{body}: {msg}");
    }
    // a profile with NaN cannot even be written in JSON; malformed JSON, wrong types, huge bodies
    let r = http(addr, "POST", "/v1/recommend", &[], Some(b"{\"site\": "));
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], "bad_request");
    let r = http(addr, "POST", "/v1/recommend", &[], Some(br#"{"site": "amazon-office", "profile": [1, "x"]}"#));
    assert_eq!(r.status, 400);
    let huge = format!("{{\"site\": \"amazon-office\", \"history\": [], \"pad\": \"{}\"}}", "x".repeat(100_000));
    let r = http(addr, "POST", "/v1/recommend", &[], Some(huge.as_bytes()));
    assert_eq!(r.status, 413, "{}", String::from_utf8_lossy(&r.body));
    let r = http(addr, "POST", "/v1/recommend", &[("Content-Type", "text/plain")], Some(b"{}"));
    assert_eq!(r.status, 415);
    // JSON nested 30,000 deep (under the body limit): refused by the parser's depth limit, and
    // the server lives on
    let deep = format!("{{\"site\": \"amazon-office\", \"history\": {}{}}}", "[".repeat(30_000), "]".repeat(30_000));
    let r = http(addr, "POST", "/v1/recommend", &[], Some(deep.as_bytes()));
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(http(addr, "GET", "/healthz", &[], None).status, 200);
    assert_eq!(http(addr, "GET", "/v1/sites/amazon-office/products/none/similar", &[], None).status, 404);
    assert_eq!(http(addr, "GET", "/v1/sites/amazon-office/products/18644/similar?k=0", &[], None).status, 400);
    assert_eq!(http(addr, "GET", "/v1/sites/amazon-office/products/18644/similar?colour=red", &[], None).status, 400);
    assert_eq!(http(addr, "GET", "/v1/sites/amazon-office/vectors?dtype=f64", &[], None).status, 400);
    assert_eq!(http(addr, "GET", "/v1/sites/..%2F..%2Fetc/vectors", &[], None).status, 404);
    assert_eq!(post(addr, "/v1/embed", &json!({"products": []})).status, 400);
    let bad_price = json!({"products": [{"id": "x", "title": "t", "price": "abc"}]}).to_string();
    let r = http(addr, "PUT", "/v1/sites/amazon-office/products", &auth, Some(bad_price.as_bytes()));
    assert_eq!(r.status, 400);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("products[0].price"));
    let r = http(addr, "GET", "/v1/nothing", &[], None);
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (404, Some("no_route")));
    assert_eq!(http(addr, "GET", "/v1/recommend", &[], None).status, 405);

    // the OpenAPI document lists exactly the routes the server answers
    let spec = http(addr, "GET", "/openapi.json", &[], None).json();
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.push((method.clone(), path.clone()));
        }
    }
    documented.sort();
    let mut routes: Vec<(String, String)> =
        warmstart_server::ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    routes.sort();
    assert_eq!(documented, routes);
    for (method, path) in &routes {
        let concrete = path.replace("{site}", "amazon-office").replace("{id}", "18644");
        let r = http(addr, &method.to_uppercase(), &concrete, &[], Some(b"{}"));
        assert!(
            r.status != 405 && !(r.status == 404 && r.body.windows(8).any(|w| w == b"no_route")),
            "{method} {path}: {}",
            r.status
        );
    }
    // metrics: per-route counts and latency by model; logs never hold a history
    let m = String::from_utf8(http(addr, "GET", "/metrics", &[], None).body).unwrap();
    assert!(m.contains("warmstart_requests_total{route=\"/v1/recommend\",method=\"POST\",status=\"200\"}"), "{m}");
    assert!(m.contains("warmstart_request_seconds_bucket{route=\"/v1/recommend\",model=\"als\""));
    assert!(m.contains("warmstart_history_unknown_products_total"));
    assert!(m.contains("warmstart_index_vectors{site=\"amazon-office\"}"));
    drop(server);
    let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap();
    assert!(log.contains("\"route\":\"/v1/recommend\""));
    assert!(!log.contains("acrylic paint") && !log.contains("walnut"), "no titles of a history in the log");

    // a restart memory-maps the content indexes instead of rebuilding them
    let server = start(&store, &clip, dir.path());
    let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap();
    assert!(log.contains("0 built"), "{log}");
    let r = post(
        &server.addr,
        "/v1/recommend",
        &json!({"site": "amazon-office", "history": history, "model": "als", "exact": true}),
    );
    let again: Vec<String> =
        r.json()["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().into()).collect();
    assert_eq!(again, expected);
    drop(server);

    // floods: a per-address limit answers 429 with Retry-After; health checks stay exempt;
    // rejected API keys are limited per address, and writes per key
    let server = start_with(
        &store,
        &clip,
        dir.path(),
        &["--rate-limit", "5", "--write-rate-limit", "2", "--header-timeout", "1"],
    );
    let addr = server.addr.as_str();
    // a slow client trickling its request head is disconnected after the header timeout
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    slow.write_all(b"POST /v1/recommend HTTP/1.1\r\nHost: x\r\n").unwrap();
    let t = Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    let _ = slow.write_all(b"X-Slow: 1\r\n");
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    assert!(t.elapsed() < Duration::from_secs(5), "the slow client was cut off ({:?})", t.elapsed());
    assert!(!String::from_utf8_lossy(&rest).contains("200 OK"));
    let statuses: Vec<u16> = (0..40).map(|_| http(addr, "GET", "/v1/sites", &[], None).status).collect();
    assert!(statuses[..10].iter().all(|&s| s == 200), "a burst of 2x the rate passes: {statuses:?}");
    assert!(statuses.iter().filter(|&&s| s == 429).count() >= 20, "{statuses:?}");
    let limited = http(addr, "GET", "/v1/sites", &[], None);
    assert_eq!(limited.status, 429);
    assert!(limited.headers.get("retry-after").is_some_and(|v| v.parse::<u64>().unwrap() >= 1));
    assert_eq!(limited.json()["error"]["code"], "rate_limited");
    assert_eq!(http(addr, "GET", "/healthz", &[], None).status, 200);
    assert_eq!(http(addr, "GET", "/metrics", &[], None).status, 200);
    drop(server);
    // writes per API key: a burst of 2 at `--write-rate-limit 1`
    let server = start_with(&store, &clip, dir.path(), &["--write-rate-limit", "1"]);
    let addr = server.addr.as_str();
    let body = serde_json::to_vec(&json!({"ids": ["no-such-id"]})).unwrap();
    let delete = |key: &str| {
        let auth = format!("Bearer {key}");
        let headers = [("authorization", auth.as_str()), ("content-type", "application/json")];
        http(addr, "DELETE", "/v1/sites/amazon-office/products", &headers, Some(&body)).status
    };
    let statuses: Vec<u16> = (0..3).map(|_| delete("sekret")).collect();
    assert_eq!(statuses, vec![200, 200, 429]);
    drop(server);
    // guessing keys: 10 rejections per address, then 429 for that address, the right key too
    let server = start_with(&store, &clip, dir.path(), &[]);
    let addr = server.addr.as_str();
    let delete = |key: &str| {
        let auth = format!("Bearer {key}");
        let headers = [("authorization", auth.as_str()), ("content-type", "application/json")];
        http(addr, "DELETE", "/v1/sites/amazon-office/products", &headers, Some(&body)).status
    };
    let statuses: Vec<u16> = (0..14).map(|n| delete(&format!("guess{n}"))).collect();
    assert_eq!(&statuses[..10], &[401; 10], "{statuses:?}");
    assert_eq!(&statuses[10..], &[429; 4], "{statuses:?}");
    assert_eq!(delete("sekret"), 429);
    assert_eq!(http(addr, "GET", "/v1/sites", &[], None).status, 200, "reads are not locked out");
}
