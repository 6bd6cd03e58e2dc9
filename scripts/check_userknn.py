"""An independent user-kNN in NumPy/SciPy, on the training matrix and test cases that
`warmstart-bench` exports, against warmstart's own per-case NDCG@10 of `userknn` on the same
task: a check that the Rust model computes what its documentation says.

    python3 scripts/check_userknn.py EXPORT_DIR RUN_DIR [--task NAME] [--k 800] [--shrink 0] [--exp 0.5]

EXPORT_DIR holds train.coo, cases.jsonl and target.json (`warmstart-bench als --out DIR`);
RUN_DIR is a `warmstart eval` run holding `userknn` in per_case.csv. Definition: a history's
cosine with every training user (dot / (norms' product + shrink)), the k most similar users
among those with an item in the target shop (ties: lower user index), each weighted by its
similarity to the power exp; an item's score is the weighted sum of its neighbours' values.
"""

import argparse
import csv
import json
import math
import sys

import numpy as np
import scipy.sparse as sp


def ndcg10(scores, relevant, start):
    # ties go to the lower item index: stable sort of the negated scores
    order = np.argsort(-scores, kind="stable")[:10]
    rel = {r - start for r in relevant}
    dcg = sum(1.0 / math.log2(k + 2) for k, i in enumerate(order) if i in rel)
    ideal = sum(1.0 / math.log2(k + 2) for k in range(min(len(rel), 10)))
    return dcg / ideal if ideal else 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("export")
    ap.add_argument("run")
    ap.add_argument("--task", default="amazon-art→amazon-office")
    ap.add_argument("--k", type=int, default=800)
    ap.add_argument("--shrink", type=float, default=0.0)
    ap.add_argument("--exp", type=float, default=0.5)
    a = ap.parse_args()

    with open(f"{a.export}/train.coo") as f:
        n_users, n_items, _ = map(int, f.readline().split())
        rows, cols, vals = [], [], []
        for line in f:
            u, i, v = line.split()
            rows.append(int(u))
            cols.append(int(i))
            vals.append(float(v))
    x = sp.csr_matrix((vals, (rows, cols)), shape=(n_users, n_items), dtype=np.float64)
    target = json.load(open(f"{a.export}/target.json"))
    start, end = target["start"], target["end"]
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    in_target = np.asarray((x[:, start:end] != 0).sum(axis=1)).ravel() > 0
    xt = x[:, start:end]

    ours = {}
    with open(f"{a.run}/per_case.csv") as f:
        for r in csv.DictReader(f):
            if r["model"] == "userknn" and r["task"] == a.task:
                ours[int(r["case"])] = float(r["ndcg@10"])
    if not ours:
        sys.exit(f"no userknn rows for task {a.task} in {a.run}/per_case.csv")

    theirs = []
    with open(f"{a.export}/cases.jsonl") as f:
        for line in f:
            c = json.loads(line)
            h = np.zeros(n_items)
            h[c["history"]] = 1.0
            hn = math.sqrt(len(c["history"]))
            dots = x @ h
            sims = dots / (hn * norms + a.shrink)
            # candidates: users who share an item and bought in the target shop
            cand = np.flatnonzero((dots != 0) & in_target)
            order = cand[np.lexsort((cand, -sims[cand]))][: a.k]
            w = np.maximum(sims[order], 0.0) ** a.exp
            scores = np.asarray(xt[order].T @ w).ravel()
            theirs.append(ndcg10(scores, c["relevant"], start))
    theirs = np.array(theirs)
    mine = np.array([ours[i] for i in range(len(theirs))])
    differ = int(np.sum(np.abs(theirs - mine) > 1e-9))
    print(json.dumps({
        "task": a.task,
        "cases": len(theirs),
        "ndcg@10 numpy": round(float(theirs.mean()), 6),
        "ndcg@10 warmstart": round(float(mine.mean()), 6),
        "cases that differ": differ,
        "largest per-case difference": round(float(np.max(np.abs(theirs - mine))), 6),
    }))


if __name__ == "__main__":
    main()
