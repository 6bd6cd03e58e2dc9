//! Every fitted model saves and loads back to identical scores through the one
//! `warmstart_models::load`, scores only item ids it was fitted on (an error naming the item,
//! never a panic), and re-ranks arbitrary candidates (`score_ids`) exactly as `score` does.

#[allow(dead_code)]
mod common;

use common::world;
use warmstart_models::{by_name, TrainData};

#[test]
fn save_load_and_range_checks_for_every_model() {
    let (d, v, m) = world();
    let data = TrainData { dataset: &d, matrix: &m, item_vectors: Some(&v) };
    let history = [(1u32, 1.0f32), (5, 0.5), (7, 1.0)];
    let n = d.n_items() as u32;
    let target = d.sites[1].items.clone();
    for name in [
        "pop",
        "itemknn",
        "rp3beta",
        "ease:lambda=5:items=40",
        "brandknn",
        "brandknn:k=3:shrink=1",
        "catknn",
        "userknn",
        "userknn:k=3:shrink=1:exp=2",
        "itemknn:k=3:shrink=1",
        "rp3beta:alpha=1:k=5",
        "als",
        "als:factors=8:reg=10:iterations=3",
        "bpr",
        "bpr:negatives=popularity:epochs=3",
        "random",
        "content-pop-k2",
        "content-map",
        "blend-content",
        "blend:history=1",
        "blend:items=0:history=1",
        "blend:short=0",
        "blend:history=1:short=0",
        "blend:members=itemknn/shrink=1+als/factors=8+pop",
    ] {
        let fitted = by_name(name, 1, 7).unwrap().fit(&data).unwrap();
        assert_eq!(fitted.n_items(), d.n_items(), "{name}");
        if name.contains('=') && !name.starts_with("bpr") {
            assert_eq!(fitted.name(), name, "a fitted model's name reads back as its parameters");
        }
        if name.contains("als/factors=8") {
            // the members were built with their own parameters: the weights name them
            let notes = fitted.fit_notes().join("\n");
            assert!(notes.contains("itemknn:shrink=1 ") && notes.contains("als:factors=8 "), "{notes}");
        }
        let dir = tempfile::tempdir().unwrap();
        fitted.save(dir.path()).unwrap();
        let loaded = warmstart_models::load(dir.path(), None).unwrap();
        assert_eq!(loaded.name(), fitted.name());
        let (mut a, mut b) = (vec![0f32; target.len()], vec![0f32; target.len()]);
        fitted.score(&history, target.clone(), &mut a).unwrap();
        loaded.score(&history, target.clone(), &mut b).unwrap();
        assert_eq!(a, b, "{name}: loaded scores differ");
        // arbitrary candidates score as the range does (a blend standardises its members over
        // the range it is given, so it is checked on the whole range)
        let ids: Vec<u32> = if name.starts_with("blend") {
            target.clone().collect()
        } else {
            target.clone().rev().step_by(3).collect()
        };
        let mut c = vec![0f32; ids.len()];
        loaded.score_ids(&history, &ids, &mut c).unwrap();
        for (s, &i) in c.iter().zip(&ids) {
            assert!((s - a[(i - target.start) as usize]).abs() < 1e-5, "{name}: item {i}");
        }
        // a vector space scores its queries as the model does
        if let Some(space) = loaded.space() {
            let q = space.queries(&history, 1).unwrap();
            for &i in &ids {
                let s = space.score_item(&q, i);
                assert!((s - a[(i - target.start) as usize]).abs() < 1e-4, "{name}: space score of {i}");
            }
        }
        // ids beyond the fitted items are errors naming the item
        let err = loaded.score(&[(n + 3, 1.0)], target.clone(), &mut a).unwrap_err().to_string();
        assert!(err.contains(&(n + 3).to_string()), "{name}: {err}");
        assert!(loaded.score(&history, target.start..n + 1, &mut vec![0f32; (n + 1 - target.start) as usize]).is_err());
        assert!(loaded.score_ids(&history, &[n], &mut [0f32]).is_err());
    }
    // a blend saved before weights per history bucket, for short histories and for returning
    // shoppers (one weight vector, no `item_cases` in its config) still loads, as a
    // cold-start-only blend
    let fitted = by_name("blend:items=0:short=0", 1, 7).unwrap().fit(&data).unwrap();
    let dir = tempfile::tempdir().unwrap();
    fitted.save(dir.path()).unwrap();
    let meta_path = dir.path().join("model.json");
    let mut meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&meta_path).unwrap()).unwrap();
    assert_eq!(meta["extra"].as_array().unwrap().len(), 1, "one vector without history buckets");
    meta["extra"] = meta["extra"][0].clone();
    let config = meta["config"].as_object_mut().expect("a config object");
    assert!(config.remove("item_cases").is_some(), "the config names item_cases");
    assert!(config.remove("folds").is_some(), "the config names folds");
    assert!(config.remove("short_history").is_some(), "the config names short_history");
    std::fs::write(&meta_path, serde_json::to_string(&meta).unwrap()).unwrap();
    let loaded = warmstart_models::load(dir.path(), None).unwrap();
    let (mut a, mut b) = (vec![0f32; target.len()], vec![0f32; target.len()]);
    fitted.score(&history, target.clone(), &mut a).unwrap();
    loaded.score(&history, target.clone(), &mut b).unwrap();
    assert_eq!(a, b, "a single-vector blend artifact scores as before");
    assert_eq!(loaded.name(), "blend:folds=1:items=0:short=0", "saved before folds: fitted on one");

    // a damaged artifact is an error naming the file
    let dir = tempfile::tempdir().unwrap();
    by_name("itemknn", 1, 7).unwrap().fit(&data).unwrap().save(dir.path()).unwrap();
    std::fs::write(dir.path().join("arrays.safetensors"), b"garbage").unwrap();
    let err = warmstart_models::load(dir.path(), None).err().unwrap().to_string();
    assert!(err.contains("arrays.safetensors"), "{err}");
    std::fs::write(dir.path().join("model.json"), b"{}").unwrap();
    assert!(warmstart_models::load(dir.path(), None).is_err());
}

