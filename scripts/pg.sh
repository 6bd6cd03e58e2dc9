#!/usr/bin/env bash
# A local PostgreSQL 16 with pgvector for the PostgreSQL backend's tests and benchmarks,
# from the PyPI package `pgserver` (Debian bookworm has no pgvector), run as a non-root user
# (PostgreSQL refuses root: when run as root, a `warmstart-pg` system user is created).
#
#   eval "$(scripts/pg.sh start)"   # starts it; exports WARMSTART_TEST_POSTGRES (admin URL)
#   scripts/pg.sh url               # prints that URL
#   scripts/pg.sh bin               # prints the directory of psql, pg_ctl, …
#   scripts/pg.sh stop
#
# Settings: WARMSTART_PG_PORT (54329), WARMSTART_PG_DIR (/tmp/warmstart-pg-$PORT),
# WARMSTART_PG_VENV (where pgserver is installed: .venv-pg, or /tmp/warmstart-pg-venv as root,
# so that the unprivileged server user can reach its binaries whatever the checkout's mode).
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${WARMSTART_PG_PORT:-54329}
DIR=${WARMSTART_PG_DIR:-/tmp/warmstart-pg-$PORT}
if [ "$(id -u)" -eq 0 ]; then VENV=${WARMSTART_PG_VENV:-/tmp/warmstart-pg-venv}; else VENV=${WARMSTART_PG_VENV:-$PWD/.venv-pg}; fi
URL="postgres://postgres@127.0.0.1:$PORT/postgres"

bin_dir() {
  "$VENV/bin/python" -c 'import pgserver, os; print(os.path.join(os.path.dirname(pgserver.__file__), "pginstall", "bin"))' 2>/dev/null
}

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u warmstart-pg -- "$@"
  else
    "$@"
  fi
}

case "${1:-}" in
  start)
    if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import pgserver" 2>/dev/null; then
      python3 -m venv "$VENV" >&2
      "$VENV/bin/pip" install -q pgserver==0.1.4 >&2
    fi
    BIN=$(bin_dir)
    if [ "$(id -u)" -eq 0 ] && ! id warmstart-pg >/dev/null 2>&1; then
      useradd --system --no-create-home --shell /usr/sbin/nologin warmstart-pg >&2
    fi
    mkdir -p "$DIR"
    [ "$(id -u)" -eq 0 ] && chown warmstart-pg "$DIR"
    if [ ! -f "$DIR/data/PG_VERSION" ]; then
      as_owner "$BIN/initdb" -D "$DIR/data" -U postgres --auth=trust -E UTF8 --locale=C >"$DIR/initdb.log" 2>&1 \
        || { cat "$DIR/initdb.log" >&2; exit 1; }
    fi
    if ! as_owner "$BIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
      as_owner "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 \
        -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=on" start >&2 \
        || { tail -20 "$DIR/server.log" >&2; exit 1; }
    fi
    "$BIN/psql" "$URL" -qAtc "SELECT 1" >/dev/null
    echo "export WARMSTART_TEST_POSTGRES=$URL"
    ;;
  url)
    echo "$URL"
    ;;
  bin)
    bin_dir
    ;;
  stop)
    BIN=$(bin_dir)
    as_owner "$BIN/pg_ctl" -D "$DIR/data" -m fast stop >&2 || true
    ;;
  *)
    echo "usage: $0 start|url|stop" >&2
    exit 2
    ;;
esac
