//! `warmstart analyze fashion-mnist` end to end on a synthetic IDX set (three shapes), so the
//! command is tested without the Debian dataset (the test script also runs it on the real one).

mod common;

use std::io::Write;
use std::path::Path;

/// 150 28×28 images of three classes (horizontal bar, vertical bar, square) with noise.
fn write_set(dir: &Path) {
    let n = 150u32;
    let mut rng = warmstart_core::Rng::new(11);
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for i in 0..n {
        let class = (i % 3) as u8;
        for y in 0..28u32 {
            for x in 0..28u32 {
                let on = match class {
                    0 => (12..16).contains(&y) && (4..24).contains(&x),
                    1 => (12..16).contains(&x) && (4..24).contains(&y),
                    _ => (8..20).contains(&x) && (8..20).contains(&y),
                };
                let noise = (rng.unit_f32() * 40.0) as u8;
                pixels.push(if on { 215 + noise } else { noise });
            }
        }
        labels.push(class);
    }
    let gz = |header: Vec<u8>, body: &[u8], path: &Path| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&header).unwrap();
        e.write_all(body).unwrap();
        std::fs::write(path, e.finish().unwrap()).unwrap();
    };
    let mut h = vec![0, 0, 8, 3];
    for d in [n, 28, 28] {
        h.extend(d.to_be_bytes());
    }
    gz(h, &pixels, &dir.join("t10k-images-idx3-ubyte.gz"));
    let mut h = vec![0, 0, 8, 1];
    h.extend(n.to_be_bytes());
    gz(h, &labels, &dir.join("t10k-labels-idx1-ubyte.gz"));
}

#[test]
fn fashion_mnist_reproduction_reports_every_setting_and_a_best_one() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("fm");
    std::fs::create_dir_all(&data).unwrap();
    write_set(&data);
    let runs = root.path().join("runs");
    let export = root.path().join("export");
    let out = common::warmstart(&root.path().join("s.sqlite"))
        .env("WARMSTART_HOME", root.path().join("home"))
        .args([
            "--json",
            "analyze",
            "fashion-mnist",
            "--limit",
            "150",
            "--features",
            "pixels,hog,pixels+hog,texture,no-such-encoder",
        ])
        .arg("--dir")
        .arg(&data)
        .arg("--runs-dir")
        .arg(&runs)
        .arg("--export")
        .arg(&export)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let settings = v["settings"].as_array().unwrap();
    for s in settings {
        for key in ["algorithm", "clusters", "noise_fraction", "nmi", "ari", "silhouette", "features", "reduction"] {
            assert!(s.get(key).is_some(), "{key} missing in {s}");
        }
    }
    let seed_like = settings.iter().filter(|s| s["stage"] == "seed-like").count();
    assert_eq!(seed_like, 8, "DBSCAN and HDBSCAN on each feature set's raw vectors");
    let reductions: std::collections::BTreeSet<&str> =
        settings.iter().filter_map(|s| s["reduction"].as_str()).collect();
    assert_eq!(reductions, ["none", "pca:50", "tsne", "umap:2"].into_iter().collect());
    let hog_dims = settings.iter().filter(|s| s["features"] == "hog" && s["reduction"] == "umap:2").count();
    assert!(hog_dims >= 8, "the UMAP-style space of the HOG features is searched");
    // three clean shapes: the best setting finds them
    let best = &v["best"];
    assert!(best["nmi"].as_f64().unwrap() > 0.9, "{best}");
    assert!(best["noise_fraction"].as_f64().unwrap() < 0.2);
    assert!(v["notes"][0].as_str().unwrap().contains("no-such-encoder"), "missing encoders are skipped with a note");
    let run_dir = Path::new(v["run_dir"].as_str().unwrap());
    for f in
        ["report.html", "results.json", "tsne-classes.png", "tsne-best.svg", "cluster-sizes.png", "montage-best.png"]
    {
        assert!(run_dir.join(f).is_file(), "{f} missing");
    }
    let html = std::fs::read_to_string(run_dir.join("report.html")).unwrap();
    assert!(html.contains("class=\"best\"") && html.contains("montage-best.png"));
    // the export holds what scripts/check_clusters.py reads
    assert!(export.join("hog-umap2").join("vectors.npy").is_file());
    let sub = export.join("pixels-tsne");
    assert!(sub.join("vectors.npy").is_file() && sub.join("labels_0.npy").is_file());
    let config: serde_json::Value = serde_json::from_slice(&std::fs::read(sub.join("config.json")).unwrap()).unwrap();
    assert!(config["runs"].as_array().unwrap().len() >= 8);

    // a missing directory is named
    let out = common::warmstart(&root.path().join("s.sqlite"))
        .args(["analyze", "fashion-mnist", "--dir", "/no/such/dir"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("/no/such/dir"), "{err}");
}
