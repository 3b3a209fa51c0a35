#!/usr/bin/env bash
# Starts a throwaway PostgreSQL (Debian's package) in directory $1 (a new
# temporary one if not given) on a free loopback port, and prints its DSN on
# stdout. Used by .ci/run; handy locally:
#   export FIBERAUTH_TEST_POSTGRES_DSN=$(bash .ci/postgres.sh)
# Stop it with: pg_ctl -D DIR/data stop (DIR is in the log line).
set -euo pipefail

if ! ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "postgres.sh: PostgreSQL is not installed and this is not root" >&2; exit 1
  fi
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
dir=${1:-$(mktemp -d /tmp/fiberauth-pg.XXXXXX)}
port=54329
while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
  port=$((port + 1))
done

as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}
[ "$(id -u)" -eq 0 ] && chown postgres "$dir"
as_pg "$bin/initdb" -D "$dir/data" -A trust -U postgres --no-sync >"$dir/initdb.log" 2>&1
as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
  -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >&2
echo "postgres.sh: PostgreSQL running from $dir on 127.0.0.1:$port" >&2
echo "postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
