//! Bad input never panics and never half-writes the store: each case gives a clear error
//! (store unchanged) or a counted skip naming file and line.

mod common;
use common::*;

use std::io::Write;
use std::path::{Path, PathBuf};

struct Env {
    _dir: tempfile::TempDir,
    root: PathBuf,
    store: PathBuf,
}

/// A store seeded with a small good import.
fn seeded() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let store = root.join("store.sqlite");
    let good = root.join("good.jsonl");
    std::fs::write(
        &good,
        r#"{"site":"shop","id":"1","title":"Red tee","price":"$10.00"}
{"site":"shop","id":"2","title":"Blue tee","category":"Apparel > Topwear"}
{"user":"u1","site":"shop","product":"1","kind":"purchase","timestamp":"2024-01-02"}
"#,
    )
    .unwrap();
    warmstart(&store).args(["ingest", "jsonl"]).arg(&good).assert().success();
    Env { _dir: dir, root, store }
}

fn totals(store: &Path) -> serde_json::Value {
    let mut t = stats(store)["totals"].clone();
    t.as_object_mut().unwrap().remove("imports");
    t
}

/// Runs an ingest that must fail; returns stderr and checks the store did not change.
fn must_fail(env: &Env, args: &[&str], path: &Path) -> String {
    let before = totals(&env.store);
    let out = warmstart(&env.store).arg("ingest").args(args).arg(path).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "expected failure, got success; stderr: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    assert_eq!(before, totals(&env.store), "store changed after a failed import");
    err
}

/// Runs an ingest that must succeed; returns its JSON report.
fn must_pass(env: &Env, args: &[&str], path: &Path) -> serde_json::Value {
    let out = warmstart(&env.store).args(["--json", "ingest"]).args(args).arg(path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn png_bytes(w: u32, h: u32, gray: bool) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    if gray {
        image::GrayImage::from_pixel(w, h, image::Luma([128])).write_to(&mut buf, image::ImageFormat::Png).unwrap();
    } else {
        image::RgbImage::from_pixel(w, h, image::Rgb([200, 10, 10]))
            .write_to(&mut buf, image::ImageFormat::Png)
            .unwrap();
    }
    buf.into_inner()
}

fn fashion_dir(root: &Path, images: &[(&str, Vec<u8>)]) -> PathBuf {
    let dir = root.join("fashion");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("styles.csv"),
        "id,gender,masterCategory,subCategory,baseColour,season,usage,productDisplayName,,\n\
         1,Men,Apparel,Topwear,Red,Summer,Casual,Puma Men Red Tee,,\n\
         2,Women,Footwear,Shoes,Grey,Winter,Casual,Bata Women Grey Shoes,,\n\
         3,Women,Apparel,Topwear,Blue,Fall,Casual,\"Nike Women's 3.5\"\" Blue Short\",,\n",
    )
    .unwrap();
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(dir.join("images.tar.gz")).unwrap(),
        flate2::Compression::default(),
    );
    let mut tar = tar::Builder::new(gz);
    for (name, bytes) in images {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, format!("images/{name}"), &bytes[..]).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap();
    dir
}

#[test]
fn corrupt_grayscale_odd_sized_and_orphan_images_are_counted() {
    let env = seeded();
    let dir = fashion_dir(
        &env.root,
        &[
            ("1.jpg", png_bytes(60, 80, false)),
            ("2.jpg", b"\xff\xd8 this is not a jpeg".to_vec()),
            ("3.jpg", png_bytes(7, 3, true)),
            ("99.jpg", png_bytes(2, 2, false)),
        ],
    );
    let v = must_pass(&env, &["fashion-products"], &dir);
    assert_eq!(v["report"]["products"], 3);
    assert_eq!(v["report"]["fields_dropped"]["image: corrupt image"], 1);
    assert_eq!(v["report"]["fields_dropped"]["image: no catalog row"], 1);
    let st = stats(&env.store);
    assert_eq!(site(&st, "fashion")["products_with_image"], 2);
    let examples = v["report"]["examples"].to_string();
    assert!(examples.contains("images/2.jpg"), "{examples}");
}

#[test]
fn truncated_archive_is_an_error_and_store_is_unchanged() {
    let env = seeded();
    let imgs: Vec<(String, Vec<u8>)> = (1..=3).map(|i| (format!("{i}.jpg"), png_bytes(300, 300, false))).collect();
    let imgs: Vec<(&str, Vec<u8>)> = imgs.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    let dir = fashion_dir(&env.root, &imgs);
    let gz = dir.join("images.tar.gz");
    let bytes = std::fs::read(&gz).unwrap();
    std::fs::write(&gz, &bytes[..bytes.len() / 2]).unwrap();
    let err = must_fail(&env, &["fashion-products"], &dir);
    assert!(err.contains("images.tar.gz") && err.contains("truncated"), "{err}");
}

#[test]
fn wrong_column_counts_and_invalid_utf8_are_counted_skips_with_lines() {
    let env = seeded();
    let path = env.root.join("cat.csv");
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(
        b"id,title,price,currency\n10,Lamp,12.50,EUR\n11,Chair\n12,Caf\xe9 table,99,EUR\n13,Desk,\"1.299,00\",EUR\n",
    )
    .unwrap();
    drop(f);
    let v = must_pass(&env, &["csv", "--site", "furniture"], &path);
    let r = &v["report"];
    assert_eq!((r["rows_read"].as_i64(), r["rows_imported"].as_i64()), (Some(4), Some(2)));
    assert_eq!(r["rows_skipped"]["wrong column count"], 1);
    assert_eq!(r["rows_skipped"]["invalid UTF-8"], 1);
    let ex = r["examples"].as_array().unwrap();
    assert!(
        ex.iter().any(|e| e["line"] == 3 && e["reason"].as_str().unwrap().contains("expected 4 columns, found 2")),
        "{ex:?}"
    );
    assert!(ex.iter().any(|e| e["line"] == 4), "{ex:?}");
    // strict mode names file and line, and writes nothing
    let err = must_fail(&env, &["csv", "--site", "furniture2", "--strict"], &path);
    assert!(err.contains("cat.csv:3") && err.contains("expected 4 columns"), "{err}");
}

