#!/usr/bin/env bash
# Soak: `warmstart serve` (release) under continuous load for DURATION (10 minutes), wrk with
# CONNS connections posting real shoppers' 20-product histories (ALS, Amazon Art → Office) — at
# 8 connections about twice the 2,000 req/s target on this 2-core machine. Samples the server's
# resident memory and open file descriptors every 10 s, and fails on any non-2xx answer, socket
# error, memory growth over GROWTH_MIB after the first minute, or file-descriptor growth.
#
#   scripts/soak_serve.sh                       # 10 minutes
#   DURATION=60 scripts/soak_serve.sh           # a short one
#
# Env: STORE (target/demo/store.sqlite, from `warmstart pipeline`), DURATION seconds (600),
#      CONNS (8), MODEL (als), PORT (18095), GROWTH_MIB (64).
set -euo pipefail
cd "$(dirname "$0")/.."
STORE="${STORE:-target/demo/store.sqlite}"
DURATION="${DURATION:-600}"
CONNS="${CONNS:-8}"
MODEL="${MODEL:-als}"
PORT="${PORT:-18095}"
GROWTH_MIB="${GROWTH_MIB:-64}"
WORK=target/bench-serve
mkdir -p "$WORK"
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
[ -f "$STORE" ] || { echo "no store at $STORE: run warmstart pipeline first (see README)" >&2; exit 1; }
cargo build --release -q --bin warmstart
READY="$WORK/soak-ready-$PORT"
rm -f "$READY"
target/release/warmstart --store "$STORE" serve --addr "127.0.0.1:$PORT" --ready-file "$READY" \
  2> "$WORK/soak-serve.log" > /dev/null &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do [ -f "$READY" ] && break; sleep 0.5; done
[ -f "$READY" ] || { echo "the server did not start" >&2; exit 1; }
LUA="$WORK/soak-$MODEL.lua"
python3 scripts/serve_bodies.py store "$STORE" amazon-art amazon-office "$LUA" --model "$MODEL" > /dev/null

sample() { # seconds rss_mib fds
  local rss fds
  rss=$(awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/$SERVER/status")
  fds=$(ls "/proc/$SERVER/fd" | wc -l)
  echo "$1 $rss $fds"
}
SAMPLES="$WORK/soak-samples.txt"
: > "$SAMPLES"
wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -s "$LUA" "http://127.0.0.1:$PORT" > "$WORK/soak-wrk.txt" &
WRK=$!
start=$(date +%s)
while kill -0 $WRK 2>/dev/null; do
  sample $(( $(date +%s) - start )) >> "$SAMPLES"
  sleep 10
done
wait $WRK
sleep 1
sample "end" >> "$SAMPLES"
python3 - "$SAMPLES" "$WORK/soak-wrk.txt" "$GROWTH_MIB" <<'EOF'
import re, sys
samples = [l.split() for l in open(sys.argv[1]) if l.strip()]
wrk = open(sys.argv[2]).read()
growth_limit = float(sys.argv[3])
rows = [(s[0], int(s[1]), int(s[2])) for s in samples]
print("seconds  RSS MiB  open fds")
for t, rss, fds in rows:
    print(f"{t:>7}  {rss:>7}  {fds:>8}")
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", wrk).group(1))
total = int(re.search(r"(\d+) requests in", wrk).group(1))
p = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", wrk, re.M))
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", wrk)
errors = re.search(r"Socket errors: (.*)", wrk)
# growth after the first minute (start-up allocations come and go before it)
warm = [r for r in rows if r[0] == "end" or int(r[0]) >= 60] or rows
growth = max(r[1] for r in warm) - warm[0][1]
fd_growth = rows[-1][2] - rows[0][2]
print(f"{total} requests, {rps:,.0f} req/s, p50 {p['50']}, p99 {p['99']}; non-2xx {bad.group(1) if bad else 0}; "
      f"socket errors {errors.group(1) if errors else 'none'}; peak RSS {max(r[1] for r in rows)} MiB "
      f"(+{growth} MiB after the first minute); open fds {rows[0][2]} → {rows[-1][2]}")
ok = not bad and growth <= growth_limit and fd_growth <= 0
print("soak: ok" if ok else "soak: FAILED")
sys.exit(0 if ok else 1)
EOF
