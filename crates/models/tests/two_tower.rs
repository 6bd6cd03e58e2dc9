//! The two-tower model: losses on hand-computed cases, training that lowers the loss, cold-start
//! fold-in from other-site history, id-only data, save/load.

use candle_core::{Device, Tensor};
mod common;

use common::{cold_start_precision, world};
use warmstart_models::two_tower::{bce, sampled_softmax};
use warmstart_models::{Pooling, Recommender, TrainData, TwoTower, TwoTowerConfig, TwoTowerLoss};

fn t1(v: &[f32]) -> Tensor {
    Tensor::from_vec(v.to_vec(), v.len(), &Device::Cpu).unwrap()
}

fn softplus(x: f64) -> f64 {
    (1.0 + x.exp()).ln()
}

#[test]
fn bce_matches_hand_computed_values() {
    let neg = Tensor::from_vec(vec![0f32], (1, 1), &Device::Cpu).unwrap();
    let l = bce(&t1(&[0.0]), &neg).unwrap().to_scalar::<f32>().unwrap() as f64;
    assert!((l - 2f64.ln()).abs() < 1e-6, "{l}");
    // positive logit 2, negatives −1 and 1: mean of softplus(−2), softplus(−1), softplus(1)
    let neg = Tensor::from_vec(vec![-1f32, 1.0], (1, 2), &Device::Cpu).unwrap();
    let l = bce(&t1(&[2.0]), &neg).unwrap().to_scalar::<f32>().unwrap() as f64;
    let want = (softplus(-2.0) + softplus(-1.0) + softplus(1.0)) / 3.0;
    assert!((l - want).abs() < 1e-6 && (want - 0.584_484).abs() < 1e-5, "{l} vs {want}");
    // large logits stay finite
    let l = bce(&t1(&[80.0]), &Tensor::from_vec(vec![-80f32], (1, 1), &Device::Cpu).unwrap()).unwrap();
    assert!(l.to_scalar::<f32>().unwrap().abs() < 1e-6);
}

#[test]
fn sampled_softmax_applies_log_q_and_masks_repeated_targets() {
    let logits = Tensor::from_vec(vec![1f32, 0.0, 0.0, 1.0], (2, 2), &Device::Cpu).unwrap();
    // equal sampling probabilities: the correction cancels, log(1 + e^−1) per row
    let l =
        sampled_softmax(&logits, &[0, 1], &[(0, 0.5f32.ln()), (1, 0.5f32.ln())]).unwrap().to_scalar::<f32>().unwrap()
            as f64;
    assert!((l - softplus(-1.0)).abs() < 1e-6);
    // Q = (0.8, 0.2): column j gains −log Q_j
    let (c0, c1) = (-(0.8f64.ln()), -(0.2f64.ln()));
    let row0 = softplus((0.0 + c1) - (1.0 + c0));
    let row1 = softplus((0.0 + c0) - (1.0 + c1));
    let l =
        sampled_softmax(&logits, &[0, 1], &[(0, 0.8f32.ln()), (1, 0.2f32.ln())]).unwrap().to_scalar::<f32>().unwrap()
            as f64;
    assert!((l - (row0 + row1) / 2.0).abs() < 1e-5, "{l}");
    // the same item twice in a batch is not its own negative
    let l = sampled_softmax(&logits, &[3, 3], &[(3, 0.0), (3, 0.0)]).unwrap().to_scalar::<f32>().unwrap();
    assert!(l.abs() < 1e-6, "{l}");
    // a third (uniform) column: row 0 sees it as a negative with its own correction; in row 1
    // it holds row 1's target and is masked
    let logits = Tensor::from_vec(vec![1f32, 0.0, 0.5, 0.0, 1.0, 2.0], (2, 3), &Device::Cpu).unwrap();
    let cu = -(0.1f64.ln());
    let lse0 = ((1.0f64).exp() + (0.0f64).exp() + (0.5 + cu).exp()).ln();
    let want = ((lse0 - 1.0) + softplus(-1.0)) / 2.0;
    let l =
        sampled_softmax(&logits, &[0, 1], &[(0, 0.0), (1, 0.0), (1, 0.1f32.ln())]).unwrap().to_scalar::<f32>().unwrap()
            as f64;
    assert!((l - want).abs() < 1e-5, "{l} vs {want}");

    // its gradient is candle's cross-entropy gradient of the corrected logits
    let columns = [(0u32, 0.2f32.ln()), (1, 0.3f32.ln()), (1, 0.1f32.ln()), (5, 0.4f32.ln())];
    let targets = [0u32, 1, 5];
    let x =
        candle_core::Var::from_vec((0..12).map(|i| (i as f32 * 1.3).sin()).collect::<Vec<_>>(), (3, 4), &Device::Cpu)
            .unwrap();
    let ours = sampled_softmax(x.as_tensor(), &targets, &columns).unwrap();
    let corr: Vec<f32> = (0..3)
        .flat_map(|r| {
            columns.iter().enumerate().map(move |(c, (item, q))| if r != c && targets[r] == *item { -1e9 } else { -q })
        })
        .collect();
    let reference = candle_nn::loss::cross_entropy(
        &(x.as_tensor() + Tensor::from_vec(corr, (3, 4), &Device::Cpu).unwrap()).unwrap(),
        &Tensor::from_vec(vec![0u32, 1, 2], 3, &Device::Cpu).unwrap(),
    )
    .unwrap();
    let (a, b) = (ours.to_scalar::<f32>().unwrap(), reference.to_scalar::<f32>().unwrap());
    assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    let (ga, gb) = (ours.backward().unwrap(), reference.backward().unwrap());
    let (ga, gb) = (
        ga.get(x.as_tensor()).unwrap().to_vec2::<f32>().unwrap(),
        gb.get(x.as_tensor()).unwrap().to_vec2::<f32>().unwrap(),
    );
    for (ra, rb) in ga.iter().zip(&gb) {
        assert!(ra.iter().zip(rb).all(|(p, q)| (p - q).abs() < 1e-5), "{ga:?} vs {gb:?}");
    }
}

