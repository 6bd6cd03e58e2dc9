#!/usr/bin/env bash
# Metric agreement with an independent implementation: evaluates real models on real data,
# writes TREC run/qrels files, and checks every value with pytrec_eval (installed into .venv).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${WARMSTART_DATA:-$(cd .. && pwd)/shared/data}"
if ! .venv/bin/python -c "import pytrec_eval" 2>/dev/null; then
  python3 -m venv .venv
  .venv/bin/pip install -q pytrec-eval-terrier
fi
# the test profile: reuses what `cargo test` just built (the dev profile would compile candle again)
cargo build -q --profile test --bin warmstart
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
BIN=./target/debug/warmstart
$BIN --store "$WORK/s.sqlite" ingest movielens-100k "$DATA/movielens-100k" >/dev/null
$BIN --store "$WORK/s.sqlite" ingest amazon-art-office "$DATA/amazon-art-office" >/dev/null
$BIN --store "$WORK/s.sqlite" --json eval --protocol random --dataset movielens-100k --models pop,als --k 1,5,10,20 \
  --trec-dir "$WORK/trec" --trec-cases 300 --runs-dir "$WORK/runs" >/dev/null
$BIN --store "$WORK/s.sqlite" --json eval --protocol cold-start --dataset amazon-art-office --models pop,itemknn --k 5,10 \
  --trec-dir "$WORK/trec" --trec-cases 25 --runs-dir "$WORK/runs" >/dev/null
.venv/bin/python scripts/check_metrics.py "$WORK/trec"
