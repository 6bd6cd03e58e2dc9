#!/usr/bin/env bash
# Approximate nearest-neighbour search: warmstart-index vs hnswlib and faiss (IndexHNSWFlat) on the
# same vectors, queries and exact ground truth, in one run. Build uses all cores; queries run on
# one thread. Prints recall@10 and queries/s per ef side by side, and ours/hnswlib QPS at matched
# recall (hnswlib's QPS interpolated at our recall).
#
#   scripts/bench_ann.sh                      # 100,000 x 384 synthetic (clustered) vectors
#   N=1000000 scripts/bench_ann.sh            # the full-size run
#   VECTORS=target/bench-ann/minilm.npy scripts/bench_ann.sh   # real vectors (scripts/export_vectors.py)
#
# Env: N (100000), DIM (384), SEED (42), QUERIES (1000), M (16), EFC (200), EF (16,32,64,128,256),
#      ROUNDS (2: ours, hnswlib, faiss, ours, hnswlib, faiss; best QPS per ef), PEERS (hnswlib faiss),
#      THREADS (build threads, all cores).
set -euo pipefail
cd "$(dirname "$0")/.."
N="${N:-100000}"
DIM="${DIM:-384}"
SEED="${SEED:-42}"
QUERIES="${QUERIES:-1000}"
M="${M:-16}"
EFC="${EFC:-200}"
EF="${EF:-16,32,64,128,256}"
ROUNDS="${ROUNDS:-2}"
PEERS="${PEERS:-hnswlib faiss}"
THREADS="${THREADS:-$(nproc)}"
WORK="${BENCH_DIR:-target/bench-ann}"
if [ -n "${VECTORS:-}" ]; then
  DATA="$WORK/$(basename "$VECTORS" .npy)-q$QUERIES"
else
  DATA="$WORK/synthetic-$N-$DIM-s$SEED-q$QUERIES"
fi
mkdir -p "$DATA"
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import hnswlib, faiss, numpy" 2>/dev/null; then
  python3 -m venv .venv
  .venv/bin/pip install -q numpy faiss-cpu hnswlib
fi
cargo build --release -q -p warmstart-index --bin warmstart-ann-bench
BIN=target/release/warmstart-ann-bench
if [ ! -f "$DATA/gt.npy" ]; then
  if [ -n "${VECTORS:-}" ]; then
    $BIN prepare --vectors "$VECTORS" --queries "$QUERIES" --seed "$SEED" --out "$DATA"
  else
    $BIN prepare --synthetic "$N" --dim "$DIM" --seed "$SEED" --queries "$QUERIES" --out "$DATA"
  fi
fi
export OMP_NUM_THREADS="$THREADS"
LOG="$DATA/results.jsonl"
: > "$LOG"
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round/$ROUNDS: warmstart" >&2
  $BIN run --data "$DATA" --m "$M" --ef-construction "$EFC" --ef "$EF" --threads "$THREADS" | sed "s/^{/{\"round\":$round,/" | tee -a "$LOG"
  for peer in $PEERS; do
    echo "round $round/$ROUNDS: $peer" >&2
    .venv/bin/python scripts/bench_ann.py "$DATA" --lib "$peer" --m "$M" --ef-construction "$EFC" --ef "$EF" \
      --threads "$THREADS" | sed "s/^{/{\"round\": $round, /" | tee -a "$LOG"
  done
done
python3 - "$LOG" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
libs = []
for r in rows:
    if r["lib"] not in libs:
        libs.append(r["lib"])
search, build, mem = {}, {}, {}
for r in rows:
    lib = r["lib"]
    if r["event"] == "search":
        prev = search.setdefault(lib, {}).get(r["ef"])
        if prev is None or r["qps"] > prev["qps"]:
            search[lib][r["ef"]] = r
    elif r["event"] == "build":
        build.setdefault(lib, []).append(r)
    elif r["event"] == "memory":
        mem.setdefault(lib, []).append(r)
n = build[libs[0]][0]["n"]; dim = build[libs[0]][0]["dim"]
print(f"\nn={n} dim={dim} M={build[libs[0]][0]['m']} efConstruction={build[libs[0]][0]['ef_construction']}; "
      "recall@10 vs exact; single-thread QPS (best of rounds)")
def interp(curve, rec):
    """hnswlib's QPS at recall `rec`: on the upper envelope (best QPS reaching at least that
    recall), linear between points; None when hnswlib never reaches `rec`."""
    pts = sorted(set(curve))
    env = sorted({(r, max(q for r2, q in pts if r2 >= r)) for r, _ in pts})
    if not env or rec > env[-1][0]:
        return None
    if rec <= env[0][0]:
        return env[0][1]
    for (r0, q0), (r1, q1) in zip(env, env[1:]):
        if r0 <= rec <= r1:
            return q0 + (q1 - q0) * (rec - r0) / (r1 - r0)
    return None
head = f"{'ef':>5}" + "".join(f" {l + ' rec':>13} {l + ' QPS':>13}" for l in libs) + f" {'ours/hnswlib@recall':>20} {'ours/hnswlib@ef':>16}"
print(head)
hcurve = [(r["recall"], r["qps"]) for r in search.get("hnswlib", {}).values()]
for ef in sorted(search[libs[0]]):
    line = f"{ef:>5}"
    for l in libs:
        r = search.get(l, {}).get(ef)
        line += f" {r['recall']:>13.4f} {r['qps']:>13.1f}" if r else f" {'-':>13} {'-':>13}"
    ours = search["warmstart"][ef]
    h = interp(hcurve, ours["recall"]) if hcurve else None
    line += f" {ours['qps'] / h:>20.2f}" if h else f" {'n/a':>20}"
    same = search.get("hnswlib", {}).get(ef)
    line += f" {ours['qps'] / same['qps']:>16.2f}" if same else f" {'n/a':>16}"
    print(line)
print("@recall: hnswlib's best QPS reaching our recall (interpolated); @ef: same ef")
print()
for l in libs:
    b = min(x["build_s"] for x in build[l])
    m = max(x["peak_rss_kib"] for x in mem.get(l, [{"peak_rss_kib": 0}]))
    d = max(x.get("rss_after_data_kib", 0) for x in mem.get(l, [{}]))
    extra = ""
    if l == "warmstart":
        extra = f", index {mem[l][0]['index_bytes'] / 2**20:.1f} MiB, file {build[l][0]['file_bytes'] / 2**20:.1f} MiB"
    print(f"{l:>10}: build {b:.1f}s ({build[l][0]['threads']} threads), peak RSS {m / 1024:.0f} MiB "
          f"(after loading data {d / 1024:.0f} MiB){extra}")
for l in libs:
    ok = [r for r in search[l].values() if r["recall"] >= 0.95]
    if ok:
        best = max(ok, key=lambda r: r["qps"])
        print(f"{l:>10}: best QPS at recall@10 >= 0.95: {best['qps']:.0f} (ef {best['ef']}, recall {best['recall']:.4f})")
PY