fn config(loss: TwoTowerLoss) -> TwoTowerConfig {
    TwoTowerConfig::builder()
        .dim(16)
        .hidden(32)
        .loss(loss)
        .epochs(12)
        .batch(32)
        .learning_rate(1e-2)
        .validation_share(0.1)
        .patience(20)
        .targets_per_user(1)
        .seed(3)
        .build()
        .unwrap()
}

#[test]
fn both_losses_learn_and_fold_in_cold_start_users() {
    let (d, v, m) = world();
    for loss in [TwoTowerLoss::Softmax, TwoTowerLoss::Bce] {
        let model = (config(loss))
            .fit_with(&TrainData { dataset: &d, matrix: &m, item_vectors: Some(&v) }, &mut |_| {})
            .unwrap();
        let e = model.epochs();
        assert!(e.last().unwrap().loss < e[0].loss * 0.9, "{loss:?}: {e:?}");
        assert!(e.iter().all(|x| x.validation_ndcg.is_some()));
        let p = cold_start_precision(&model);
        assert!(p >= 0.8, "{loss:?}: cold-start precision@5 {p}");
    }
}

#[test]
fn id_only_data_and_attention_pooling_learn() {
    let (d, _, m) = world();
    let cfg = TwoTowerConfig { pooling: Pooling::Attention, epochs: 20, ..config(TwoTowerLoss::Softmax) };
    let model = (cfg).fit_with(&TrainData { dataset: &d, matrix: &m, item_vectors: None }, &mut |_| {}).unwrap();
    let e = model.epochs();
    assert!(e.last().unwrap().loss < e[0].loss * 0.9, "{e:?}");
    // the item-id embeddings of other-site items carry the users' taste across sites
    let p = cold_start_precision(&model);
    assert!(p >= 0.6, "id-only cold-start precision@5 {p}");
}

