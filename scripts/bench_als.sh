#!/usr/bin/env bash
# ALS (and BPR) speed and accuracy: warmstart vs implicit 0.7.3 on the same training matrix
# and the same test cases, in one run. Prints seconds per iteration, the ratio, and NDCG@10.
#
#   scripts/bench_als.sh            # ALS on movielens-100k and amazon-art-office
#   MODEL=bpr scripts/bench_als.sh  # BPR instead
#   MODEL=bpr THREADS=1 ITERATIONS=100 PARAMS="negatives=popularity reg=0.01" scripts/bench_als.sh
#                                   # the same work: warmstart's BPR drawing negatives as
#                                   # implicit does, at implicit's λ, one thread each
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${WARMSTART_DATA:-$(cd .. && pwd)/shared/data}"
MODEL="${MODEL:-als}"
THREADS="${THREADS:-2}"       # on both sides
ITERATIONS="${ITERATIONS:-15}" # on both sides
WORK="${BENCH_DIR:-target/bench}"
mkdir -p "$WORK"
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import implicit, threadpoolctl" 2>/dev/null; then
  python3 -m venv .venv
  .venv/bin/pip install -q implicit==0.7.3 scipy numpy threadpoolctl
fi
cargo build --release -q --bin warmstart --bin warmstart-bench
STORE="$WORK/store.sqlite"
./target/release/warmstart --store "$STORE" ingest movielens-100k "$DATA/movielens-100k" >/dev/null
./target/release/warmstart --store "$STORE" ingest amazon-art-office "$DATA/amazon-art-office" >/dev/null
export OPENBLAS_NUM_THREADS=1
printf '%-34s %-10s %12s %12s %8s %10s %10s\n' dataset model "ours s/it" "implicit s/it" ratio "ours ndcg" "impl ndcg"
for spec in "movielens-100k random" "amazon-art-office cold-start"; do
  set -- $spec
  out="$WORK/$1"
  params=()
  for p in ${PARAMS:-}; do params+=(--param "$p"); done
  ours=$(./target/release/warmstart-bench "$MODEL" --store "$STORE" --dataset "$1" --protocol "$2" --out "$out" --threads "$THREADS" --iterations "$ITERATIONS" "${params[@]}")
  theirs=$(.venv/bin/python scripts/bench_als.py "$out" --model "$MODEL" --threads "$THREADS" --iterations "$ITERATIONS" 2>/dev/null)
  python3 - "$1" "$ours" "$theirs" <<'PY'
import json, sys
name, a, b = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
ratio = a["seconds_per_iteration_median"] / b["seconds_per_iteration_median"]
theirs = "n/a" if b["ndcg@10"] is None else f'{b["ndcg@10"]:.4f}'
print(f'{name + " (" + a["task"] + ")":<34} {a["model"]:<10} {a["seconds_per_iteration_median"]:12.4f} {b["seconds_per_iteration_median"]:12.4f} {ratio:8.2f} {a["ndcg@10"]:10.4f} {theirs:>10}')
PY
done
echo "ratio = ours / implicit (below 1 means warmstart is faster); matrix sizes in $WORK/*/train.coo"
