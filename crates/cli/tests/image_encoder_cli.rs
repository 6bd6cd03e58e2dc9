//! `warmstart train image-encoder` and `warmstart personas` end to end on a small fashion
//! catalog dealt into three shops, with a seeded random CLIP checkpoint standing in for a
//! downloaded one (its vision tower is fine-tuned; its text tower gives the frozen text
//! vectors), so no model download is needed.

mod common;

use std::path::{Path, PathBuf};

use common::warmstart;
use warmstart_embed::{write_random_checkpoint, ClipShape};

const COLOURS: [(&str, [u8; 3]); 4] =
    [("Red", [210, 30, 30]), ("Blue", [30, 40, 200]), ("Black", [15, 15, 15]), ("Yellow", [230, 220, 30])];
const KINDS: [(&str, &str, &str); 3] =
    [("Apparel", "Topwear", "Shirt"), ("Footwear", "Shoes", "Shoes"), ("Accessories", "Bags", "Handbag")];

/// 48 products (colour × kind × gender × two patterns) with matching photos, one product
/// without a photo and one with a corrupt one.
fn fashion_dir(root: &Path) -> PathBuf {
    let dir = root.join("fashion");
    std::fs::create_dir_all(&dir).unwrap();
    let mut csv = String::from("id,gender,masterCategory,subCategory,baseColour,season,usage,productDisplayName,,\n");
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(dir.join("images.tar.gz")).unwrap(),
        flate2::Compression::fast(),
    );
    let mut tar = tar::Builder::new(gz);
    let mut id = 100;
    for (colour, rgb) in COLOURS {
        for (master, sub, noun) in KINDS {
            for gender in ["Men", "Women"] {
                for striped in [false, true] {
                    id += 1;
                    let pattern = if striped { "Striped" } else { "Plain" };
                    csv.push_str(&format!(
                        "{id},{gender},{master},{sub},{colour},Summer,Casual,Brand {gender} {colour} {pattern} {noun},,\n"
                    ));
                    let img = image::RgbImage::from_fn(60, 80, |x, _| {
                        let dark = striped && (x / 3) % 2 == 0;
                        image::Rgb(if dark { rgb.map(|c| c / 3) } else { rgb })
                    });
                    let mut buf = std::io::Cursor::new(Vec::new());
                    img.write_to(&mut buf, image::ImageFormat::Jpeg).unwrap();
                    let bytes = if id == 105 { b"\xff\xd8 broken".to_vec() } else { buf.into_inner() };
                    if id == 106 {
                        continue; // no photo
                    }
                    let mut h = tar::Header::new_gnu();
                    h.set_size(bytes.len() as u64);
                    h.set_mode(0o644);
                    h.set_cksum();
                    tar.append_data(&mut h, format!("images/{id}.jpg"), &bytes[..]).unwrap();
                }
            }
        }
    }
    tar.into_inner().unwrap().finish().unwrap();
    std::fs::write(dir.join("styles.csv"), csv).unwrap();
    dir
}

