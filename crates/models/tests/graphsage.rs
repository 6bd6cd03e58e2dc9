//! GraphSAGE: learning on the two-site world with content and id-only features, inductive
//! embedding of users who are not in the graph, both aggregators, determinism and save/load.

mod common;

use common::{cold_start_precision, world};
use warmstart_models::{by_name, Aggregator, GraphSage, GraphSageConfig, GraphSageLoss, Recommender, TrainData};

fn config() -> GraphSageConfig {
    GraphSageConfig::builder()
        .hidden(32)
        .dim(16)
        .fanouts(vec![10, 5])
        .epochs(10)
        .batch(32)
        .learning_rate(1e-2)
        .content_k(3)
        .validation_share(0.1)
        .patience(20)
        .seed(5)
        .build()
        .unwrap()
}

#[test]
fn learns_and_embeds_unseen_users_inductively() {
    let (d, v, m) = world();
    for (aggregator, loss) in [
        (Aggregator::Mean, GraphSageLoss::Softmax),
        (Aggregator::MaxPool, GraphSageLoss::Softmax),
        (Aggregator::Mean, GraphSageLoss::Bce),
    ] {
        let config_ = GraphSageConfig { aggregator, loss, ..config() };
        let mut stages = Vec::new();
        let model = config_
            .fit_with(
                &TrainData { dataset: &d, matrix: &m, item_vectors: Some(&v) },
                &mut |_| {},
                &mut |stage, done, total| stages.push((stage.to_string(), done, total)),
            )
            .unwrap();
        assert_eq!(stages.last().map(|s| (s.1, s.2)), Some((80, 80)), "content neighbours of every product");
        let e = model.epochs();
        // in-batch softmax over four taste groups has a high floor: many columns share the
        // positive's group
        let lowest = e.iter().map(|x| x.loss).fold(f64::INFINITY, f64::min);
        assert!(lowest < e[0].loss * 0.95, "{aggregator:?} {loss:?}: {e:?}");
        assert!(e.iter().all(|x| x.validation_ndcg.is_some() && x.examples > 0));
        // new users, known only by three site-0 items, ranked on site 1
        let p = cold_start_precision(&model);
        assert!(p >= 0.8, "{aggregator:?} {loss:?}: cold-start precision@5 {p}");
    }
}

#[test]
fn id_only_data_learns_through_the_graph() {
    let (d, _, m) = world();
    let model = GraphSageConfig { epochs: 30, ..config() }
        .fit_with(&TrainData { dataset: &d, matrix: &m, item_vectors: None }, &mut |_| {}, &mut |_, _, _| {})
        .unwrap();
    let p = cold_start_precision(&model);
    assert!(p >= 0.6, "id-only cold-start precision@5 {p}");
}

#[test]
fn training_is_deterministic_and_save_load_gives_identical_scores() {
    let (d, v, m) = world();
    let data = TrainData { dataset: &d, matrix: &m, item_vectors: Some(&v) };
    let cfg = GraphSageConfig { epochs: 2, ..config() };
    let a = cfg.fit_with(&data, &mut |_| {}, &mut |_, _, _| {}).unwrap();
    let b = cfg.fit_with(&data, &mut |_| {}, &mut |_, _, _| {}).unwrap();
    assert_eq!(a.item_vectors().unwrap().0, b.item_vectors().unwrap().0);
    assert_eq!(
        a.epochs(),
        b.epochs()
            .into_iter()
            .map(|e| warmstart_models::GraphSageEpoch { train_seconds: a.epochs()[e.epoch - 1].train_seconds, ..e })
            .collect::<Vec<_>>()
    );
    // the export is the epochs as training saw them
    let x = cfg.export(&data, a.epochs().len()).unwrap();
    assert_eq!(x.epochs.len(), a.epochs().len());
    for (e, h) in x.epochs.iter().zip(a.epochs()) {
        assert_eq!(e.links.len(), h.examples);
        assert_eq!(e.offsets.len(), 80 + 160 + 1);
        assert_eq!(e.neighbours.len(), *e.offsets.last().unwrap());
    }
    assert_ne!(x.epochs[0].links, x.epochs[1].links, "every epoch simulates a new cold start");
    assert_eq!(x.content.len(), 80 * 6);
    let dir = tempfile::tempdir().unwrap();
    a.save(dir.path()).unwrap();
    let loaded = GraphSage::load(dir.path()).unwrap();
    let history = [(1, 1.0), (5, 0.5)];
    let (mut s1, mut s2) = (vec![0f32; 40], vec![0f32; 40]);
    a.score(&history, 40..80, &mut s1).unwrap();
    loaded.score(&history, 40..80, &mut s2).unwrap();
    assert_eq!(s1, s2);
    assert!(s1.iter().any(|x| *x != 0.0));
    // an empty history scores nothing; an unknown item is an error naming it
    a.score(&[], 40..80, &mut s1).unwrap();
    assert!(s1.iter().all(|x| *x == 0.0));
    let err = a.score(&[(9999, 1.0)], 40..80, &mut s1).unwrap_err().to_string();
    assert!(err.contains("9999"), "{err}");
    assert!(a.score(&history, 40..81, &mut [0f32; 41]).is_err(), "items beyond the fitted catalog");
    assert!(GraphSage::load(&dir.path().join("missing")).is_err());
    // init weights with no epochs: the same model, rebuilt on the training graph
    let init = dir.path().join("model.safetensors").display().to_string();
    let c = (GraphSageConfig { epochs: 0, init: Some(init), ..config() })
        .fit_with(&data, &mut |_| {}, &mut |_, _, _| {})
        .unwrap();
    let mut s3 = vec![0f32; 40];
    c.score(&history, 40..80, &mut s3).unwrap();
    a.score(&history, 40..80, &mut s1).unwrap();
    assert_eq!(s1, s3);
    assert!(c.epochs().is_empty());
    let missing = GraphSageConfig { init: Some("no/such/weights.safetensors".into()), ..config() };
    let err = missing.fit_with(&data, &mut |_| {}, &mut |_, _, _| {}).map(|_| ()).unwrap_err().to_string();
    assert!(err.contains("no/such/weights.safetensors"), "{err}");
    assert!(GraphSageConfig::builder().epochs(0).build().is_err(), "no epochs and no weights");
    assert!(GraphSageConfig::builder().epochs(0).set("init", "w.safetensors").unwrap().build().is_ok());
}

#[test]
fn names_and_parameters() {
    let m = by_name("graphsage-max:fanouts=20/10:epochs=3:dim=32", 1, 1).unwrap();
    let name = m.name();
    assert!(name.contains("max-pool") && name.contains("fanouts 20/10") && name.contains("d 32"), "{name}");
    let err = by_name("graphsage:fanout=3", 1, 1).err().unwrap().to_string();
    assert!(err.contains("fanout"), "{err}");
    let err = by_name("graphsage:fanouts=10/x", 1, 1).err().unwrap().to_string();
    assert!(err.contains("fanouts") && err.contains("10/x"), "{err}");
    assert!(GraphSageConfig::builder().fanouts(vec![]).build().is_err());
    assert!(GraphSageConfig::builder().fanouts(vec![5, 0]).build().is_err());
    assert!(GraphSageConfig::builder().negatives(0).build().is_err());
    assert!(by_name("graphsage-sum", 1, 1).is_err());
    let bce = by_name("graphsage-bce:neg=8", 1, 1).unwrap().name();
    assert!(bce.contains("bce") && bce.contains("neg 8"), "{bce}");
    assert!(by_name("graphsage", 1, 1).unwrap().name().contains("softmax"));
}
