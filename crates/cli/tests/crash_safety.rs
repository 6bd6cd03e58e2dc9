//! Crash safety: `warmstart ingest`, `embed` and `train` killed with SIGKILL at seeded random
//! moments. After every kill the store is exactly as before or as after the command (never
//! between), every stored vector is whole, every published artifact version is whole and
//! loads, and a rerun completes with the result of an uninterrupted run.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::warmstart;
use warmstart_core::Rng;
use warmstart_embed::{write_random_checkpoint, ClipShape};

/// Kills per command (seeded delays within an uninterrupted run's duration).
const KILLS: u64 = 6;

/// A catalog of two shops and a log of cross-shop interactions, as JSON Lines.
fn write_data(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let mut rng = Rng::new(7);
    let products = dir.join("products.jsonl");
    let mut text = String::new();
    for site in ["crash-a", "crash-b"] {
        for i in 0..2500 {
            let topic = i % 50;
            text.push_str(&format!(
                "{{\"site\":\"{site}\",\"id\":\"{i}\",\"title\":\"{site} item {i} of topic {topic}\",\"category\":\"dept > topic {topic}\",\"price\":{}.5}}\n",
                5 + i % 40
            ));
        }
    }
    std::fs::write(&products, text).unwrap();
    let interactions = dir.join("interactions.jsonl");
    let mut text = String::new();
    for u in 0..3000 {
        let topic = rng.below(50);
        for site in ["crash-a", "crash-b"] {
            for _ in 0..6 {
                let item = topic + 50 * rng.below(50);
                text.push_str(&format!(
                    "{{\"user\":\"u{u}\",\"site\":\"{site}\",\"product\":\"{item}\",\"kind\":\"purchase\",\"timestamp\":{}}}\n",
                    1_600_000_000 + u * 100 + item
                ));
            }
        }
    }
    std::fs::write(&interactions, text).unwrap();
    (products, interactions)
}

/// Runs `args` against `store` to completion; returns how long it took.
fn run(store: &Path, env: &[(&str, &Path)], args: &[&str]) -> Duration {
    let started = Instant::now();
    let mut c = warmstart(store);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    started.elapsed()
}

/// Starts `args` and kills it with SIGKILL after `delay` (or lets it finish first).
fn kill_after(store: &Path, env: &[(&str, &Path)], args: &[&str], delay: Duration) -> bool {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("warmstart"));
    c.arg("--store").arg(store).args(args).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c.spawn().unwrap();
    std::thread::sleep(delay);
    let finished = child.try_wait().unwrap().is_some();
    let _ = child.kill(); // SIGKILL on Unix
    let _ = child.wait();
    !finished
}

/// Where a crash test runs: SQLite files, and PostgreSQL databases when `WARMSTART_TEST_POSTGRES`
/// names a server (each store its own database, dropped with `dbs`).
enum Backend {
    Sqlite,
    Postgres(String),
}

fn backends(test: &str) -> Vec<Backend> {
    let mut out = vec![Backend::Sqlite];
    out.extend(warmstart_store::test_server(test).map(Backend::Postgres));
    out
}

/// A new, empty store of `backend` named `name`.
fn fresh(backend: &Backend, dir: &Path, name: &str, dbs: &mut Vec<warmstart_store::TempDatabase>) -> PathBuf {
    match backend {
        Backend::Sqlite => dir.join(format!("{name}.sqlite")),
        Backend::Postgres(admin) => {
            let db = warmstart_store::TempDatabase::create(admin).unwrap();
            let url = PathBuf::from(db.url());
            dbs.push(db);
            url
        }
    }
}

fn counts(store: &Path) -> [i64; 4] {
    let c = warmstart_store::Store::open(store).unwrap().row_counts().unwrap();
    [c[0], c[1], c[2], c[3]]
}

