#!/usr/bin/env python3
"""ANN peers for scripts/bench_ann.sh: hnswlib and faiss IndexHNSWFlat on the files that
`warmstart-ann-bench prepare` wrote (DIR/base.npy, DIR/queries.npy, DIR/gt.npy).

Same parameters (M, efConstruction, efSearch), inner product on the unit-length vectors,
build on --threads threads, queries on ONE thread, best of --repeat timed passes after a
warm-up, recall@k against the same ground truth. One JSON object per line on stdout.

    .venv/bin/python scripts/bench_ann.py DIR --lib hnswlib --m 16 --ef-construction 200 \
        --ef 16,32,64,128,256 --k 10 --threads 2
"""
import argparse
import json
import os
import resource
import time

import numpy as np


def rss_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def recall(found, gt, k):
    hits = 0
    for row, truth in zip(found, gt):
        hits += len(set(int(x) for x in row[:k]) & set(int(x) for x in truth[:k]))
    return hits / (len(gt) * k)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--lib", choices=["hnswlib", "faiss"], required=True)
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=200)
    ap.add_argument("--ef", default="16,32,64,128,256")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    efs = [int(x) for x in a.ef.split(",")]

    base = np.ascontiguousarray(np.load(os.path.join(a.data, "base.npy")), dtype=np.float32)
    queries = np.ascontiguousarray(np.load(os.path.join(a.data, "queries.npy")), dtype=np.float32)
    gt = np.load(os.path.join(a.data, "gt.npy"))
    n, dim = base.shape
    rss_data = rss_kib("VmRSS:")

    if a.lib == "hnswlib":
        import hnswlib

        index = hnswlib.Index(space="ip", dim=dim)
        index.init_index(max_elements=n, M=a.m, ef_construction=a.ef_construction, random_seed=42)
        index.set_num_threads(a.threads)
        t = time.perf_counter()
        index.add_items(base, np.arange(n))
        build_s = time.perf_counter() - t
        index.set_num_threads(1)
        version = getattr(hnswlib, "__version__", "0.8.0")

        def search(ef):
            index.set_ef(max(ef, a.k))
            labels, _ = index.knn_query(queries, k=a.k, num_threads=1)
            return labels
    else:
        import faiss

        faiss.omp_set_num_threads(a.threads)
        index = faiss.IndexHNSWFlat(dim, a.m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = a.ef_construction
        t = time.perf_counter()
        index.add(base)
        build_s = time.perf_counter() - t
        faiss.omp_set_num_threads(1)
        version = faiss.__version__

        def search(ef):
            index.hnsw.efSearch = max(ef, a.k)
            _, labels = index.search(queries, a.k)
            return labels

    print(json.dumps({"lib": a.lib, "version": version, "event": "build", "n": n, "dim": dim, "m": a.m,
                      "ef_construction": a.ef_construction, "threads": a.threads, "build_s": round(build_s, 2)}),
          flush=True)
    del base
    for ef in efs:
        search(ef)  # warm-up
        best = float("inf")
        for _ in range(max(1, a.repeat)):
            t = time.perf_counter()
            found = search(ef)
            best = min(best, time.perf_counter() - t)
        print(json.dumps({"lib": a.lib, "event": "search", "ef": ef, "k": a.k, "recall": round(recall(found, gt, a.k), 4),
                          "qps": round(len(queries) / best, 1), "queries": len(queries)}), flush=True)
    print(json.dumps({"lib": a.lib, "event": "memory", "rss_after_data_kib": rss_data, "rss_kib": rss_kib("VmRSS:"),
                      "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}), flush=True)


if __name__ == "__main__":
    main()
