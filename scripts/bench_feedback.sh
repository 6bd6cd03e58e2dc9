#!/usr/bin/env bash
# What the online loop costs the service, side by side in one run (release build, wrk on
# loopback, the same 2 cores): /v1/recommend on a server with feedback off, against a server
# recording every list (session ids) and one also assigning experiment variants; alternating
# rounds. Then /v1/events throughput: batches of 50 unique purchase events.
#
#   scripts/bench_feedback.sh      # uses the store of scripts/simulate.sh (run it first)
#
# Env: STORE (target/simulate/store.sqlite), CONNS (4), DURATION (15s), ROUNDS (2), PORT (18091).
set -euo pipefail
cd "$(dirname "$0")/.."
STORE="${STORE:-target/simulate/store.sqlite}"
CONNS="${CONNS:-4}"
DURATION="${DURATION:-15s}"
ROUNDS="${ROUNDS:-2}"
PORT="${PORT:-18091}"
WORK=target/bench-feedback
mkdir -p "$WORK"
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
[ -f "$STORE" ] || { echo "no store at $STORE: run scripts/simulate.sh first" >&2; exit 1; }
cargo build --release -q --bin warmstart
BIN=target/release/warmstart
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true' EXIT
start() { # port args...
  local port=$1; shift
  rm -f "$WORK/ready-$port"
  $BIN --store "$STORE" serve --addr "127.0.0.1:$port" --dataset amazon-art-office --ready-file "$WORK/ready-$port" "$@" \
    2> "$WORK/serve-$port.log" > /dev/null &
  PIDS+=($!)
  for _ in $(seq 600); do [ -s "$WORK/ready-$port" ] && return; sleep 0.1; done
  echo "server on $port did not start" >&2; cat "$WORK/serve-$port.log" >&2; exit 1
}
start "$PORT" --no-feedback
start $((PORT + 1)) --experiments examples/experiments.toml
python3 scripts/serve_bodies.py store "$STORE" amazon-art amazon-office "$WORK/plain.lua" --model als > /dev/null
python3 scripts/serve_bodies.py store "$STORE" amazon-art amazon-office "$WORK/session.lua" --model als --session > /dev/null
python3 scripts/serve_bodies.py store "$STORE" amazon-art amazon-office "$WORK/experiment.lua" --experiment office-ab > /dev/null
run() { # label port lua
  wrk -t1 -c"$CONNS" -d2s -s "$3" "http://127.0.0.1:$2" > /dev/null
  wrk -t1 -c"$CONNS" -d"$DURATION" --latency -s "$3" "http://127.0.0.1:$2" | python3 scripts/wrk_row.py "$1" "" ""
}
echo "load: wrk -t1 -c$CONNS -d$DURATION, $(nproc) cores, Amazon Art → Office, top-10, 20-product histories"
echo
echo "| /v1/recommend | | | | req/s | p50 ms | p99 ms |"
echo "|---|---|---|---|---|---|---|"
for r in $(seq "$ROUNDS"); do
  run "feedback off, ALS (round $r)" "$PORT" "$WORK/plain.lua"
  run "recorded with a session, ALS (round $r)" $((PORT + 1)) "$WORK/session.lua"
  run "experiment office-ab: assigned + recorded (round $r)" $((PORT + 1)) "$WORK/experiment.lua"
done
# at the service's target load (2,000 req/s, below saturation): the latency recording adds
if command -v hey >/dev/null; then
  for f in plain session experiment; do sed -n '3p' "$WORK/$f.lua" | sed -e 's/^\[==\[//' -e 's/\]==\],$//' > "$WORK/$f.json"; done
  fixed() { # label port body
    hey -z "$DURATION" -c 4 -q 500 -m POST -T application/json -D "$3" "http://127.0.0.1:$2/v1/recommend" |
      python3 scripts/hey_row.py "$1"
  }
  echo
  echo "| /v1/recommend at 2,000 req/s (hey -c4 -q500) | req/s | p50 ms | p99 ms | statuses |"
  echo "|---|---|---|---|---|"
  for r in $(seq "$ROUNDS"); do
    fixed "feedback off (round $r)" "$PORT" "$WORK/plain.json"
    fixed "recorded with a session (round $r)" $((PORT + 1)) "$WORK/session.json"
    fixed "experiment: assigned + recorded (round $r)" $((PORT + 1)) "$WORK/experiment.json"
  done
fi
cat > "$WORK/events.lua" <<'LUA'
local n = 0
local headers = { ["Content-Type"] = "application/json" }
local ids = { "19237", "18914", "18647", "B00006IFHD" }
request = function()
  n = n + 1
  local ev = {}
  for i = 1, 50 do
    ev[i] = string.format('{"type":"purchase","key":"bench-%d-%d-%d","session":"bench-session-%06d","site":"amazon-office","id":"%s"}',
      os.time(), n, i, n % 100000, ids[(i % #ids) + 1])
  end
  return wrk.format("POST", "/v1/events", headers, '{"events":[' .. table.concat(ev, ",") .. ']}')
end
LUA
# the ids must be products of amazon-office in this store
python3 - "$STORE" "$WORK/events.lua" <<'PY'
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
ids = [r[0] for r in db.execute("SELECT p.external_id FROM products p JOIN sites s ON s.id = p.site_id WHERE s.key = 'amazon-office' LIMIT 4")]
lua = open(sys.argv[2]).read().replace('"19237", "18914", "18647", "B00006IFHD"', ", ".join(f'"{i}"' for i in ids))
open(sys.argv[2], "w").write(lua)
PY
echo
echo "| /v1/events (50 per batch) | | | | batches/s | p50 ms | p99 ms |"
echo "|---|---|---|---|---|---|---|"
run "50 purchases per batch" $((PORT + 1)) "$WORK/events.lua"
python3 - "$STORE" <<'PY'
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
print("events stored:", db.execute("SELECT COUNT(*) FROM events WHERE key LIKE 'bench-%'").fetchone()[0],
      "| recommendations recorded:", db.execute("SELECT COUNT(*) FROM recommendations").fetchone()[0])
PY
grep -h "unrecorded\|error" "$WORK"/serve-*.log | head -5 || true
