#!/usr/bin/env bash
# pgvector's HNSW (inside the PostgreSQL store) against warmstart's in-process HNSW on the same
# vectors, queries and exact ground truth as scripts/bench_ann.sh, in one run: build time,
# recall@10, p50/p99 and queries/s of one client per search breadth (ef), rounds alternating.
#
#   scripts/bench_pgvector.sh                     # 100,000 x 384 clustered synthetic vectors
#   N=20000 scripts/bench_pgvector.sh             # smaller
#
# Env: N (100000), DIM (384), SEED (42), QUERIES (1000), M (16), EFC (200), EF (16,32,64,128), ROUNDS (2).
set -euo pipefail
cd "$(dirname "$0")/.."
N="${N:-100000}"
DIM="${DIM:-384}"
SEED="${SEED:-42}"
QUERIES="${QUERIES:-1000}"
M="${M:-16}"
EFC="${EFC:-200}"
EF="${EF:-16,32,64,128}"
ROUNDS="${ROUNDS:-2}"
DATA="${BENCH_DIR:-target/bench-ann}/synthetic-$N-$DIM-s$SEED-q$QUERIES"
eval "$(scripts/pg.sh start)"
cargo build --release -q -p warmstart-index --bin warmstart-ann-bench
cargo build --release -q -p warmstart-cli --bin warmstart-bench-pgvector
mkdir -p "$DATA"
[ -f "$DATA/gt.npy" ] || target/release/warmstart-ann-bench prepare --synthetic "$N" --dim "$DIM" --seed "$SEED" --queries "$QUERIES" --out "$DATA"
LOG="$DATA/pgvector.jsonl"
target/release/warmstart-bench-pgvector --data "$DATA" --m "$M" --ef-construction "$EFC" --ef "$EF" --rounds "$ROUNDS" | tee "$LOG" >&2
python3 - "$LOG" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
build = {r["backend"]: r for r in rows if r["event"] == "build"}
b = build["pgvector"]
print(f"n={b['n']} dim={b['dim']} M={b['m']} efConstruction={b['ef_construction']}; recall@10 vs exact; one client, best round")
print(f"build: warmstart {build['warmstart']['seconds']:.1f} s ({build['warmstart']['threads']} threads), "
      f"pgvector {b['seconds']:.1f} s (after {b['load_seconds']:.1f} s loading the vectors through the store)")
best = {}
for r in rows:
    if r["event"] == "search":
        key = (r["backend"], r["ef"])
        if key not in best or r["qps"] > best[key]["qps"]:
            best[key] = r
print()
print("| ef | warmstart recall | pgvector recall | warmstart p99 ms | pgvector p99 ms | warmstart q/s | pgvector q/s | q/s ratio |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|")
for ef in sorted({k[1] for k in best}):
    w, p = best[("warmstart", ef)], best[("pgvector", ef)]
    print(f"| {ef} | {w['recall']:.3f} | {p['recall']:.3f} | {w['p99_ms']:.3f} | {p['p99_ms']:.2f} | {w['qps']:,.0f} | {p['qps']:,.0f} | {w['qps']/p['qps']:.1f}× |")
PY