fn json_of(out: std::process::Output) -> serde_json::Value {
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn trains_an_image_encoder_embeds_with_it_and_runs_personas() {
    let root = tempfile::tempdir().unwrap();
    let (home, store, runs) = (root.path().join("home"), root.path().join("s.sqlite"), root.path().join("runs"));
    let clip = root.path().join("clip");
    write_random_checkpoint(&clip, &ClipShape { max_positions: 32, ..ClipShape::tiny() }, 5).unwrap();
    let cmd = || {
        let mut c = warmstart(&store);
        c.env("WARMSTART_HOME", &home).env("WARMSTART_CLIP_DIR", &clip);
        c
    };
    let dir = fashion_dir(root.path());
    json_of(cmd().args(["--json", "ingest", "fashion-products", "--shops", "3"]).arg(&dir).output().unwrap());

    let out = json_of(
        cmd()
            .args(["--json", "train", "image-encoder", "--tower", "clip", "--from", "clip", "--name", "tiny-dual"])
            .args(["--epochs", "3", "--batch", "8", "--held-out", "8", "--dim", "16", "--runs-dir"])
            .arg(&runs)
            .output()
            .unwrap(),
    );
    for dir in ["text_to_image", "image_to_text"] {
        for k in ["recall@1", "recall@10"] {
            let r = out[dir][k].as_f64().unwrap_or(-1.0);
            assert!((0.0..=1.0).contains(&r), "{dir} {k}: {out}");
        }
    }
    assert_eq!(out["random"]["text_to_image"]["recall@10"].as_f64(), Some(1.0), "10 of 8 held out");
    assert_eq!(out["pairs"]["pairs"].as_u64(), Some(46), "one product without a photo, one corrupt: {out}");
    assert_eq!(out["epochs"].as_array().map(|e| e.len()), Some(3));
    let run_dir = PathBuf::from(out["run_dir"].as_str().unwrap());
    for f in ["loss.svg", "loss.png", "recall.svg", "recall.png", "report.json"] {
        assert!(run_dir.join(f).is_file(), "{f} missing in {}", run_dir.display());
    }
    assert!(home.join("models/tiny-dual/model.safetensors").is_file());

    // the trained encoder is a model name for `embed`
    let e = json_of(cmd().args(["--json", "embed", "--model", "tiny-dual", "--batch", "4"]).output().unwrap());
    let parts = e["parts"].as_array().unwrap();
    assert_eq!(parts[0]["model"].as_str(), Some("tiny-dual/text"));
    assert_eq!(parts[1]["model"].as_str(), Some("tiny-dual/image"));
    assert_eq!(parts[1]["embedded"].as_u64(), Some(46));
    // the corrupt photo was dropped (and counted) at ingest: two products have no image
    assert_eq!(parts[1]["skipped"].as_u64(), Some(2));
    assert_eq!(parts[1]["unreadable"].as_u64(), Some(0));

    // personas on the three shops: text, texture, image, fused
    let personas = root.path().join("personas.toml");
    std::fs::write(
        &personas,
        "[[persona]]\nname = \"red-women\"\nvisual = true\nfacets.colour = { Red = 1.0 }\nfacets.gender = { Women = 1.0 }\n\n\
         [[persona]]\nname = \"shoes\"\nfacets.category = { \"Footwear > Shoes\" = 1.0 }\n",
    )
    .unwrap();
    let run_personas = |extra: &[&str]| {
        json_of(
            cmd()
                .args(["--json", "personas", "--text", "clip/text", "--image", "tiny-dual", "--per-persona", "6"])
                .args(["--folds", "3", "--runs-dir"])
                .arg(&runs)
                .arg("--personas")
                .arg(&personas)
                .args(extra)
                .output()
                .unwrap(),
        )
    };
    let p = run_personas(&["--save"]);
    assert_eq!(p["shoppers"].as_u64(), Some(12));
    assert!(p["stored_interactions"].as_u64().unwrap_or(0) >= 12 * 6, "{}", p["stored_interactions"]);
    let rows = p["report"]["rows"].as_array().unwrap();
    let sets: std::collections::BTreeSet<&str> = rows.iter().filter_map(|r| r["vectors"].as_str()).collect();
    for s in ["text", "texture", "image", "image+texture", "fused (text+image+texture)"] {
        assert!(sets.contains(s), "{s} missing: {sets:?}");
    }
    assert!(rows.iter().any(|r| r["persona"] == "all" && r["metrics"]["ndcg@10"]["mean"].as_f64().is_some()));
    // the same seed gives the same table
    let again = run_personas(&[]);
    assert_eq!(p["report"], again["report"]);
    assert!(again["stored_interactions"].is_null(), "saved only when asked");
    let users = common::stats(&store)["totals"]["users"].as_u64().unwrap_or(0);
    assert_eq!(users, 12, "the saved shoppers are users of the store");
    // the two-tower on the saved shoppers: item maps, cluster sizes and a gallery with photos
    let t = json_of(
        cmd()
            .args(["--json", "train", "two-tower", "--dataset", "fashion-products", "--vectors", "tiny-dual/image"])
            .args(["--epochs", "2", "--map-items", "40", "--clusters", "3", "--gallery-users", "4"])
            .args(["--param", "batch=8", "--param", "targets=2", "--runs-dir"])
            .arg(&runs)
            .output()
            .unwrap(),
    );
    let run_dir = PathBuf::from(t["run_dir"].as_str().unwrap());
    for f in ["tsne-clusters.png", "tsne-categories.svg", "tsne-shops.png", "cluster-sizes.svg", "gallery.html"] {
        assert!(run_dir.join(f).is_file(), "{f} missing in {}", run_dir.display());
    }
    let sizes: u64 = t["clusters"]["clusters"].as_array().unwrap().iter().map(|c| c["size"].as_u64().unwrap()).sum();
    assert_eq!(sizes, 48, "every product in one cluster");
    assert_eq!(t["clusters"]["map_items"].as_u64(), Some(40));
    assert_eq!(t["gallery"]["users"].as_u64(), Some(4));
    let html = std::fs::read_to_string(run_dir.join("gallery.html")).unwrap();
    assert_eq!(html.matches("class=\"row\"").count(), 4);
    assert!(html.contains("persona:") && html.contains("data:image/jpeg;base64,"), "persona rows with photos");
    assert!(t["epochs"][0]["train_seconds"].as_f64().is_some());
    // GraphSAGE on the same shoppers: curves, maps and gallery through the shared report
    let g = json_of(
        cmd()
            .args(["--json", "train", "graphsage", "--dataset", "fashion-products", "--vectors", "tiny-dual/image"])
            .args(["--epochs", "2", "--map-items", "40", "--clusters", "3", "--gallery-users", "4"])
            .args(["--param", "batch=8", "--param", "fanouts=4/3", "--param", "hidden=16", "--runs-dir"])
            .arg(&runs)
            .output()
            .unwrap(),
    );
    assert_eq!(g["model"], "graphsage");
    assert!(g["name"].as_str().unwrap().contains("fanouts 4/3"), "{}", g["name"]);
    assert!(g["epochs"].as_array().is_some_and(|e| !e.is_empty() && e[0]["train_seconds"].is_number()));
    let run_dir = PathBuf::from(g["run_dir"].as_str().unwrap());
    for f in ["loss.png", "tsne-shops.png", "cluster-sizes.svg", "gallery.html", "report.json"] {
        assert!(run_dir.join(f).is_file(), "{f} missing in {}", run_dir.display());
    }
    assert_eq!(g["gallery"]["users"].as_u64(), Some(4));
    assert!(PathBuf::from(g["model_dir"].as_str().unwrap()).join("cache.safetensors").is_file());
    let out =
        cmd().args(["train", "graphsage", "--dataset", "fashion-products", "--param", "fanouts=4/x"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("fanouts"), "{err}");

    // cluster analysis of the stored image vectors: photo montage, per-cluster table, patterns
    let a = json_of(
        cmd()
            .args(["--json", "analyze", "clusters", "--embeddings", "tiny-dual/image", "--algo", "kmeans", "--k", "3"])
            .arg("--runs-dir")
            .arg(&runs)
            .output()
            .unwrap(),
    );
    assert_eq!(a["products"].as_u64(), Some(46), "products with an image vector");
    let clusters = a["clusters"].as_array().unwrap();
    assert_eq!(clusters.len(), 3);
    assert_eq!(clusters.iter().map(|c| c["size"].as_u64().unwrap()).sum::<u64>(), 46);
    assert!(clusters.windows(2).all(|w| w[0]["size"].as_u64() >= w[1]["size"].as_u64()), "largest first");
    assert_eq!(a["patterns"]["patterned_items"].as_u64(), Some(23), "the striped half: {}", a["patterns"]);
    assert_eq!(a["photos"].as_u64(), Some(clusters.iter().map(|c| c["size"].as_u64().unwrap().min(12)).sum()));
    let run_dir = PathBuf::from(a["run_dir"].as_str().unwrap());
    let montage = image::open(run_dir.join("montage-clusters.png")).unwrap();
    assert_eq!(montage.height(), 3 * 82, "one row per cluster");
    let report = std::fs::read_to_string(run_dir.join("report.html")).unwrap();
    assert!(report.contains("montage-clusters.png") && report.contains("Striped"), "montage and central titles");
    let out =
        cmd().args(["analyze", "clusters", "--embeddings", "tiny-dual/image", "--reduce", "mds"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--reduce mds"), "{err}");

    // a bad parameter is named
    let out =
        cmd().args(["train", "two-tower", "--dataset", "fashion-products", "--param", "colour=red"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("colour"), "{err}");

    // a bad personas file names itself and the problem
    std::fs::write(&personas, "[[persona]]\nname = \"x\"\nfacets.mood = { calm = 1.0 }\n").unwrap();
    let out = cmd().args(["personas", "--image", "none", "--personas"]).arg(&personas).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("personas.toml") && err.contains("mood"), "{err}");
}
