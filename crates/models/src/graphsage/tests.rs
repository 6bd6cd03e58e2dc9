//! GraphSAGE's internals: aggregators against full inference, training's forward pass, gradients.

use super::network::{max_rows, weighted_mean};
use super::*;
use candle_core::Var;

fn t2(v: &[f32], r: usize, c: usize) -> Tensor {
    Tensor::from_vec(v.to_vec(), (r, c), &Device::Cpu).unwrap()
}

/// Identity layer weights: output = own + aggregated.
fn identity_layer(pool: bool) -> Layer {
    let eye = t2(&[1.0, 0.0, 0.0, 1.0], 2, 2);
    Layer {
        own: (eye.clone(), Tensor::zeros(2, DType::F32, &Device::Cpu).unwrap()),
        neigh: eye.clone(),
        pool: pool.then(|| (eye, Tensor::zeros(2, DType::F32, &Device::Cpu).unwrap())),
    }
}

#[test]
fn aggregators_on_a_hand_made_graph_agree_with_full_inference() {
    // node 0 has neighbours 1 (weight 1) and 2 (weight 3); node 3 none
    let src = [1.0f32, 0.0, 0.0, 2.0, 4.0, -1.0, 5.0, 5.0];
    let h = t2(&src, 4, 2);
    let lists = vec![vec![(1u32, 1.0f32), (2, 3.0)], vec![]];
    let mean = GraphSage::aggregate(&identity_layer(false), &h, &lists).unwrap().to_vec2::<f32>().unwrap();
    assert_eq!(mean[0], vec![3.0, -0.25], "(1·(0,2) + 3·(4,−1)) / 4");
    assert_eq!(mean[1], vec![0.0, 0.0], "no neighbours");
    assert_eq!(mean[0], weighted_mean(&src, 2, &[1, 2], &[1.0, 3.0]));
    // max-pool: ReLU(h) element-wise max over the neighbours
    let max = GraphSage::aggregate(&identity_layer(true), &h, &lists).unwrap().to_vec2::<f32>().unwrap();
    assert_eq!(max[0], vec![4.0, 2.0]);
    assert_eq!(max[1], vec![0.0, 0.0]);
    let relu: Vec<f32> = src.iter().map(|x| x.max(0.0)).collect();
    assert_eq!(max[0], max_rows(&relu, 2, &[1, 2]));
    // the layer: own + aggregated, L2-normalised as the last layer
    let own = h.narrow(0, 0, 1).unwrap();
    let agg = t2(&mean[0], 1, 2);
    let out = GraphSage::combine(&identity_layer(false), &own, &agg, true).unwrap().to_vec2::<f32>().unwrap();
    let (a, b) = (4.0f32, -0.25f32);
    let n = (a * a + b * b).sqrt();
    assert!((out[0][0] - a / n).abs() < 1e-6 && (out[0][1] - b / n).abs() < 1e-6, "{out:?}");
    let hidden = GraphSage::combine(&identity_layer(false), &t2(&[-5.0, 1.0], 1, 2), &agg, false).unwrap();
    assert_eq!(hidden.to_vec2::<f32>().unwrap()[0], vec![0.0, 0.75], "ReLU");
}

/// Two shops of 6 products; 12 users each with two products on both.
fn tiny() -> (warmstart_core::Dataset, warmstart_core::CsrMatrix) {
    let mut b = warmstart_core::DatasetBuilder::default();
    for s in 0..2 {
        let site = b.push_site(&format!("s{s}"), "s", "test");
        for i in 0..6 {
            b.push_product(warmstart_core::ProductMeta {
                site,
                external_id: format!("{s}-{i}"),
                title: format!("p{i}"),
                brand: None,
                category: Vec::new(),
                price_usd: None,
                image: None,
            });
        }
    }
    let mut t = Vec::new();
    for u in 0..12u32 {
        b.push_user(format!("u{u}"));
        for k in 0..2 {
            t.push((u, (u + k) % 6, 1.0));
            t.push((u, 6 + (u + k) % 6, 1.0));
        }
    }
    let d = b.finish().unwrap();
    let m = warmstart_core::CsrMatrix::from_triplets(12, 12, &t);
    (d, m)
}

