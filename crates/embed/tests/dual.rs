//! The catalog-trained dual encoder: InfoNCE on hand-computed cases, the im2col convolution
//! against candle's, training that lowers the loss (CNN and CLIP towers), save/load.

use candle_core::{Device, Tensor};
use warmstart_core::Rng;
use warmstart_embed::dual::{conv3x3_stride2, info_nce, DualModel};
use warmstart_embed::{write_random_checkpoint, ClipShape, DualConfig, DualTrainer, PairSet, Retrieval, TrainOptions};

fn t(rows: &[[f32; 2]]) -> Tensor {
    Tensor::from_vec(rows.concat(), (rows.len(), 2), &Device::Cpu).unwrap()
}

#[test]
fn info_nce_matches_hand_computed_values() {
    let zero = Tensor::new(0f32, &Device::Cpu).unwrap();
    // identity logits: every row and column is log(1 + e^-1)
    let l = info_nce(&t(&[[1.0, 0.0], [0.0, 1.0]]), &t(&[[1.0, 0.0], [0.0, 1.0]]), &zero).unwrap();
    assert!((l.to_scalar::<f32>().unwrap() - 0.313_262).abs() < 1e-5);
    // logits [[1, .6], [0, .8]]: rows log(1+e^-.4), log(1+e^-.8); columns log(1+e^-1), log(1+e^-.2)
    let l = info_nce(&t(&[[1.0, 0.0], [0.0, 1.0]]), &t(&[[1.0, 0.0], [0.6, 0.8]]), &zero).unwrap();
    let f = |x: f64| (1.0 + (-x).exp()).ln();
    let want = ((f(0.4) + f(0.8)) / 2.0 + (f(1.0) + f(0.2)) / 2.0) / 2.0;
    assert!((l.to_scalar::<f32>().unwrap() as f64 - want).abs() < 1e-5, "{want}");
    assert!((want - 0.448_88).abs() < 1e-4);
    // a logit scale of ln 10 sharpens: the loss of the identity case drops to log(1 + e^-10)
    let s = Tensor::new(10f32.ln(), &Device::Cpu).unwrap();
    let l = info_nce(&t(&[[1.0, 0.0], [0.0, 1.0]]), &t(&[[1.0, 0.0], [0.0, 1.0]]), &s).unwrap();
    assert!((l.to_scalar::<f32>().unwrap() as f64 - f(10.0)).abs() < 1e-6);
}

#[test]
fn im2col_convolution_equals_candles_conv2d() {
    let dev = Device::Cpu;
    let mut rng = Rng::new(3);
    let (b, h, w, c, o) = (2, 6, 4, 3, 5);
    let x: Vec<f32> = (0..b * h * w * c).map(|_| rng.normal_f32()).collect();
    let k: Vec<f32> = (0..o * c * 9).map(|_| rng.normal_f32()).collect();
    let bias: Vec<f32> = (0..o).map(|_| rng.normal_f32()).collect();
    let x_nhwc = Tensor::from_vec(x, (b, h, w, c), &dev).unwrap();
    let kernel = Tensor::from_vec(k, (o, c, 3, 3), &dev).unwrap(); // OIHW
    let bias_t = Tensor::from_vec(bias, o, &dev).unwrap();
    let want = x_nhwc
        .permute((0, 3, 1, 2))
        .unwrap()
        .contiguous()
        .unwrap()
        .conv2d(&kernel, 1, 2, 1, 1)
        .unwrap()
        .broadcast_add(&bias_t.reshape((1, o, 1, 1)).unwrap())
        .unwrap()
        .permute((0, 2, 3, 1))
        .unwrap();
    // (dy, dx, c) × o
    let weight = kernel.permute((2, 3, 1, 0)).unwrap().contiguous().unwrap().reshape((9 * c, o)).unwrap();
    let got = conv3x3_stride2(&x_nhwc, &weight, &bias_t).unwrap();
    assert_eq!(got.dims(), &[b, h / 2, w / 2, o]);
    let diff = (got - want).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    assert!(diff < 1e-4, "max difference {diff}");
}

