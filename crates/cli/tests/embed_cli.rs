//! `warmstart embed` with a CLIP model (a small seeded random checkpoint standing in for a
//! downloaded one, through `WARMSTART_CLIP_DIR`): text and image vectors of a JSON Lines
//! catalog whose images are files (one corrupt, one product without an image), the content
//! cache, f16 storage, fusion with missing parts, zero-shot queries and filters.

mod common;

use std::path::Path;

use common::warmstart;
use warmstart_embed::{write_random_checkpoint, ClipShape};

fn small_clip(dir: &Path) {
    let shape = ClipShape { max_positions: 32, ..ClipShape::tiny() };
    write_random_checkpoint(dir, &shape, 11).unwrap();
}

fn png(path: &Path, shade: u8) {
    let img = image::RgbImage::from_fn(48, 40, |x, y| image::Rgb([shade, (x * 5) as u8, (y * 6) as u8]));
    img.save(path).unwrap();
}

fn json_of(out: std::process::Output) -> serde_json::Value {
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn clip_embeds_texts_and_images_caches_and_fuses() {
    let dir = tempfile::tempdir().unwrap();
    let (clip, store) = (dir.path().join("clip"), dir.path().join("s.sqlite"));
    small_clip(&clip);
    let mut lines = Vec::new();
    for i in 0..6 {
        let img = dir.path().join(format!("p{i}.png"));
        png(&img, 40 * i as u8);
        let title = ["red dress", "blue jeans", "green shirt", "black shoes", "white socks", "brown belt"][i];
        lines.push(serde_json::json!({"site": "shop", "id": format!("p{i}"), "title": title,
            "price": 10 + 10 * i, "currency": "USD", "category": "Clothing > Tops", "image": img}));
    }
    std::fs::write(dir.path().join("bad.png"), b"not a png").unwrap();
    lines.push(
        serde_json::json!({"site": "shop", "id": "corrupt", "title": "grey hat", "image": dir.path().join("bad.png")}),
    );
    lines.push(serde_json::json!({"site": "shop", "id": "noimage", "title": "yellow scarf"}));
    let jsonl: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(dir.path().join("cat.jsonl"), jsonl).unwrap();
    warmstart(&store).args(["ingest", "jsonl"]).arg(dir.path().join("cat.jsonl")).assert().success();

    let embed = |extra: &[&str]| {
        json_of(
            warmstart(&store)
                .env("WARMSTART_CLIP_DIR", &clip)
                .args(["--json", "embed", "--model", "clip", "--batch", "3"])
                .args(extra)
                .output()
                .unwrap(),
        )
    };
    let first = embed(&["--dtype", "f16"]);
    let (text, image) = (&first["parts"][0], &first["parts"][1]);
    assert_eq!((text["model"].as_str(), text["embedded"].as_u64()), (Some("clip/text"), Some(8)));
    assert_eq!(image["model"].as_str(), Some("clip/image"));
    assert_eq!(image["embedded"].as_u64(), Some(6), "{image}");
    assert_eq!(image["unreadable"].as_u64(), Some(1), "the corrupt image is counted");
    assert_eq!(image["skipped"].as_u64(), Some(1), "one product has no image");
    let again = embed(&[]);
    assert_eq!(again["parts"][0]["embedded"].as_u64(), Some(0), "cached: {again}");
    assert_eq!(again["parts"][0]["cached"].as_u64(), Some(8));

    // zero-shot: a text query ranks the catalog's images through CLIP's text tower
    let zs = |extra: &[&str]| {
        json_of(
            warmstart(&store)
                .env("WARMSTART_CLIP_DIR", &clip)
                .args(["--json", "recommend", "--dataset", "custom", "--site", "shop", "--query", "red dress"])
                .args(extra)
                .output()
                .unwrap(),
        )
    };
    let hits = zs(&["--vectors", "clip/image", "--k", "3"]);
    assert_eq!(hits["recommendations"].as_array().unwrap().len(), 3, "{hits}");
    let text_hits = zs(&["--vectors", "clip/text", "--k", "1"]);
    assert_eq!(text_hits["recommendations"][0]["product"], "p0", "the query's own title is nearest: {text_hits}");
    // price band: only 30..=50 USD
    let banded = zs(&["--vectors", "clip/text", "--k", "10", "--min-price", "30", "--max-price", "50"]);
    let ids: Vec<&str> =
        banded["recommendations"].as_array().unwrap().iter().map(|r| r["product"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 3, "{banded}");
    assert!(ids.iter().all(|p| ["p2", "p3", "p4"].contains(p)), "{ids:?}");
    // fusion needs one model per part; zero-shot refuses a fused space
    let fused = warmstart(&store)
        .env("WARMSTART_CLIP_DIR", &clip)
        .args([
            "recommend",
            "--dataset",
            "custom",
            "--site",
            "shop",
            "--query",
            "x",
            "--vectors",
            "clip/text+clip/image",
        ])
        .output()
        .unwrap();
    assert!(!fused.status.success());
    assert!(String::from_utf8_lossy(&fused.stderr).contains("one vector model"));
    let unknown = warmstart(&store).args(["embed", "--model", "nope"]).output().unwrap();
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown model `nope`"));
}