/// A kill moment within the first 70% of an uninterrupted run's duration (a run under less
/// contention than the measured one still gets killed mid-way).
fn delay(rng: &mut Rng, full: Duration) -> Duration {
    full.mul_f64(0.02 + 0.68 * rng.below(1000) as f64 / 1000.0)
}

#[test]
fn ingest_killed_at_random_moments_is_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (products, interactions) = write_data(dir.path());
    let (p, i) = (products.to_str().unwrap(), interactions.to_str().unwrap());
    // before: the catalog; after: the catalog and the log
    let reference = dir.path().join("reference.sqlite");
    run(&reference, &[], &["ingest", "jsonl", p, "--dataset", "crash"]);
    let before = counts(&reference);
    let full = run(&reference, &[], &["ingest", "jsonl", i, "--dataset", "crash"]);
    let after = counts(&reference);
    assert!(after[3] > 30_000, "{after:?}");
    for backend in backends("ingest_killed_at_random_moments_is_all_or_nothing") {
        let mut dbs = Vec::new();
        // the import's duration on this backend sets the kill moments
        let (name, full) = match &backend {
            Backend::Sqlite => ("sqlite", full),
            Backend::Postgres(_) => {
                let timing = fresh(&backend, dir.path(), "timing", &mut dbs);
                run(&timing, &[], &["ingest", "jsonl", p, "--dataset", "crash"]);
                ("postgres", run(&timing, &[], &["ingest", "jsonl", i, "--dataset", "crash"]))
            }
        };
        let mut rng = Rng::new(42);
        let mut interrupted = 0;
        for n in 0..KILLS {
            let store = fresh(&backend, dir.path(), &format!("s{n}"), &mut dbs);
            run(&store, &[], &["ingest", "jsonl", p, "--dataset", "crash"]);
            interrupted +=
                kill_after(&store, &[], &["ingest", "jsonl", i, "--dataset", "crash"], delay(&mut rng, full)) as usize;
            let now = counts(&store);
            assert!(now == before || now == after, "{name} kill {n}: {now:?} is neither {before:?} nor {after:?}");
            run(&store, &[], &["ingest", "jsonl", i, "--dataset", "crash"]);
            assert_eq!(counts(&store), after, "{name} kill {n}: the rerun completes");
        }
        assert!(interrupted >= KILLS as usize / 2, "{name}: only {interrupted} kills landed mid-run");
    }
}

#[test]
fn embed_killed_at_random_moments_keeps_whole_vectors_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let (products, _) = write_data(dir.path());
    let clip = dir.path().join("clip");
    write_random_checkpoint(&clip, &ClipShape { max_positions: 32, ..ClipShape::tiny() }, 3).unwrap();
    let env = [("WARMSTART_CLIP_DIR", clip.as_path())];
    let embed = ["embed", "--model", "clip", "--dataset", "crash", "--commit-every", "250"];
    let reference = dir.path().join("reference.sqlite");
    run(&reference, &[], &["ingest", "jsonl", products.to_str().unwrap(), "--dataset", "crash"]);
    let full = run(&reference, &env, &embed);
    let load = |store: &Path| {
        warmstart_store::Store::open(store).unwrap().load_item_vectors("clip/text", Some("crash")).unwrap()
    };
    let expected = load(&reference);
    assert_eq!(expected.count_present(), 5000);
    let mut rng = Rng::new(43);
    let mut interrupted = 0;
    for n in 0..KILLS {
        let store = dir.path().join(format!("e{n}.sqlite"));
        run(&store, &[], &["ingest", "jsonl", products.to_str().unwrap(), "--dataset", "crash"]);
        interrupted += kill_after(&store, &env, &embed, delay(&mut rng, full)) as usize;
        // committed batches only: every stored vector is the one an uninterrupted run computes
        // (up to the summation order of differently shaped batches)
        let same = |a: &[f32], b: &[f32]| a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-4);
        let partial = load(&store);
        for item in 0..partial.n_items() as u32 {
            if partial.present[item as usize] {
                assert!(same(partial.row(item), expected.row(item)), "kill {n}: item {item}");
            }
        }
        run(&store, &env, &embed);
        let resumed = load(&store);
        assert_eq!(resumed.count_present(), expected.count_present(), "kill {n}: the rerun completes");
        assert!((0..resumed.n_items() as u32).all(|i| same(resumed.row(i), expected.row(i))), "kill {n}");
    }
    assert!(interrupted >= KILLS as usize / 2, "only {interrupted} kills landed mid-run");
}

