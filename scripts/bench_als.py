#!/usr/bin/env python3
"""Train implicit's ALS (or BPR) on the matrix exported by `warmstart-bench` and evaluate
NDCG@10 on the same cases, so both implementations are compared in one run.

usage: bench_als.py DIR [--model als|bpr] [--factors 64] [--iterations 15] [--threads 2]
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import scipy.sparse as sp


def load(d):
    with open(os.path.join(d, "train.coo")) as f:
        n_rows, n_cols, nnz = map(int, f.readline().split())
        data = np.loadtxt(f, dtype=np.float64, ndmin=2)
    m = sp.csr_matrix((data[:, 2], (data[:, 0].astype(np.int64), data[:, 1].astype(np.int64))), shape=(n_rows, n_cols))
    cases = [json.loads(line) for line in open(os.path.join(d, "cases.jsonl"))]
    target = json.load(open(os.path.join(d, "target.json")))
    return m, cases, target


def ndcg_at(ranked, relevant, k):
    rel = set(relevant)
    dcg = sum(1.0 / math.log2(r + 2) for r, i in enumerate(ranked[:k]) if i in rel)
    idcg = sum(1.0 / math.log2(r + 2) for r in range(min(len(rel), k)))
    return dcg / idcg if idcg else 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--model", default="als")
    ap.add_argument("--factors", type=int, default=64)
    ap.add_argument("--iterations", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--regularization", type=float, default=0.01)
    ap.add_argument("--alpha", type=float, default=1.0)
    a = ap.parse_args()
    from threadpoolctl import threadpool_limits
    import implicit
    m, cases, target = load(a.dir)
    times = []
    if a.model == "als":
        from implicit.cpu.als import AlternatingLeastSquares
        # implicit's confidence is alpha * value; we feed 1 + alpha * r with its alpha = 1,
        # which is Hu-Koren-Volinsky's c = 1 + alpha * r, the formulation warmstart uses.
        conf = m.copy()
        conf.data = 1.0 + a.alpha * conf.data
        model = AlternatingLeastSquares(factors=a.factors, regularization=a.regularization, alpha=1.0,
                                        iterations=a.iterations, num_threads=a.threads, random_state=42,
                                        calculate_training_loss=False)
        last = [time.perf_counter()]

        def cb(iteration, elapsed, loss):
            now = time.perf_counter()
            times.append(now - last[0])
            last[0] = now

        with threadpool_limits(limits=1, user_api="blas"):  # implicit asks for single-threaded BLAS
            last[0] = time.perf_counter()
            model.fit(conf.astype(np.float32).tocsr(), show_progress=False, callback=cb)
    else:
        from implicit.cpu.bpr import BayesianPersonalizedRanking
        conf = m.astype(np.float32).tocsr()
        model = BayesianPersonalizedRanking(factors=a.factors, iterations=a.iterations, num_threads=a.threads, random_state=42)
        last = [time.perf_counter()]

        def cb(epoch, elapsed, *progress):  # per epoch, as warmstart times its epochs
            now = time.perf_counter()
            times.append(now - last[0])
            last[0] = now

        last[0] = time.perf_counter()
        model.fit(conf, show_progress=False, callback=cb)
    start, end = target["start"], target["end"]
    items = np.asarray(model.item_factors)
    ndcgs = []
    for c in cases:
        hist = sp.csr_matrix((np.full(len(c["history"]), 1.0 + (a.alpha if a.model == "als" else 0.0), dtype=np.float32),
                              (np.zeros(len(c["history"]), dtype=np.int64), np.asarray(c["history"], dtype=np.int64))),
                             shape=(1, m.shape[1]))
        if a.model == "als":
            u = np.asarray(model.recalculate_user(0, hist)).ravel()
        else:
            # implicit's BPR cannot fold in a history: it scores with the factors it trained
            # for the case's user row (which holds the same visible history; warmstart folds
            # that history in), so NDCG@10 still says whether both learnt the same
            if c.get("user") is None or c["user"] >= m.shape[0] or m[c["user"]].nnz == 0:
                continue
            u = np.asarray(model.user_factors[c["user"]]).ravel()
        scores = items[start:end] @ u
        for e in c["exclude"]:
            if start <= e < end:
                scores[e - start] = -np.inf
        top = np.argsort(-scores, kind="stable")[:10] + start
        ndcgs.append(ndcg_at(list(top), c["relevant"], 10))
    times.sort()
    print(json.dumps({
        "model": "implicit-" + a.model, "implicit_version": implicit.__version__,
        "seconds_per_iteration_median": times[len(times) // 2],
        "seconds_per_iteration_mean": sum(times) / len(times),
        "ndcg@10": float(np.mean(ndcgs)) if ndcgs else None, "cases": len(ndcgs),
    }))


if __name__ == "__main__":
    sys.exit(main())
