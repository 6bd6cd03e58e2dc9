#!/usr/bin/env bash
# The online loop measured offline: simulated shoppers (the served models' hold-out users of
# Amazon Office, who click the Office products they really bought, with position bias) drive
# the real HTTP server through the experiments of examples/experiments.toml.
#
#   scripts/simulate.sh
#   → target/simulate/out/ab/         A/B/C of pop, item-kNN, ALS against offline NDCG@10
#     target/simulate/out/bandit/     Thompson sampling against a fixed split (ctr_over_time.png)
#     target/simulate/out/broken/     a client losing a third of one arm's events (sample-ratio check)
#   each with simulation.json and <experiment>/report.html, report.json, ctr*.png
#
# Env: SESSIONS (20000 per experiment), SEED (1), WINDOW (1000), PORT (18090), DATA
#      (../shared/data). Builds a store under target/simulate/ on first use (ingest Amazon
#      Art–Office, train pop, itemknn, als with the default 10 % hold-out).
set -euo pipefail
cd "$(dirname "$0")/.."
SESSIONS="${SESSIONS:-20000}"
SEED="${SEED:-1}"
WINDOW="${WINDOW:-1000}"
PORT="${PORT:-18090}"
DATA="${DATA:-${WARMSTART_DATA:-$(cd .. && pwd)/shared/data}}"
WORK=target/simulate
STORE="$WORK/store.sqlite"
OUT="$WORK/out"
cargo build --release -q --bin warmstart
BIN=target/release/warmstart
mkdir -p "$WORK"
if ! ls "$STORE.models/artifacts/amazon-art-office/als" >/dev/null 2>&1; then
  rm -rf "$STORE"*
  $BIN --store "$STORE" ingest amazon-art-office "$DATA/amazon-art-office"
  for m in pop itemknn als; do $BIN --store "$STORE" train "$m" --dataset amazon-art-office; done
fi
# a fresh event history per run: the same seed gives the same figures
sqlite3 "$STORE" "DELETE FROM events; DELETE FROM event_keys; DELETE FROM recommendations;" 2>/dev/null \
  || python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); [c.execute(f'DELETE FROM {t}') for t in ('events','event_keys','recommendations')]; c.commit()" "$STORE"
rm -rf "$OUT"; mkdir -p "$OUT"
$BIN --store "$STORE" serve --addr "127.0.0.1:$PORT" --dataset amazon-art-office \
  --experiments examples/experiments.toml --ready-file "$WORK/ready" 2>"$WORK/server.log" &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
rm -f "$WORK/ready"
for _ in $(seq 600); do [ -s "$WORK/ready" ] && break; sleep 0.1; done
[ -s "$WORK/ready" ] || { echo "server did not start:"; tail "$WORK/server.log"; exit 1; }
URL="http://$(cat "$WORK/ready")"
COMMON=(--server "$URL" --dataset amazon-art-office --site amazon-office --experiments-file examples/experiments.toml
        --sessions "$SESSIONS" --seed "$SEED" --window "$WINDOW")
$BIN --store "$STORE" experiments simulate "${COMMON[@]}" --experiment office-ab --out "$OUT/ab"
$BIN --store "$STORE" experiments simulate "${COMMON[@]}" --experiment office-fixed --experiment office-bandit --out "$OUT/bandit"
$BIN --store "$STORE" experiments simulate "${COMMON[@]}" --experiment office-broken --drop als=0.3333 --out "$OUT/broken"
echo "results: $OUT/{ab,bandit,broken}/simulation.json, $OUT/bandit/ctr_over_time.png, $OUT/*/*/report.html"
