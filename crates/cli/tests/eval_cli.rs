//! `warmstart eval` end to end on real data: JSON shape, run directory, and the baselines'
//! ordering that the leaderboard claims.

mod common;
use common::*;

fn eval_json(store: &std::path::Path, runs: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let out = warmstart(store).arg("--json").arg("eval").args(args).arg("--runs-dir").arg(runs).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn leaderboards_on_movielens_and_amazon() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s.sqlite");
    let runs = dir.path().join("runs");
    let data = data_dir();
    warmstart(&store).args(["ingest", "movielens-100k"]).arg(data.join("movielens-100k")).assert().success();
    warmstart(&store).args(["ingest", "amazon-art-office"]).arg(data.join("amazon-art-office")).assert().success();

    let v = eval_json(
        &store,
        &runs,
        &[
            "--protocol",
            "random",
            "--dataset",
            "movielens-100k",
            "--models",
            "random,pop,itemknn,als,bpr",
            "--k",
            "5,10",
        ],
    );
    let ndcg = |m: &str| v["results"][m]["random→movielens-100k"]["ndcg@10"].as_f64().unwrap();
    for m in ["pop", "itemknn", "als", "bpr"] {
        assert!(ndcg(m) > 5.0 * ndcg("random"), "{m}: {} vs random {}", ndcg(m), ndcg("random"));
    }
    assert!(ndcg("itemknn") > ndcg("pop") && ndcg("als") > ndcg("pop"));
    for key in [
        "precision@5",
        "recall@10",
        "f1@10",
        "map@10",
        "hit@5",
        "mrr",
        "auc",
        "coverage@10",
        "diversity@10",
        "novelty@10",
    ] {
        assert!(v["results"]["als"]["random→movielens-100k"][key].is_number(), "missing {key}");
    }
    let segs = &v["details"][0]["segments"];
    assert!(segs.as_object().unwrap().keys().any(|k| k.starts_with("category=")));

    let v = eval_json(
        &store,
        &runs,
        &[
            "--protocol",
            "cold-start",
            "--models",
            "random,pop,itemknn",
            "--k",
            "10",
            "--write-cases",
            "--default-model",
            "itemknn",
        ],
    );
    for dir in ["amazon-art→amazon-office", "amazon-office→amazon-art"] {
        let n = |m: &str| v["results"][m][dir]["ndcg@10"].as_f64().unwrap();
        assert!(n("itemknn") > n("pop"), "{dir}: itemknn {} pop {}", n("itemknn"), n("pop"));
        assert!(n("pop") > 5.0 * n("random"), "{dir}");
        assert_eq!(v["details"].as_array().unwrap().iter().find(|d| d["task"] == dir).unwrap()["cases"], 1000);
    }
    assert!(v["notes"].to_string().contains("published"));
    assert!(!v["comparisons"].as_array().unwrap().is_empty());
    // run directory with every artefact
    let run = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("cold-start"))
        .unwrap();
    for f in ["results.json", "results.csv", "per_case.csv", "leaderboard.md", "config.json"] {
        assert!(run.join(f).is_file(), "missing {f}");
    }
    // every model's metrics on every case, and the cases themselves
    let per_case = std::fs::read_to_string(run.join("per_case.csv")).unwrap();
    assert_eq!(per_case.lines().count(), 1 + 3 * 2000, "3 models × 2 directions × 1,000 cases");
    assert!(per_case.lines().next().unwrap().contains("ndcg@10"));
    let cases = std::fs::read_to_string(run.join("cases/amazon-art_to_amazon-office.test.tsv")).unwrap();
    assert_eq!(cases.lines().count(), 1001);
    let first: Vec<&str> = cases.lines().nth(1).unwrap().split('\t').collect();
    assert_eq!((first[0], first[3]), ("0", "site"), "full ranking: the whole target catalog");
    assert!(run.join("cases/amazon-office_to_amazon-art.valid.tsv").is_file());
    // the default against the best single model in each history segment
    let checks = v["segment_checks"].as_array().unwrap();
    assert!(checks.iter().any(|c| c["segment"] == "history=6+" && c["default"] == "itemknn"), "{checks:?}");
    assert!(checks.iter().all(|c| c["best"] != "itemknn"));
    assert!(std::fs::read_to_string(run.join("leaderboard.md")).unwrap().contains("per history segment"));

    // bad requests fail cleanly
    let out = warmstart(&store).args(["eval", "--models", "nope"]).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("unknown model `nope`"));
    let out = warmstart(&store).args(["eval", "--dataset", "missing"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("no dataset `missing`"));
    let out =
        warmstart(&store).args(["eval", "--protocol", "cold-start", "--dataset", "movielens-100k"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least two sites"));
}