/// `n` pairs of 4 colour classes: a solid image of the class colour with noise, and a text
/// vector near the class's axis.
fn colour_pairs(n: usize, h: usize, w: usize, text_dim: usize, seed: u64) -> PairSet {
    let colours = [[220u8, 30, 30], [30, 200, 40], [40, 50, 210], [230, 220, 40]];
    let mut rng = Rng::new(seed);
    let mut set = PairSet { n, ..Default::default() };
    for i in 0..n {
        let class = i % 4;
        for _ in 0..h * w {
            for &c in &colours[class] {
                let v = c as f32 + 20.0 * rng.normal_f32();
                set.pixels.push(v.clamp(0.0, 255.0) as u8);
            }
        }
        for d in 0..text_dim {
            let axis = if d == class { 1.0 } else { 0.0 };
            set.text.push(axis + 0.1 * rng.normal_f32());
        }
    }
    set
}

fn tiny_cnn(text_dim: usize) -> DualConfig {
    DualConfig {
        image_height: 16,
        image_width: 12,
        channels: vec![8, 16],
        hidden: 32,
        dim: 16,
        ..DualConfig::cnn("test", text_dim)
    }
}

fn quick(epochs: usize) -> TrainOptions {
    TrainOptions { epochs, batch: 16, learning_rate: 5e-3, held_out: 16, seed: 9, ..Default::default() }
}

#[test]
fn training_lowers_the_loss_and_separates_the_classes() {
    let data = colour_pairs(96, 16, 12, 8, 1);
    let mut trainer = DualTrainer::new(tiny_cnn(8), 5).unwrap();
    let mut steps = 0;
    let report = trainer.train(&data, quick(12), |_| steps += 1).unwrap();
    assert_eq!(report.step_losses.len(), 12 * 5);
    assert_eq!(steps, 12 * 5 + 12, "every step and epoch is reported");
    let (first, last) = (report.epochs[0].train_loss, report.epochs.last().unwrap().train_loss);
    assert!(last < first * 0.8, "loss {first} → {last}");
    // with four classes among 16 held-out pairs, a class-aware model ranks the match's
    // class (4 items) first: recall@10 ≥ 0.9 where random gives 10/16
    let r = report.epochs.last().unwrap().retrieval;
    assert!(r.text_to_image.at10 >= 0.9, "{r:?}");
    assert_eq!(report.random, Retrieval::random(16));
}

#[test]
fn training_is_deterministic_and_round_trips_through_disk() {
    let data = colour_pairs(48, 16, 12, 8, 2);
    let run = || {
        let mut t = DualTrainer::new(tiny_cnn(8), 5).unwrap();
        let r = t.train(&data, quick(2), |_| {}).unwrap();
        (t, r)
    };
    let (trainer, a) = run();
    let (_, b) = run();
    assert_eq!(a.step_losses, b.step_losses, "same seed, same losses");
    let dir = tempfile::tempdir().unwrap();
    trainer.save(dir.path()).unwrap();
    let loaded = DualModel::load(dir.path()).unwrap();
    let px = &data.pixels[..3 * 16 * 12 * 3];
    let before = trainer.model().embed_pixels(px, 3).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let after = loaded.embed_pixels(px, 3).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(before, after);
    let tx = &data.text[..3 * 8];
    assert_eq!(
        trainer.model().embed_text_vectors(tx, 3).unwrap().to_vec2::<f32>().unwrap(),
        loaded.embed_text_vectors(tx, 3).unwrap().to_vec2::<f32>().unwrap()
    );
    // a truncated checkpoint fails naming the file
    std::fs::write(dir.path().join("model.safetensors"), b"not a checkpoint").unwrap();
    let e = DualModel::load(dir.path()).err().expect("corrupt checkpoint").to_string();
    assert!(e.contains("model.safetensors"), "{e}");
}

