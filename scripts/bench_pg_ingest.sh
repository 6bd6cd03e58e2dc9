#!/usr/bin/env bash
# Ingest of the shared datasets into SQLite and into PostgreSQL, side by side in one run
# (rounds alternate; each round starts from an empty store), and a check that both stores
# then report identical `warmstart stats` (all but the location line).
#
#   scripts/bench_pg_ingest.sh [ROUNDS]      # needs scripts/pg.sh (started here if needed)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
DATA=${WARMSTART_DATA:-../shared/data}
eval "$(scripts/pg.sh start)"
ADMIN=$WARMSTART_TEST_POSTGRES
BASE=${ADMIN%/*}
PSQL="$(scripts/pg.sh bin)/psql"
cargo build --release -q -p warmstart-cli
WS=target/release/warmstart
OUT=target/bench_pg_ingest
mkdir -p "$OUT"
strip_store() { python3 -c "import json,sys; d=json.load(sys.stdin); d.pop('store'); print(json.dumps(d, sort_keys=True))"; }
now() { date +%s.%N; }

echo "| dataset | products | interactions | SQLite s | PostgreSQL s | PG / SQLite | stats identical |"
echo "|---|---:|---:|---:|---:|---:|---|"
for ds in amazon-art-office:amazon-art-office cdrib:cdrib-game-video movielens-100k:movielens-100k fashion-products:fashion-products; do
  src=${ds%%:*}; dir=$DATA/${ds#*:}
  [ -d "$dir" ] || { echo "skip $dir (missing)" >&2; continue; }
  ts=(); tp=()
  for r in $(seq "$ROUNDS"); do
    rm -f "$OUT/$src.sqlite" "$OUT/$src.sqlite-"*
    rm -rf "$OUT/$src.sqlite.models"
    t0=$(now); $WS --store "$OUT/$src.sqlite" ingest "$src" "$dir" --json >"$OUT/$src.sqlite.json"; t1=$(now)
    ts+=("$(echo "$t1 - $t0" | bc -l)")
    db="bench_ingest_${src//-/_}"
    "$PSQL" "$ADMIN" -qAtc "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null 2>&1
    t0=$(now); $WS --store "$BASE/$db" ingest "$src" "$dir" --json >"$OUT/$src.pg.json"; t1=$(now)
    tp+=("$(echo "$t1 - $t0" | bc -l)")
  done
  med() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
  s=$(med "${ts[@]}"); p=$(med "${tp[@]}")
  $WS --store "$OUT/$src.sqlite" stats --json | strip_store >"$OUT/$src.sqlite.stats"
  $WS --store "$BASE/$db" stats --json | strip_store >"$OUT/$src.pg.stats"
  same=no; cmp -s "$OUT/$src.sqlite.stats" "$OUT/$src.pg.stats" && same=yes
  read -r np ni < <(python3 -c "import json; d=json.load(open('$OUT/$src.sqlite.stats')); print(d['totals']['products'], d['totals']['interactions'])")
  printf '| %s | %s | %s | %.2f | %.2f | %.2f | %s |\n' "$src" "$np" "$ni" "$s" "$p" "$(echo "$p / $s" | bc -l)" "$same"
done
