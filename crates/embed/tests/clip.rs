//! CLIP through the same loading path a real checkpoint takes, on a small random checkpoint
//! with the real tensor names: text and image towers, padding and truncation, bad
//! checkpoints.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use warmstart_embed::{write_random_checkpoint, ClipShape, Error, LoadedModel};

fn small() -> ClipShape {
    ClipShape::tiny()
}

fn load(dir: &Path) -> LoadedModel {
    LoadedModel::load_dir(dir, "clip", dir).expect("load random clip")
}

fn cos(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn picture(w: u32, h: u32, seed: u8) -> image::DynamicImage {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x * 7 + seed as u32 * 31) as u8, (y * 5) as u8, ((x + y) * 3 + seed as u32) as u8])
    });
    image::DynamicImage::ImageRgb8(img)
}

#[test]
fn random_checkpoint_loads_and_both_towers_encode() {
    let dir = tempfile::tempdir().unwrap();
    write_random_checkpoint(dir.path(), &small(), 7).unwrap();
    let model = load(dir.path());
    assert!(matches!(model, LoadedModel::Clip(_)));
    let text = model.text().unwrap();
    assert_eq!((text.id(), text.dim(), text.max_len()), ("clip/text".to_string(), 16, 24));
    let texts = ["red cotton t-shirt", "a", "crimson cotton tee with a long description here"];
    let (v, stats) = text.encode_texts(&texts).unwrap();
    assert_eq!(v.len(), 3 * 16);
    assert_eq!(stats.truncated, 1, "the long text exceeds 24 tokens");
    for row in v.chunks(16) {
        assert!((cos(row, row) - 1.0).abs() < 1e-4);
    }
    // padding after the end-of-text token must not change a text's vector
    let (alone, _) = text.encode_texts(&texts[1..2]).unwrap();
    assert!(cos(&alone, &v[16..32]) > 0.9999, "padded and unpadded differ");
    assert!(cos(&v[..16], &v[16..32]) < 0.9999, "different texts, different vectors");

    let image = model.image().expect("clip has an image tower");
    assert_eq!(image.id(), "clip/image");
    let imgs = [picture(40, 30, 1), picture(64, 64, 2), picture(40, 30, 1)];
    let iv = image.encode_images(&imgs).unwrap();
    assert_eq!(iv.len(), 3 * 16);
    assert!((cos(&iv[..16], &iv[..16]) - 1.0).abs() < 1e-4);
    assert!(cos(&iv[..16], &iv[32..48]) > 0.9999, "same image, same vector");
    let c = cos(&iv[..16], &iv[16..32]);
    assert!(c < 0.999, "different images, different vectors: cos {c}");
    let single = image.encode_images(&imgs[1..2]).unwrap();
    assert!(cos(&single, &iv[16..32]) > 0.9999, "batching does not change an image's vector");
}

#[test]
fn seeded_checkpoints_are_reproducible_and_full_size_shapes_match_vit_b32() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_random_checkpoint(a.path(), &small(), 3).unwrap();
    write_random_checkpoint(b.path(), &small(), 3).unwrap();
    let read = |d: &Path| std::fs::read(d.join("model.safetensors")).unwrap();
    assert_eq!(read(a.path()), read(b.path()));
    // the config written round-trips, and Hugging Face defaults fill what a config omits
    assert_eq!(ClipShape::from_config(&a.path().join("config.json")).unwrap(), small());
    let sparse = a.path().join("sparse.json");
    std::fs::write(&sparse, r#"{"model_type": "clip", "text_config": {}, "vision_config": {}}"#).unwrap();
    assert_eq!(ClipShape::from_config(&sparse).unwrap(), ClipShape::vit_base_patch32());
    let gelu = a.path().join("gelu.json");
    std::fs::write(&gelu, r#"{"text_config": {"hidden_act": "gelu"}}"#).unwrap();
    assert!(ClipShape::from_config(&gelu).unwrap_err().to_string().contains("quick_gelu"));
}

fn rewrite(dir: &Path, edit: impl FnOnce(&mut HashMap<String, Tensor>)) {
    let path = dir.join("model.safetensors");
    let mut t = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
    edit(&mut t);
    candle_core::safetensors::save(&t, &path).unwrap();
}

#[test]
fn broken_checkpoints_name_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    write_random_checkpoint(dir.path(), &small(), 1).unwrap();
    rewrite(dir.path(), |t| {
        t.remove("vision_model.embeddings.class_embedding");
    });
    let e = LoadedModel::load_dir(dir.path(), "clip", dir.path()).err().expect("missing tensor");
    assert!(matches!(e, Error::Checkpoint { .. }));
    assert!(e.to_string().contains("vision_model.embeddings.class_embedding"), "{e}");

    write_random_checkpoint(dir.path(), &small(), 1).unwrap();
    rewrite(dir.path(), |t| {
        t.insert(
            "text_projection.weight".into(),
            Tensor::zeros((3, 3), candle_core::DType::F32, &Device::Cpu).unwrap(),
        );
    });
    let e = LoadedModel::load_dir(dir.path(), "clip", dir.path()).err().expect("misshapen tensor");
    assert!(e.to_string().contains("text_projection.weight"), "{e}");

    write_random_checkpoint(dir.path(), &small(), 1).unwrap();
    rewrite(dir.path(), |t| {
        t.remove("text_model.encoder.layers.1.mlp.fc2.weight");
    });
    let e = LoadedModel::load_dir(dir.path(), "clip", dir.path()).err().expect("missing layer");
    assert!(e.to_string().contains("text_model.encoder.layers.1.mlp.fc2.weight"), "{e}");

    std::fs::remove_file(dir.path().join("tokenizer.json")).unwrap();
    write_random_checkpoint(dir.path(), &small(), 1).unwrap();
    std::fs::write(dir.path().join("tokenizer.json"), "{").unwrap();
    let e = LoadedModel::load_dir(dir.path(), "clip", dir.path()).err().expect("broken tokenizer");
    assert!(e.to_string().contains("tokenizer.json"), "{e}");
}
