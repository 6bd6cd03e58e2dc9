#!/usr/bin/env bash
# The online loop measured offline: simulated shoppers (the served models' hold-out users of
# Amazon Office, who click the Office products they really bought, with position bias) drive
# the real HTTP server through the experiments of examples/experiments.toml.
#
#   scripts/simulate.sh
#   → target/simulate/out/ab/         A/B/C of pop, item-kNN, ALS against offline NDCG@10
#     target/simulate/out/bandit/     Thompson sampling against a fixed split (ctr_over_time.png)
#     target/simulate/out/broken/     a client losing a third of one arm's events (sample-ratio check)
#     target/simulate/out/fashion/    persona shoppers (data/personas.toml) new to a fashion shop
#   each with simulation.json and <experiment>/report.html, report.json, ctr*.png
#
# Env: SESSIONS (20000 per experiment), SEED (1), WINDOW (1000), PORT (18090), DATA
#      (../shared/data). Builds stores under target/simulate/ on first use (ingest Amazon
#      Art–Office, train pop, itemknn, als with the default 10 % hold-out; the fashion catalog
#      dealt into 3 shops with 100 persona shoppers per persona, trained alike).
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
FASHION="$WORK/fashion.sqlite"
if ! ls "$FASHION.models/artifacts/fashion-products/als" >/dev/null 2>&1; then
  rm -rf "$FASHION"*
  $BIN --store "$FASHION" ingest fashion-products "$DATA/fashion-products" --shops 3
  $BIN --store "$FASHION" personas --save-only --per-persona 100
  for m in pop itemknn als; do $BIN --store "$FASHION" train "$m" --dataset fashion-products; done
fi
rm -rf "$OUT"; mkdir -p "$OUT"
PID=""
trap '[ -n "$PID" ] && kill $PID 2>/dev/null || true' EXIT
serve() { # store → $URL
  # a fresh event history per run: the same seed gives the same figures
  python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); [c.execute(f'DELETE FROM {t}') for t in ('events','event_keys','recommendations')]; c.commit()" "$1"
  [ -n "$PID" ] && kill $PID 2>/dev/null && wait $PID 2>/dev/null || true
  rm -f "$WORK/ready"
  $BIN --store "$1" serve --addr "127.0.0.1:$PORT" --experiments examples/experiments.toml \
    --ready-file "$WORK/ready" 2>"$WORK/server.log" &
  PID=$!
  for _ in $(seq 600); do [ -s "$WORK/ready" ] && break; sleep 0.1; done
  [ -s "$WORK/ready" ] || { echo "server did not start:"; tail "$WORK/server.log"; exit 1; }
  URL="http://$(cat "$WORK/ready")"
}
serve "$STORE"
COMMON=(--server "$URL" --dataset amazon-art-office --site amazon-office --experiments-file examples/experiments.toml
        --sessions "$SESSIONS" --seed "$SEED" --window "$WINDOW")
$BIN --store "$STORE" experiments simulate "${COMMON[@]}" --experiment office-ab --out "$OUT/ab"
$BIN --store "$STORE" experiments simulate "${COMMON[@]}" --experiment office-fixed --experiment office-bandit --out "$OUT/bandit"
$BIN --store "$STORE" experiments simulate "${COMMON[@]}" --experiment office-broken --drop als=0.3333 --out "$OUT/broken"
serve "$FASHION"
$BIN --store "$FASHION" experiments simulate --server "$URL" --dataset fashion-products --site fashion-shop-3 \
  --experiments-file examples/experiments.toml --sessions "$SESSIONS" --seed "$SEED" --window "$WINDOW" \
  --ground-truth personas --experiment fashion-ab --out "$OUT/fashion"
echo "results: $OUT/{ab,bandit,broken,fashion}/simulation.json, $OUT/bandit/ctr_over_time.png, $OUT/*/*/report.html"