#[test]
fn train_killed_at_random_moments_publishes_whole_versions_or_none() {
    let dir = tempfile::tempdir().unwrap();
    let (products, interactions) = write_data(dir.path());
    let store = dir.path().join("s.sqlite");
    run(&store, &[], &["ingest", "jsonl", products.to_str().unwrap(), "--dataset", "crash"]);
    run(&store, &[], &["ingest", "jsonl", interactions.to_str().unwrap(), "--dataset", "crash"]);
    let train = ["train", "als", "--dataset", "crash"];
    let full = run(&store, &[], &train);
    let root = warmstart_app::artifact::root(&warmstart_store::Store::open(&store).unwrap());
    let mut rng = Rng::new(44);
    let mut interrupted = 0;
    for n in 0..KILLS {
        interrupted += kill_after(&store, &[], &train, delay(&mut rng, full)) as usize;
        // every version directory a reader can see is whole: manifest, model, indexes
        let versions = root.join("crash").join("als");
        let mut seen = 0;
        for e in std::fs::read_dir(&versions).unwrap() {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if name.starts_with('.') {
                continue; // an unfinished version, invisible to readers
            }
            let a = warmstart_app::artifact::read(&path).unwrap_or_else(|e| panic!("kill {n}: {name}: {e}"));
            let model = warmstart_models::load(&a.model_dir(), None).unwrap();
            assert_eq!(model.n_items(), 5000);
            for ix in &a.manifest.index {
                warmstart_index::Hnsw::open(&path.join("index").join(&ix.file)).unwrap();
            }
            seen += 1;
        }
        assert!(seen >= 1);
        // the service loads the newest version, and finds no damaged one
        let (latest, bad) = warmstart_app::artifact::latest(&root).unwrap();
        assert!(bad.is_empty(), "kill {n}: {bad:?}");
        assert_eq!(latest.len(), 1);
    }
    assert!(interrupted >= KILLS as usize / 2, "only {interrupted} kills landed mid-run");
    let before = warmstart_app::artifact::latest(&root).unwrap().0[0].manifest.version;
    run(&store, &[], &train);
    assert_eq!(warmstart_app::artifact::latest(&root).unwrap().0[0].manifest.version, before + 1);
}

/// One HTTP/1.1 request that may fail (the server may be gone): the status and the whole
/// response, or `None`.
fn try_request(addr: &str, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: Bearer crash-key\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let raw = String::from_utf8_lossy(&raw).to_string();
    Some((raw.split(' ').nth(1)?.parse().ok()?, raw))
}

/// A `warmstart serve` killed with SIGKILL while it takes catalog upserts and feedback events:
/// every write it acknowledged is in the store afterwards, the write in flight is whole or
/// absent, the store passes its integrity check, and a restarted server serves the
/// acknowledged products. On SQLite, and on PostgreSQL when a server is configured.
#[test]
fn serve_killed_under_writes_loses_no_acknowledged_write() {
    for backend in backends("serve_killed_under_writes_loses_no_acknowledged_write") {
        serve_killed_under_writes(&backend);
    }
}

