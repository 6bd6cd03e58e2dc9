#!/usr/bin/env bash
# Stateless `warmstart serve` replicas on one PostgreSQL database behind haproxy (loopback,
# the same 2 cores): /v1/recommend req/s and p99 with one, two and three replicas (and one
# replica without the proxy), rounds alternating; then a replica killed with SIGKILL under a
# recommend → impression-event load: which requests failed and when, and whether every event
# the service acknowledged is in the database.
#
#   scripts/bench_replicas.sh          # builds its PostgreSQL store (Amazon Art/Office; pop, item-kNN, ALS) once
#
# Env: CONNS (8), DURATION (15s), ROUNDS (2), PORT (18100), KILL_RUN (20 s), WORKERS (8).
set -euo pipefail
cd "$(dirname "$0")/.."
CONNS="${CONNS:-8}"
DURATION="${DURATION:-15s}"
ROUNDS="${ROUNDS:-2}"
PORT="${PORT:-18100}"
KILL_RUN="${KILL_RUN:-20}"
WORKERS="${WORKERS:-8}"
DATA="${WARMSTART_DATA:-../shared/data}"
WORK=target/bench-replicas
mkdir -p "$WORK"
for tool in haproxy wrk; do command -v $tool >/dev/null || { echo "$tool is missing: apt-get install $tool" >&2; exit 1; }; done
eval "$(scripts/pg.sh start)"
BASE=${WARMSTART_TEST_POSTGRES%/*}
URL="$BASE/bench_replicas"
PSQL="$(scripts/pg.sh bin)/psql"
cargo build --release -q --bin warmstart
BIN=$PWD/target/release/warmstart
export WARMSTART_HOME=$PWD/$WORK/home
if [ ! -f "$WORK/store.ready" ]; then
  "$PSQL" "$WARMSTART_TEST_POSTGRES" -qc "DROP DATABASE IF EXISTS bench_replicas WITH (FORCE)" -c "CREATE DATABASE bench_replicas"
  $BIN --store "$URL" ingest amazon-art-office "$DATA/amazon-art-office" > /dev/null
  for m in pop itemknn als; do $BIN --store "$URL" train "$m" --dataset amazon-art-office > /dev/null; done
  rm -f "$WORK/bodies.sqlite"*
  $BIN --store "$WORK/bodies.sqlite" ingest amazon-art-office "$DATA/amazon-art-office" > /dev/null
  touch "$WORK/store.ready"
fi
python3 scripts/serve_bodies.py store "$WORK/bodies.sqlite" amazon-art amazon-office "$WORK/recommend.lua" --model als > /dev/null
python3 - "$WORK/recommend.lua" "$WORK/bodies.json" <<'PY'
import json, sys
lines = [l for l in open(sys.argv[1]) if l.startswith("[==[")]
json.dump([json.loads(l.strip().removeprefix("[==[").removesuffix("]==],")) for l in lines], open(sys.argv[2], "w"))
PY

PIDS=()
HAPROXY=""
trap 'kill "${PIDS[@]}" $HAPROXY 2>/dev/null || true' EXIT
replica() { # n → pid in PIDS[n-1]
  local port=$((PORT + $1))
  rm -f "$WORK/ready-$port"
  $BIN --store "$URL" serve --addr "127.0.0.1:$port" --ready-file "$WORK/ready-$port" 2> "$WORK/serve-$port.log" > /dev/null &
  PIDS[$(($1 - 1))]=$!
  for _ in $(seq 600); do [ -s "$WORK/ready-$port" ] && return; sleep 0.1; done
  echo "replica $1 did not start" >&2; cat "$WORK/serve-$port.log" >&2; exit 1
}
proxy() { # number of replicas
  [ -n "$HAPROXY" ] && kill "$HAPROXY" 2>/dev/null && wait "$HAPROXY" 2>/dev/null || true
  {
    echo "global"
    echo "  maxconn 4096"
    echo "defaults"
    echo "  mode http"
    echo "  timeout connect 1s"
    echo "  timeout client 30s"
    echo "  timeout server 30s"
    echo "  option http-keep-alive"
    echo "frontend fe"
    echo "  bind 127.0.0.1:$PORT"
    echo "  default_backend replicas"
    echo "backend replicas"
    echo "  balance roundrobin"
    echo "  option httpchk GET /readyz"
    for n in $(seq "$1"); do echo "  server r$n 127.0.0.1:$((PORT + n)) check inter 200ms fall 1 rise 2"; done
  } > "$WORK/haproxy-$1.cfg"
  haproxy -f "$WORK/haproxy-$1.cfg" > "$WORK/haproxy.log" 2>&1 &
  HAPROXY=$!
  sleep 1
}
for n in 1 2 3; do replica "$n"; done
run() { # label url
  wrk -t1 -c"$CONNS" -d2s -s "$WORK/recommend.lua" "$2" > /dev/null
  wrk -t1 -c"$CONNS" -d"$DURATION" --latency -s "$WORK/recommend.lua" "$2" | python3 scripts/wrk_row.py "$1" als ""
}
echo "load: wrk -t1 -c$CONNS -d$DURATION, $(nproc) cores, Amazon Art → Office, ALS top-10, 20-product histories, PostgreSQL 16 on loopback"
echo
echo "| /v1/recommend | model | | | req/s | p50 ms | p99 ms |"
echo "|---|---|---|---|---|---|---|"
for r in $(seq "$ROUNDS"); do
  run "1 replica, no proxy (round $r)" "http://127.0.0.1:$((PORT + 1))"
  for n in 1 2 3; do
    proxy "$n"
    run "$n replica(s) behind haproxy (round $r)" "http://127.0.0.1:$PORT"
  done
done

# SIGKILL one of three replicas in the middle of a recommend → event load
proxy 3
before=$("$PSQL" "$URL" -qAtc "SELECT count(*) FROM event_keys")
python3 scripts/replica_load.py "http://127.0.0.1:$PORT" "$KILL_RUN" "$WORKERS" "$WORK/bodies.json" "$WORK/acked.txt" > "$WORK/kill.json" &
LOAD=$!
sleep "$(echo "$KILL_RUN / 2" | bc -l)"
kill -9 "${PIDS[1]}"
echo
echo "SIGKILL to replica 2 at t=$(echo "$KILL_RUN / 2" | bc)s of a ${KILL_RUN}s load ($WORKERS workers, recommend → impression event)"
wait "$LOAD"
"$PSQL" "$URL" -qc "CREATE TEMP TABLE acked(key text)" -c "\\copy acked FROM '$WORK/acked.txt'" \
  -c "SELECT count(*) AS acknowledged, count(k.key) AS stored, count(*) - count(k.key) AS lost FROM acked a LEFT JOIN event_keys k ON k.key = a.key WHERE a.key <> ''"
after=$("$PSQL" "$URL" -qAtc "SELECT count(*) FROM event_keys")
python3 - "$WORK/kill.json" "$KILL_RUN" "$before" "$after" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); half = float(sys.argv[2]) / 2
print("requests by outcome:", json.dumps(d["statuses"], sort_keys=True))
print("events acknowledged:", d["acked"], "| event keys added to the database:", int(sys.argv[4]) - int(sys.argv[3]))
print("rejected events by code:", d["rejected"])
ts = [f[0] for f in d["failures"]]
if ts:
    print(f"failures: {d['failure_count']}, at t = {min(ts):.2f}–{max(ts):.2f} s (kill at {half:.2f} s)")
else:
    print("failures: none")
PY
