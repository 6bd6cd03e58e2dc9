#!/usr/bin/env bash
# The recommendation service under load: `warmstart serve` (release build) on loopback, `wrk`
# posting top-10 requests with 20-product histories of known products from another shop.
# Prints req/s, p50 and p99 latency per scenario and model, requests that embed unknown products
# separately, and the server's peak memory (VmHWM).
#
#   scripts/bench_serve.sh                          # real catalogs: the demo store of `pipeline`
#   SCENARIO=synthetic scripts/bench_serve.sh       # a 1,000,000-product synthetic shop
#   SCENARIO=synthetic N=100000 scripts/bench_serve.sh
#
# Env: STORE (target/demo/store.sqlite, real), N (1000000, synthetic), MODELS (real: "als
#      content-pop itemknn pop"; synthetic: "als"), CONNS (8), DURATION (20s), THREADS (server
#      workers, 0 = one per core), WRK_THREADS (1), EMBED (2: unknown products per embedding
#      request; 0 skips those runs), PORT (18089).
# Needs: wrk (Debian package), python3. Real: a store with trained artifacts
# (`warmstart pipeline`, or `warmstart train ...`). Synthetic: generated, ingested and trained
# (ALS, no hold-out) under target/bench-serve/ on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
SCENARIO="${SCENARIO:-real}"
CONNS="${CONNS:-8}"
DURATION="${DURATION:-20s}"
THREADS="${THREADS:-0}"
WRK_THREADS="${WRK_THREADS:-1}"
EMBED="${EMBED:-2}"
PORT="${PORT:-18089}"
WORK=target/bench-serve
mkdir -p "$WORK"
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
cargo build --release -q --bin warmstart
BIN=target/release/warmstart

# (source site, target site, label) triples and the store
case "$SCENARIO" in
  real)
    STORE="${STORE:-target/demo/store.sqlite}"
    MODELS="${MODELS:-als content-pop itemknn pop}"
    # source, target, whether its products have text to embed (CDRIB's have no titles)
    PAIRS=("amazon-art amazon-office 1" "amazon-office amazon-art 1" "cdrib-game cdrib-video 0")
    [ -f "$STORE" ] || { echo "no store at $STORE: run warmstart pipeline first (see README)" >&2; exit 1; }
    ;;
  synthetic)
    N="${N:-1000000}"
    MODELS="${MODELS:-als}"
    EMBED=0   # the synthetic catalog has no text encoder
    DATA="$WORK/synthetic-$N"
    STORE="$DATA/store.sqlite"
    PAIRS=("syn-a syn-b 0")
    if [ ! -f "$DATA/histories.json" ]; then
      python3 -c "import numpy" 2>/dev/null && PY=python3 || PY=.venv/bin/python
      $PY scripts/gen_synthetic_shops.py "$DATA" --items "$N" --users $((N / 10))
    fi
    if ! ls "$STORE.models/artifacts/synthetic/als" >/dev/null 2>&1; then
      rm -f "$STORE"*
      $BIN --store "$STORE" ingest jsonl "$DATA/products.jsonl" --dataset synthetic
      $BIN --store "$STORE" ingest jsonl "$DATA/interactions.jsonl" --dataset synthetic
      for m in $MODELS; do $BIN --store "$STORE" train "$m" --dataset synthetic --holdout 0; done
    fi
    ;;
  *) echo "SCENARIO must be real or synthetic" >&2; exit 1 ;;
esac

READY="$WORK/ready-$PORT"
rm -f "$READY"
$BIN --store "$STORE" serve --addr "127.0.0.1:$PORT" --threads "$THREADS" --ready-file "$READY" \
  2> "$WORK/serve-$SCENARIO.log" > /dev/null &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
  [ -f "$READY" ] && break
  kill -0 $SERVER 2>/dev/null || { cat "$WORK/serve-$SCENARIO.log" >&2; exit 1; }
  sleep 0.5
done
[ -f "$READY" ] || { echo "the server did not start" >&2; exit 1; }
URL="http://127.0.0.1:$PORT"
echo "server: $(grep -m1 '^loaded' "$WORK/serve-$SCENARIO.log")"
echo "load: wrk -t$WRK_THREADS -c$CONNS -d$DURATION, server threads ${THREADS/#0/one per core}, $(nproc) cores"

# one wrk run; prints a table row
run() { # label model lua
  local label="$1" model="$2" lua="$3" first retrieval
  first=$(sed -n '3p' "$lua" | sed -e 's/^\[==\[//' -e 's/\]==\],$//')
  retrieval=$(curl -sf "$URL/v1/recommend" -H 'content-type: application/json' -d "$first" |
    python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["retrieval"], len(r["items"]), r["history"]["known"], r["history"]["embedded"])' 2>/dev/null) ||
    { echo "| $label | $model | request failed: $(curl -s "$URL/v1/recommend" -H 'content-type: application/json' -d "$first" | head -c 300)"; return; }
  wrk -t"$WRK_THREADS" -c"$CONNS" -d2s -s "$lua" "$URL" > /dev/null   # warm-up
  wrk -t"$WRK_THREADS" -c"$CONNS" -d"$DURATION" --latency -s "$lua" "$URL" | python3 scripts/wrk_row.py "$label" "$model" "$retrieval"
}

echo
echo "| source → target | model | retrieval | history | req/s | p50 ms | p99 ms |"
echo "|---|---|---|---|---|---|---|"
for pair in "${PAIRS[@]}"; do
  read -r src dst text <<<"$pair"
  served=$(curl -sf "$URL/v1/sites" | python3 -c 'import json,sys; d=sys.argv[1]; print(" ".join(m["model"] for s in json.load(sys.stdin) if s["site"]==d for m in s["models"]))' "$dst")
  for m in $MODELS; do
    [[ " $served " == *" $m "* ]] || continue
    lua="$WORK/$SCENARIO-$src-$dst-$m.lua"
    if [ "$SCENARIO" = real ]; then
      python3 scripts/serve_bodies.py store "$STORE" "$src" "$dst" "$lua" --model "$m" > /dev/null
    else
      python3 scripts/serve_bodies.py histories "$DATA/histories.json" "$dst" "$lua" --model "$m" > /dev/null
    fi
    run "$src → $dst" "$m" "$lua"
    if [ "$EMBED" -gt 0 ] && [ "$text" = 1 ] && [ "$m" = "${MODELS%% *}" ]; then
      lua="$WORK/$SCENARIO-$src-$dst-$m-embed.lua"
      python3 scripts/serve_bodies.py store "$STORE" "$src" "$dst" "$lua" --model "$m" --embed "$EMBED" > /dev/null
      run "$src → $dst" "$m" "$lua"
    fi
  done
done
echo
echo "server peak memory: $(awk '/VmHWM/ {printf "%.0f MiB", $2/1024}' /proc/$SERVER/status)"
