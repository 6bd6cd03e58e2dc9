#!/usr/bin/env python3
"""Cross-check warmstart's metrics against pytrec_eval (trec_eval) on the same run and
qrels files, written by `warmstart eval --trec-dir DIR`. Every per-query value of P@k,
recall@k, NDCG@k, MAP@k and reciprocal rank must agree to 1e-6.

usage: check_metrics.py DIR
"""
import glob
import json
import os
import sys

import pytrec_eval

TOL = 1e-6
OURS_TO_TREC = {"precision": "P", "recall": "recall", "ndcg": "ndcg_cut", "map": "map_cut"}


def read_run(path):
    run = {}
    for line in open(path):
        q, _, doc, _rank, score, _tag = line.split()
        run.setdefault(q, {})[doc] = float(score)
    return run


def read_qrels(path):
    qrels = {}
    for line in open(path):
        q, _, doc, rel = line.split()
        qrels.setdefault(q, {})[doc] = int(rel)
    return qrels


def main(d):
    runs = sorted(glob.glob(os.path.join(d, "*.run")))
    if not runs:
        print(f"no run files in {d}", file=sys.stderr)
        return 2
    passed = failed = 0
    for run_path in runs:
        base = run_path[: -len(".run")]
        ours = json.load(open(base + ".metrics.json"))
        tag = os.path.basename(base).split("-", 1)[1]
        qrels = read_qrels(os.path.join(d, tag + ".qrels"))
        run = read_run(run_path)
        ks = sorted({int(k.split("@")[1]) for q in ours.values() for k in q if "@" in k})
        cut = ",".join(map(str, ks))
        measures = {f"P.{cut}", f"recall.{cut}", f"ndcg_cut.{cut}", f"map_cut.{cut}", "recip_rank"}
        trec = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
        worst = 0.0
        compared = 0
        for q, metrics in ours.items():
            for name, value in metrics.items():
                if name == "mrr":
                    ref = trec[q]["recip_rank"]
                elif "@" in name and name.split("@")[0] in OURS_TO_TREC:
                    m, k = name.split("@")
                    ref = trec[q][f"{OURS_TO_TREC[m]}_{k}"]
                else:
                    continue
                diff = abs(value - ref)
                worst = max(worst, diff)
                compared += 1
                if diff > TOL:
                    failed += 1
                    print(f"MISMATCH {os.path.basename(run_path)} {q} {name}: ours {value} trec {ref}")
                else:
                    passed += 1
        print(f"{os.path.basename(run_path)}: {len(ours)} queries, {compared} values, max |diff| {worst:.2e}")
    print(f"metrics: {passed} passed, {failed} failed")
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