/// Cross-fitting: every fold's validation users are disjoint and each fold's cases count, so
/// two folds choose the weights on twice the cases of one; the notes say what was chosen.
#[test]
fn cross_fitted_folds_choose_the_weights_on_every_folds_cases() {
    let (d, v, m) = world();
    let data = TrainData { dataset: &d, matrix: &m, item_vectors: Some(&v) };
    let cases = |name: &str| -> usize {
        let fitted = by_name(name, 1, 7).unwrap().fit(&data).unwrap();
        let notes = fitted.fit_notes();
        assert_eq!(
            notes.len(),
            1,
            "{name}: one weight vector without returning shoppers or short histories: {notes:?}"
        );
        assert!(notes[0].starts_with("cold-start weights itemknn "), "{name}: {}", notes[0]);
        let n = notes[0].split(" hidden-shop cases").next().unwrap().rsplit(' ').next().unwrap();
        n.parse().unwrap_or_else(|_| panic!("{name}: {}", notes[0]))
    };
    let one = cases("blend:folds=1:items=0:short=0");
    assert!(one >= 10, "{one} cases");
    assert_eq!(cases("blend:folds=2:items=0:short=0"), 2 * one);
    assert_eq!(cases("blend:validation=0.2:folds=2:items=0:short=0"), 4 * one);
    // by default a second vector serves short histories, chosen on the cut cases too
    let notes = by_name("blend:validation=0.2:folds=2:items=0", 1, 7).unwrap().fit(&data).unwrap().fit_notes();
    assert!(notes.len() == 2 && notes[1].starts_with("short-history weights "), "{notes:?}");
    assert!(notes[1].contains("cut from longer histories"), "{}", notes[1]);
    // more folds than the validation share allows are refused, naming the parameter
    for bad in ["blend:folds=0", "blend:validation=0.3", "blend:folds=11"] {
        let err = by_name(bad, 1, 7).err().unwrap_or_else(|| panic!("{bad} must be refused")).to_string();
        assert!(err.contains("folds"), "{bad}: {err}");
    }
}

/// A member that scores every validation case alike (brand-kNN where no product has a brand)
/// would only rescale the others: it keeps weight 0, and the notes say why.
#[test]
fn a_member_silent_on_validation_keeps_weight_zero() {
    let cold_start_note = |d: &warmstart_core::Dataset| -> String {
        let (_, v, m) = world();
        let data = TrainData { dataset: d, matrix: &m, item_vectors: Some(&v) };
        let fitted = by_name("blend:members=itemknn+pop+brandknn:folds=1:items=0:short=0", 1, 7).unwrap();
        fitted.fit(&data).unwrap().fit_notes().swap_remove(0)
    };
    let (mut d, _, _) = world();
    let with_brands = cold_start_note(&d);
    for p in &mut d.products {
        p.brand = None;
    }
    let note = cold_start_note(&d);
    assert!(note.contains("brandknn 0.00:"), "{note}");
    assert!(note.ends_with("constant on every case, so weight 0: brandknn"), "{note}");
    // with brands it speaks, and nothing is said
    assert!(!with_brands.contains("constant on every case"), "{with_brands}");
}
