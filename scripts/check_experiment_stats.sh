#!/usr/bin/env bash
# The A/B report's statistics against an independent computation: a short simulation drives a
# real server (test-profile binary, Amazon Art–Office, pop and ALS), then every CTR, standard
# error, lift, p-value and sample-ratio test of `warmstart experiments report` is recomputed
# with NumPy/SciPy from the exported per-session counts (installed into .venv).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${WARMSTART_DATA:-$(cd .. && pwd)/shared/data}"
if ! .venv/bin/python -c "import scipy, numpy" 2>/dev/null; then
  python3 -m venv .venv
  .venv/bin/pip install -q numpy scipy
fi
cargo build -q --profile test --bin warmstart
BIN=./target/debug/warmstart
WORK=$(mktemp -d)
PID=""
trap '[ -n "$PID" ] && kill $PID 2>/dev/null; rm -rf "$WORK"' EXIT
S="$WORK/s.sqlite"
$BIN --store "$S" ingest amazon-art-office "$DATA/amazon-art-office" >/dev/null
for m in pop itemknn als; do $BIN --store "$S" train "$m" --dataset amazon-art-office >/dev/null; done
$BIN --store "$S" serve --addr 127.0.0.1:0 --experiments examples/experiments.toml --ready-file "$WORK/ready" 2>"$WORK/log" &
PID=$!
for _ in $(seq 600); do [ -s "$WORK/ready" ] && break; sleep 0.1; done
[ -s "$WORK/ready" ] || { cat "$WORK/log"; exit 1; }
COMMON=(--server "http://$(cat "$WORK/ready")" --dataset amazon-art-office --site amazon-office
        --experiments-file examples/experiments.toml --sessions 3000 --seed 3)
$BIN --store "$S" --json experiments simulate "${COMMON[@]}" --experiment office-ab --out "$WORK/ab" >/dev/null
$BIN --store "$S" --json experiments simulate "${COMMON[@]}" --experiment office-broken --drop als=0.3333 --out "$WORK/broken" >/dev/null
for key in office-ab office-broken; do
  $BIN --store "$S" --json experiments report --experiments examples/experiments.toml --key "$key" \
    --sessions-csv "$WORK/$key.csv" > "$WORK/$key.json"
  .venv/bin/python scripts/check_experiment_stats.py "$WORK/$key.json" "$WORK/$key.csv"
done
# the broken client must trip the sample-ratio check
.venv/bin/python -c "import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r['sample_ratio']['mismatch'] else 'the 60/40 split was not flagged')" "$WORK/office-broken.json"