#[test]
fn absurd_prices_are_dropped_and_counted() {
    let env = seeded();
    let path = env.root.join("p.jsonl");
    std::fs::write(
        &path,
        "{\"site\":\"s\",\"id\":\"a\",\"title\":\"A\",\"price\":\"-5 USD\"}\n{\"site\":\"s\",\"id\":\"b\",\"title\":\"B\",\"price\":\"$999,999,999,999\"}\n{\"site\":\"s\",\"id\":\"c\",\"title\":\"C\",\"price\":\"1.299,00 €\"}\nnot json\n",
    )
    .unwrap();
    let v = must_pass(&env, &["jsonl"], &path);
    assert_eq!(v["report"]["products"], 3);
    assert_eq!(v["report"]["fields_dropped"]["price: absurd price"], 2);
    assert_eq!(v["report"]["rows_skipped"]["invalid JSON"], 1);
    let st = stats(&env.store);
    assert!((site(&st, "s")["missing"]["price"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-9);
}

#[test]
fn html_without_product_markup_is_an_error() {
    let env = seeded();
    let page = env.root.join("about.html");
    std::fs::write(&page, "<html><head><title>About us</title></head><body><p>We sell things.</p></body></html>")
        .unwrap();
    let err = must_fail(&env, &["html"], &page);
    assert!(err.contains("about.html") && err.contains("no product markup"), "{err}");
    // a directory with one good page and one bad page: the bad one is a counted skip
    let dir = env.root.join("pages");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(&page, dir.join("about.html")).unwrap();
    std::fs::write(
        dir.join("lamp.html"),
        r#"<script type="application/ld+json">{"@type":"Product","name":"Lamp","sku":"L1","offers":{"price":"49.00","priceCurrency":"USD"}}</script>"#,
    )
    .unwrap();
    let v = must_pass(&env, &["html", "--site", "lamps"], &dir);
    assert_eq!(v["report"]["products"], 1);
    assert_eq!(v["report"]["rows_skipped"]["no product markup"], 1);
}

#[test]
fn empty_and_missing_files_are_errors() {
    let env = seeded();
    let empty = env.root.join("empty.csv");
    std::fs::write(&empty, "").unwrap();
    let err = must_fail(&env, &["csv", "--site", "x"], &empty);
    assert!(err.contains("empty.csv") && err.contains("empty"), "{err}");
    let err = must_fail(&env, &["jsonl"], &empty);
    assert!(err.contains("empty"), "{err}");
    let err = must_fail(&env, &["amazon-art-office"], &env.root.join("nowhere"));
    assert!(err.contains("nowhere"), "{err}");
    let header_only = env.root.join("h.csv");
    std::fs::write(&header_only, "name,cost\nLamp,3\n").unwrap();
    let err = must_fail(&env, &["csv", "--site", "x"], &header_only);
    assert!(err.contains("h.csv") && err.contains("`id`"), "{err}");
    let err = must_fail(&env, &["csv", "--site", "x", "--map", "id=sku"], &header_only);
    assert!(err.contains("`sku`"), "{err}");
}

#[test]
fn a_killed_import_leaves_the_store_as_it_was() {
    let env = seeded();
    // A large interaction log so that the write transaction runs for a while.
    let path = env.root.join("big.jsonl");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for p in 0..20_000 {
        writeln!(f, r#"{{"site":"big","id":"{p}","title":"Product {p} with a reasonably long title"}}"#).unwrap();
    }
    for i in 0..400_000u32 {
        writeln!(
            f,
            r#"{{"user":"u{}","site":"big","product":"{}","kind":"view","seq":{i}}}"#,
            i % 5000,
            (i * 7919) % 20_000
        )
        .unwrap();
    }
    drop(f);
    let before = totals(&env.store);
    let wal = PathBuf::from(format!("{}-wal", env.store.display()));
    let bin = assert_cmd::cargo::cargo_bin("warmstart");
    let mut child = std::process::Command::new(bin)
        .arg("--store")
        .arg(&env.store)
        .args(["ingest", "jsonl"])
        .arg(&path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the transaction has spilled pages into the write-ahead log, then kill -9.
    let start = std::time::Instant::now();
    let mut killed_mid_write = false;
    while start.elapsed() < std::time::Duration::from_secs(120) {
        if std::fs::metadata(&wal).map(|m| m.len() > 1 << 20).unwrap_or(false) {
            child.kill().unwrap();
            killed_mid_write = true;
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let _ = child.wait();
    assert!(killed_mid_write, "the import finished before it could be killed mid-write");
    assert_eq!(before, totals(&env.store), "a killed import left rows behind");
}

#[test]
fn a_file_that_is_not_a_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("notes.txt");
    std::fs::write(&store, "shopping list: milk, eggs, and a long enough line of text to look like a file").unwrap();
    let out = warmstart(&store).arg("stats").output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("notes.txt") && err.contains("not a warmstart store"), "{err}");
}
