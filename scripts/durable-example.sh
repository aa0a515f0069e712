#!/usr/bin/env bash
# Runs the durable grace-period manager (examples/src/bin/grace_period_durable.rs) as two
# replicas against a throwaway PostgreSQL server, for RUN_SECONDS (default 15), then prints the
# orders and the published events and removes the server.
#
#   scripts/durable-example.sh
#
# Needs `initdb` and `pg_ctl` (Debian's `postgresql` package; installed when missing and
# running as root).
set -euo pipefail
cd "$(dirname "$0")/.."

find_bin() {
  if command -v initdb >/dev/null; then dirname "$(command -v initdb)"; return; fi
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1
}
BIN=$(find_bin || true)
if [ -z "$BIN" ] || [ ! -x "$BIN/initdb" ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql
    BIN=$(find_bin)
  else
    echo "initdb not found: install PostgreSQL (apt-get install postgresql)" >&2; exit 1
  fi
fi
as_server() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

DIR=$(mktemp -d /tmp/hosted-example-pg.XXXXXX)
[ "$(id -u)" = 0 ] && chown postgres "$DIR"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cleanup() {
  kill "${PIDS[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  as_server "$BIN/pg_ctl" -D "$DIR/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
PIDS=()
trap cleanup EXIT
as_server "$BIN/initdb" -D "$DIR/data" -A trust -U postgres --no-sync >/dev/null
as_server "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w \
  -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1" start >/dev/null
URL="postgres://postgres@127.0.0.1:$PORT/postgres"
echo "PostgreSQL on $URL"

cargo build -q -p hosted-examples --bin grace_period_durable
export HOSTED_DURABLE__URL=$URL HOSTED_GRACE_PERIOD__SECONDS=${GRACE_SECONDS:-5} \
  HOSTED_GRACE_PERIOD__DEMO_ORDERS=true
for replica in 1 2; do
  target/debug/grace_period_durable > >(sed "s/^/[replica $replica] /") 2>&1 &
  PIDS+=($!)
done
sleep "${RUN_SECONDS:-15}"
kill -TERM "${PIDS[@]}" 2>/dev/null || true
wait || true
PIDS=()
PSQL=$(command -v psql || ls /usr/lib/postgresql/*/bin/psql | sort -V | tail -1)
"$PSQL" -h 127.0.0.1 -p "$PORT" -U postgres -c \
  "SELECT id, status, confirmed_at FROM orders ORDER BY id" \
  -c "SELECT order_id, job, published_at FROM published_events ORDER BY order_id"
