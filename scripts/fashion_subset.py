#!/usr/bin/env python3
"""A smaller copy of the shared fashion-products data: the first N catalog rows of
styles.csv and their photos, for the browser extension's tests and demos.

    scripts/fashion_subset.py N OUT_DIR [DATA_DIR]   (DATA_DIR default: $WARMSTART_DATA or ../shared/data)
"""
import csv
import io
import os
import sys
import tarfile

n, out = int(sys.argv[1]), sys.argv[2]
data = sys.argv[3] if len(sys.argv) > 3 else os.environ.get(
    "WARMSTART_DATA", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))
src = os.path.join(data, "fashion-products")
os.makedirs(out, exist_ok=True)
ids = set()
with open(os.path.join(src, "styles.csv"), newline="", encoding="utf-8") as f, \
        open(os.path.join(out, "styles.csv"), "w", newline="", encoding="utf-8") as g:
    r, w = csv.reader(f), csv.writer(g, lineterminator="\n")
    w.writerow(next(r))
    for row in r:
        if len(ids) >= n:
            break
        ids.add(row[0])
        w.writerow(row)
wanted = {f"images/{i}.jpg" for i in ids}
with tarfile.open(os.path.join(src, "images.tar.gz"), "r:gz") as t, \
        tarfile.open(os.path.join(out, "images.tar.gz"), "w:gz") as o:
    for m in t:
        if m.name in wanted:
            o.addfile(m, io.BytesIO(t.extractfile(m).read()))
print(f"{len(ids)} products in {out}", file=sys.stderr)