#[test]
fn training_is_deterministic_and_save_load_gives_identical_scores() {
    let (d, v, m) = world();
    let data = TrainData { dataset: &d, matrix: &m, item_vectors: Some(&v) };
    let cfg = TwoTowerConfig { epochs: 3, ..config(TwoTowerLoss::Softmax) };
    let a = (cfg.clone()).fit_with(&data, &mut |_| {}).unwrap();
    let b = (cfg.clone()).fit_with(&data, &mut |_| {}).unwrap();
    assert_eq!(a.item_vectors().unwrap().0, b.item_vectors().unwrap().0);
    let dir = tempfile::tempdir().unwrap();
    a.save(dir.path()).unwrap();
    let loaded = TwoTower::load(dir.path(), Some(&v)).unwrap();
    let history = [(1, 1.0), (5, 0.5)];
    let (mut s1, mut s2) = (vec![0f32; 40], vec![0f32; 40]);
    a.score(&history, 40..80, &mut s1).unwrap();
    loaded.score(&history, 40..80, &mut s2).unwrap();
    assert_eq!(s1, s2);
    // init weights with no epochs: the same model (how PyTorch-trained weights are ranked)
    let init = dir.path().join("model.safetensors").display().to_string();
    let c = (TwoTowerConfig { epochs: 0, init: Some(init), ..cfg.clone() }).fit_with(&data, &mut |_| {}).unwrap();
    let mut s3 = vec![0f32; 40];
    c.score(&history, 40..80, &mut s3).unwrap();
    assert_eq!(s1, s3);
    assert!(c.epochs().is_empty());
    let missing = TwoTowerConfig { init: Some("no/such/weights.safetensors".into()), ..cfg.clone() };
    let err = missing.fit_with(&data, &mut |_| {}).map(|_| ()).unwrap_err().to_string();
    assert!(err.contains("no/such/weights.safetensors"), "{err}");
    assert!(TwoTowerConfig::builder().epochs(0).build().is_err(), "no epochs and no weights");
    assert!(TwoTowerConfig::builder().epochs(0).set("init", "w.safetensors").unwrap().build().is_ok());
    assert!(TwoTowerConfig::builder().batch(1).build().is_err());
    assert!(TwoTowerConfig::builder().loss(TwoTowerLoss::Bce).negatives(0).build().is_err());
}

#[test]
fn ablation_variants_train_and_name_parameters_parse() {
    let (d, v, m) = world();
    let data = TrainData { dataset: &d, matrix: &m, item_vectors: Some(&v) };
    // mixed negatives, no user MLP, no categorical features: each still learns the world
    let cfg = TwoTowerConfig {
        uniform_negatives: 16,
        user_mlp: false,
        categorical: false,
        popularity_feature: false,
        ..config(TwoTowerLoss::Softmax)
    };
    let model = (cfg).fit_with(&data, &mut |_| {}).unwrap();
    let e = model.epochs();
    assert!(e.iter().all(|x| x.examples > 0 && x.train_seconds >= 0.0));
    let p = cold_start_precision(&model);
    assert!(p >= 0.8, "ablated model cold-start precision@5 {p}");
    // the export is each epoch's fresh draw as training sees it
    let x = TwoTowerConfig { targets_per_user: 4, ..config(TwoTowerLoss::Softmax) }.export(&data, 2).unwrap();
    assert_eq!(x.features.len(), 6);
    assert_eq!(x.epochs.len(), 2);
    let n = x.epochs[0].len();
    assert!(n > 3 * e[0].examples && n <= 4 * e[0].examples, "4 targets per user, 1 in the helper's config: {n}");
    assert!(x.epochs[0] != x.epochs[1], "every epoch draws its own examples");
    assert!(x.epochs.iter().flatten().all(|(t, h)| !h.is_empty() && h.iter().all(|(i, _)| i != t)));
    assert!((x.lr_floor - 0.05).abs() < 1e-12 && x.id_dim > 0 && x.adam.0 > 0.0);
    assert!(x.total_steps >= x.warmup_steps && x.content_dim == 6);

    // parameters in model names
    let named = warmstart_models::by_name("two-tower-bce:neg=8:dim=32:targets=2", 1, 7).unwrap();
    assert!(named.name().contains("bce") && named.name().contains("d 32") && named.name().contains("neg 8"));
    for bad in ["two-tower:colour=red", "two-tower:dim=big", "two-tower:dim", "two-tower:targets=0", "two-tower-xyz"] {
        let err = warmstart_models::by_name(bad, 1, 7).err().unwrap_or_else(|| panic!("{bad} accepted"));
        assert!(!err.to_string().is_empty(), "{bad}");
    }
    let err = warmstart_models::by_name("two-tower:colour=red", 1, 7).err().unwrap().to_string();
    assert!(err.contains("colour"), "{err}");
}