/// The training path (sampled blocks, first layer aggregated in raw space, custom ops)
/// computes what full-neighbourhood inference computes when the fanouts cover every
/// neighbour and dropout is off.
#[test]
fn training_forward_equals_full_inference() {
    let (d, m) = tiny();
    let v = warmstart_core::ItemVectors {
        dim: 3,
        data: (0..36).map(|i| ((i * 7) % 5) as f32 - 2.0).collect(),
        present: vec![true; 12],
    };
    for (aggregator, ids) in
        [(Aggregator::Mean, false), (Aggregator::MaxPool, false), (Aggregator::Mean, true), (Aggregator::MaxPool, true)]
    {
        let c = GraphSageConfig::builder()
            .hidden(8)
            .dim(4)
            .fanouts(vec![50, 50])
            .aggregator(aggregator)
            .dropout(0.0)
            .content_k(0)
            .id_embedding(Some(ids))
            .validation_share(0.0)
            .epochs(1)
            .build()
            .unwrap();
        let data = TrainData { dataset: &d, matrix: &m, item_vectors: Some(&v) };
        let model = c.fit_with(&data, &mut |_| {}, &mut |_, _, _| {}).unwrap();
        let t = &model.trained;
        let graph = ProductGraph::build(&m, &[], 1.0, &[], &HashSet::new());
        let raw = t.shape.raw_rows(&t.content, &graph);
        let links: Vec<(usize, ItemId)> = (0..12).map(|u| (u, ((u + 3) % 12) as ItemId)).collect();
        let batch = model.prepare_batch(&graph, &raw, &t.shape, &data, &links, &mut Rng::new(3));
        let z = model.forward(t, &batch.blocks, batch.inputs.clone(), batch.ids.clone(), &batch.dropout).unwrap();
        let z = z.to_vec2::<f32>().unwrap();
        for &(u, i) in &links {
            let item = &t.cache.item_out[i as usize * 4..(i as usize + 1) * 4];
            let got = &z[batch.blocks.position(i) as usize];
            assert!(
                item.iter().zip(got).all(|(a, b)| (a - b).abs() < 1e-5),
                "{aggregator:?} item {i}: {item:?} vs {got:?}"
            );
            let history: Vec<(ItemId, f32)> = m.row_indices(u).iter().map(|&i| (i, 1.0)).collect();
            let user = model.embed_user(t, &history).unwrap();
            let got = &z[batch.blocks.position((12 + u) as u32) as usize];
            assert!(
                user.iter().zip(got).all(|(a, b)| (a - b).abs() < 1e-5),
                "{aggregator:?} user {u}: {user:?} vs {got:?}"
            );
        }
    }
}

#[test]
fn gradients_reach_every_parameter() {
    let (d, m) = tiny();
    let v = warmstart_core::ItemVectors {
        dim: 3,
        data: (0..36).map(|i| ((i * 7) % 5) as f32 - 2.0).collect(),
        present: vec![true; 12],
    };
    for aggregator in [Aggregator::Mean, Aggregator::MaxPool] {
        let c = GraphSageConfig::builder()
            .hidden(8)
            .dim(4)
            .fanouts(vec![3, 2])
            .aggregator(aggregator)
            .content_k(2)
            .validation_share(0.0)
            .epochs(1)
            .build()
            .unwrap();
        let data = TrainData { dataset: &d, matrix: &m, item_vectors: Some(&v) };
        let model = c.fit_with(&data, &mut |_| {}, &mut |_, _, _| {}).unwrap();
        let t = &model.trained;
        let mut rng = Rng::new(1);
        let users: Vec<usize> = (0..12).collect();
        let plan = c.plan_epoch(&data, &users, &mut rng);
        assert!(plan.links.iter().all(|(u, i)| plan.hidden.contains(&(*u as u32, *i))), "every positive is hidden");
        let graph = ProductGraph::build(&m, &[], 1.0, &[], &plan.hidden);
        let raw = t.shape.raw_rows(&t.content, &graph);
        for (u, i) in &plan.links {
            assert!(!graph.neighbours((12 + u) as u32).0.contains(i), "a positive link is not in the graph");
        }
        let logq = vec![0f32; 12];
        let batch = model.prepare_batch(&graph, &raw, &t.shape, &data, &plan.links, &mut rng);
        let loss = model.batch_loss(t, batch, &logq).unwrap();
        let grads = loss.backward().unwrap();
        let vars: Vec<(String, Var)> =
            t.varmap.data().lock().unwrap().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        for (name, var) in vars {
            let g = grads.get(var.as_tensor()).unwrap_or_else(|| panic!("{aggregator:?}: no gradient for {name}"));
            let norm = g.sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(norm > 0.0 && norm.is_finite(), "{aggregator:?}: zero gradient for {name}");
        }
    }
}
