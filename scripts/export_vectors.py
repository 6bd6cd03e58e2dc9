#!/usr/bin/env python3
"""Export stored content vectors to .npy for scripts/bench_ann.sh (VECTORS=OUT.npy).

    python3 scripts/export_vectors.py STORE MODEL OUT.npy
    python3 scripts/export_vectors.py target/demo/store.sqlite all-MiniLM-L6-v2 target/bench-ann/minilm.npy

Reads table `embeddings` (product_id, model, content_hash, dim, dtype, vector) of the warmstart
store with sqlite3 + numpy: `vector` is a little-endian f32 or f16 blob (`dtype`), `dim` values
long. Writes an (n, dim) float32 array in product-id order and prints the count to stderr.
Rows whose blob length does not match dim/dtype are skipped (and counted).
"""
import sqlite3
import sys

import numpy as np


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    store, model, out = sys.argv[1:]
    con = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    rows = con.execute(
        "SELECT dim, dtype, vector FROM embeddings WHERE model = ? ORDER BY product_id", (model,)
    )
    vecs, skipped, dim = [], 0, None
    for d, dtype, blob in rows:
        dt = {"f32": "<f4", "f16": "<f2"}.get(dtype)
        if dt is None or len(blob) != d * np.dtype(dt).itemsize or (dim is not None and d != dim):
            skipped += 1
            continue
        dim = d
        vecs.append(np.frombuffer(blob, dtype=dt).astype(np.float32))
    if not vecs:
        models = [m for (m,) in con.execute("SELECT DISTINCT model FROM embeddings")]
        sys.exit(f"{store}: no vectors for model {model!r} (models present: {models})")
    arr = np.stack(vecs)
    np.save(out, arr)
    print(f"{out}: {arr.shape[0]} x {arr.shape[1]} float32 ({skipped} rows skipped)", file=sys.stderr)


if __name__ == "__main__":
    main()
