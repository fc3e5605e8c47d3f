#!/bin/bash
# pg-down.sh - stop the private PostgreSQL started by pg-up.sh (pg_ctl on /var/lib/jobgate-test/pg only).
#   pg-down.sh           # stop; data is kept, the next pg-up.sh is quick
#   pg-down.sh --purge   # also delete the data dir (next pg-up.sh runs initdb again)
set -euo pipefail
JG_NAME=pg-down
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh"
PURGE=0
for a in "$@"; do
  case "$a" in
    --purge) PURGE=1 ;;
    *) die "unknown option $a (use --purge)" ;;
  esac
done

PGDATA=$JG_VAR/pg
SOCKDIR=$JG_VAR/pg-run
cd /

rm -f "$JG_VAR/pg.env" "$JG_VAR/services.env"   # tests must not think the database is there
if alive "$PGDATA/postmaster.pid" postgres; then
  pid=$(head -n1 "$PGDATA/postmaster.pid")
  BIN=/usr/lib/postgresql/$(cat "$PGDATA/PG_VERSION")/bin
  # fast = roll back open transactions, disconnect clients, shut down cleanly
  if ! runuser -u postgres -- "$BIN/pg_ctl" -D "$PGDATA" -m fast -w -t 30 stop >/dev/null 2>&1; then
    log "pg_ctl stop failed or timed out; stopping postmaster $pid by its pid"
    echo "$pid" >"$JG_RUN/postgres.stop.pid"
    stop_pidfile "$JG_RUN/postgres.stop.pid" postgres 10
  fi
  log "stopped postgres ($pid)"
fi
if [ "$PURGE" = 1 ]; then
  rm -rf "$PGDATA" "$SOCKDIR"
  log "removed $PGDATA"
fi
exit 0