fn serve_killed_under_writes(backend: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (products, interactions) = write_data(dir.path());
    let mut dbs = Vec::new();
    let store = fresh(backend, dir.path(), "s", &mut dbs);
    // the servers below run with WARMSTART_HOME=dir/home: train where they will look
    let home = dir.path().join("home");
    let env = [("WARMSTART_HOME", home.as_path())];
    run(&store, &env, &["ingest", "jsonl", products.to_str().unwrap(), "--dataset", "crash"]);
    run(&store, &env, &["ingest", "jsonl", interactions.to_str().unwrap(), "--dataset", "crash"]);
    run(&store, &env, &["train", "pop", "--dataset", "crash"]);
    let mut rng = Rng::new(99);
    for round in 0..4u64 {
        let server = common::serve(&store, dir.path(), &[], &["--api-key", "crash-key", "--write-rate-limit", "0"]);
        let addr = server.addr.clone();
        let pid = server.child.id();
        let kill_at = Duration::from_millis(300 + rng.below(1200) as u64);
        let killer = std::thread::spawn(move || {
            std::thread::sleep(kill_at);
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        });
        // acknowledged writes, and the one in flight when the server died
        let (mut acked_products, mut acked_events) = (Vec::new(), Vec::new());
        let mut in_flight: Option<(bool, Vec<String>)> = None;
        for n in 0.. {
            let ids: Vec<String> = (0..10).map(|i| format!("r{round}-b{n}-{i}")).collect();
            let (path, body, products) = if n % 2 == 0 {
                let ps: Vec<String> =
                    ids.iter().map(|id| format!("{{\"id\":\"{id}\",\"title\":\"crash product {id}\"}}")).collect();
                ("/v1/sites/crash-a/products", format!("{{\"products\":[{}]}}", ps.join(",")), true)
            } else {
                let es: Vec<String> = ids
                    .iter()
                    .enumerate()
                    .map(|(i, key)| {
                        format!(
                            "{{\"type\":\"purchase\",\"key\":\"{key}\",\"session\":\"crash-session-{round}\",\"site\":\"crash-b\",\"id\":\"{i}\"}}"
                        )
                    })
                    .collect();
                ("/v1/events", format!("{{\"events\":[{}]}}", es.join(",")), false)
            };
            let method = if products { "PUT" } else { "POST" };
            match try_request(&addr, method, path, &body).map(|r| r.0) {
                Some(200) if products => acked_products.extend(ids),
                Some(200) => acked_events.extend(ids),
                Some(other) => panic!("round {round}: {method} {path} answered {other}"),
                None => {
                    in_flight = Some((products, ids));
                    break;
                }
            }
        }
        killer.join().unwrap();
        drop(server);
        assert!(!acked_products.is_empty() && !acked_events.is_empty(), "round {round}: killed before any write");
        let s = warmstart_store::Store::open(&store).unwrap();
        assert_eq!(s.integrity_check().unwrap(), "ok", "round {round}");
        let rows = s.product_rows("crash-a", &acked_products).unwrap();
        assert!(rows.iter().all(Option::is_some), "round {round}: an acknowledged product is missing");
        for key in &acked_events {
            assert!(s.has_event_key(key).unwrap(), "round {round}: acknowledged event {key} is missing");
        }
        if let Some((products, ids)) = in_flight {
            let present = if products {
                s.product_rows("crash-a", &ids).unwrap().iter().filter(|r| r.is_some()).count()
            } else {
                ids.iter().filter(|k| s.has_event_key(k).unwrap()).count()
            };
            assert!(
                present == 0 || present == ids.len(),
                "round {round}: a write in flight is half stored ({present})"
            );
        }
        drop(s);
        // a restart serves what was acknowledged: taking the products off finds every one
        let server = common::serve(&store, dir.path(), &[], &["--api-key", "crash-key"]);
        for chunk in acked_products.chunks(1000) {
            let ids: Vec<String> = chunk.iter().map(|i| format!("\"{i}\"")).collect();
            let body = format!("{{\"ids\":[{}]}}", ids.join(","));
            let (status, resp) = try_request(&server.addr, "DELETE", "/v1/sites/crash-a/products", &body).unwrap();
            assert!(status == 200 && resp.contains(&format!("\"removed\":{}", chunk.len())), "round {round}: {resp}");
        }
    }
}
