#!/usr/bin/env bash
# Start or stop a throwaway PostgreSQL server on 127.0.0.1 for the store tests.
#   scripts/pg_test_server.sh start   -> prints the SQLAlchemy URL to export as CANDLEWISE_TEST_PG_URL
#   scripts/pg_test_server.sh stop
# Installs Debian's postgresql package when it is missing (needs root, as in CI).
set -euo pipefail
PORT="${CANDLEWISE_PG_PORT:-55432}"
DIR="${CANDLEWISE_PG_DIR:-/tmp/candlewise-pg}"

find_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
  done
  return 1
}

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "${1:-}" in
  start)
    if ! BIN=$(find_bin); then
      echo "installing postgresql from Debian packages..." >&2
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq >&2 && apt-get install -y -qq postgresql >&2
      BIN=$(find_bin)
    fi
    if [ ! -f "$DIR/PG_VERSION" ]; then
      rm -rf "$DIR"; mkdir -p "$DIR"
      [ "$(id -u)" = 0 ] && chown postgres: "$DIR"
      as_pg "$BIN/initdb" -D "$DIR" -U postgres --auth=trust -E UTF8 >/dev/null
    fi
    if ! as_pg "$BIN/pg_ctl" -D "$DIR" status >/dev/null 2>&1; then
      as_pg "$BIN/pg_ctl" -D "$DIR" -l "$DIR/server.log" -w -t 30 \
        -o "-h 127.0.0.1 -p $PORT -k /tmp -c fsync=off -c full_page_writes=off" start >/dev/null
    fi
    as_pg "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname='candlewise_test'" | grep -q 1 ||
      as_pg "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres candlewise_test
    echo "postgresql+psycopg://postgres@127.0.0.1:$PORT/candlewise_test"
    ;;
  stop)
    BIN=$(find_bin) || exit 0
    as_pg "$BIN/pg_ctl" -D "$DIR" -m fast stop >/dev/null 2>&1 || true
    ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