#[test]
fn bad_settings_are_refused() {
    let bad = DualConfig { image_height: 18, ..tiny_cnn(8) };
    assert!(bad.validate().unwrap_err().to_string().contains("divisible"));
    let data = colour_pairs(10, 16, 12, 8, 3);
    let mut t = DualTrainer::new(tiny_cnn(8), 1).unwrap();
    let e = t.train(&data, quick(1), |_| {}).unwrap_err().to_string();
    assert!(e.contains("cannot hold out"), "{e}");
    let wrong = PairSet { n: 40, pixels: vec![0; 40 * 10], text: vec![0.0; 40 * 8] };
    let e = t.train(&wrong, quick(1), |_| {}).unwrap_err().to_string();
    assert!(e.contains("do not match"), "{e}");
}

#[test]
fn fine_tunes_a_clip_checkpoint() {
    let shape = ClipShape::tiny();
    let dir = tempfile::tempdir().unwrap();
    write_random_checkpoint(dir.path(), &shape, 11).unwrap();
    let cfg = DualConfig::clip(&shape, "clip/text", 8);
    let data = colour_pairs(64, 32, 32, 8, 4);
    let mut trainer = DualTrainer::from_clip(cfg.clone(), dir.path(), 3).unwrap();
    let report = trainer.train(&data, quick(6), |_| {}).unwrap();
    let (first, last) = (report.epochs[0].train_loss, report.epochs.last().unwrap().train_loss);
    assert!(last < first, "loss {first} → {last}");
    let out = tempfile::tempdir().unwrap();
    trainer.save(out.path()).unwrap();
    let loaded = DualModel::load(out.path()).unwrap();
    assert_eq!(loaded.config(), &cfg);
    // a checkpoint without the vision tower's class embedding is refused by name
    let broken = tempfile::tempdir().unwrap();
    let mut tensors = candle_core::safetensors::load(dir.path().join("model.safetensors"), &Device::Cpu).unwrap();
    tensors.remove("vision_model.embeddings.class_embedding");
    candle_core::safetensors::save(&tensors, broken.path().join("model.safetensors")).unwrap();
    let e = DualTrainer::from_clip(cfg, broken.path(), 3).err().expect("missing tensor").to_string();
    assert!(e.contains("class_embedding"), "{e}");
}

#[test]
fn im2col_gradient_matches_finite_differences() {
    let dev = Device::Cpu;
    let mut rng = Rng::new(8);
    let (b, h, w, c, o) = (1, 4, 4, 2, 3);
    let xs: Vec<f32> = (0..b * h * w * c).map(|_| rng.normal_f32()).collect();
    let weight =
        Tensor::from_vec((0..9 * c * o).map(|_| rng.normal_f32()).collect::<Vec<_>>(), (9 * c, o), &dev).unwrap();
    let bias = Tensor::zeros(o, candle_core::DType::F32, &dev).unwrap();
    let loss = |x: &Tensor| conv3x3_stride2(x, &weight, &bias).unwrap().sqr().unwrap().sum_all().unwrap();
    let var = candle_core::Var::from_vec(xs.clone(), (b, h, w, c), &dev).unwrap();
    let grads = loss(var.as_tensor()).backward().unwrap();
    let g = grads.get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    for i in [0, 5, 13, 31] {
        let at = |d: f32| {
            let mut v = xs.clone();
            v[i] += d;
            loss(&Tensor::from_vec(v, (b, h, w, c), &dev).unwrap()).to_scalar::<f32>().unwrap()
        };
        let numeric = (at(1e-2) - at(-1e-2)) / 2e-2;
        assert!((numeric - g[i]).abs() < 1e-2 * numeric.abs().max(1.0), "input {i}: {numeric} vs {}", g[i]);
    }
}
