#!/bin/bash
# pg-up.sh - private PostgreSQL cluster for the jobgate tests (no systemd, no Debian cluster tools).
#
#   data dir     /var/lib/jobgate-test/pg        (initdb as user postgres)
#   listens on   127.0.0.1:55432 only            (non-default port: never clashes with a system 5432)
#   unix socket  /var/lib/jobgate-test/pg-run
#   auth         trust for TCP from 127.0.0.1; peer for the local superuser `postgres` (admin only)
#   role         jobgate / password jobgate, CREATEDB; database jobgate_test owned by it
#   log          /var/log/jobgate-test/postgres.log
#
# Prints the SQLAlchemy URL on stdout and writes it to /var/lib/jobgate-test/pg.env as JOBGATE_TEST_PG_URL.
# Idempotent: a second run only checks (fast). Stop with pg-down.sh.
set -euo pipefail
JG_NAME=pg-up
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh"

PORT=55432
PGDATA=$JG_VAR/pg
SOCKDIR=$JG_VAR/pg-run
PGLOG=$JG_LOG/postgres.log
URL_PLAIN="postgresql://jobgate:jobgate@127.0.0.1:$PORT/jobgate_test"
URL="postgresql+psycopg://jobgate:jobgate@127.0.0.1:$PORT/jobgate_test"
cd /    # runuser -u postgres: initdb/pg_ctl warn if they cannot read the caller's cwd (e.g. /root)

# ---------------------------------------------------------------- 1. binaries
# PG 15 may already be installed (binaries present, no cluster running): then skip apt entirely.
bindir() {
  # the version the data dir was made with wins; else the newest installed
  if [ -s "$PGDATA/PG_VERSION" ] && [ -x "/usr/lib/postgresql/$(cat "$PGDATA/PG_VERSION")/bin/initdb" ]; then
    echo "/usr/lib/postgresql/$(cat "$PGDATA/PG_VERSION")/bin"; return
  fi
  find /usr/lib/postgresql -path '*/bin/initdb' 2>/dev/null | sort -V | tail -n1 | xargs -r dirname
}
BIN=$(bindir)
if [ -z "$BIN" ]; then
  # apt_ensure runs `apt-get update` once first. postinst's own cluster ("main", port 5432) is not ours
  # and is not started where policy-rc.d forbids it.
  apt_ensure postgresql
  BIN=$(bindir)
  [ -n "$BIN" ] || die "postgresql installed but no /usr/lib/postgresql/*/bin/initdb"
fi
[ -s "$PGDATA/PG_VERSION" ] && [ ! -x "$BIN/postgres" ] && die "$PGDATA is PG $(cat "$PGDATA/PG_VERSION") but its binaries are gone"
pgc() { detach "$JG_LOG/pg_ctl.log" runuser -u postgres -- "$BIN/pg_ctl" -D "$PGDATA" "$@"; }
# admin psql (SQL on stdin) over the unix socket as the OS user postgres (peer auth)
psql_admin() { runuser -u postgres -- "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCKDIR" -p "$PORT" -d postgres; }

# ---------------------------------------------------------------- 2. cluster
mkdir -p "$JG_VAR" "$JG_LOG" "$JG_RUN"
chmod 755 "$JG_VAR" "$JG_LOG"
install -d -m 755 -o postgres -g postgres "$SOCKDIR"
[ -e "$PGLOG" ] || install -m 640 -o postgres -g postgres /dev/null "$PGLOG"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  # no cluster, or an initdb that was interrupted: start from an empty dir
  rm -rf "$PGDATA"
  install -d -m 700 -o postgres -g postgres "$PGDATA"
  log "initdb $PGDATA ($("$BIN/postgres" --version))"
  runuser -u postgres -- "$BIN/initdb" -D "$PGDATA" -U postgres -E UTF8 --locale=C.UTF-8 \
    --auth-local=peer --auth-host=trust >>"$JG_LOG/pg-initdb.log" 2>&1 \
    || die "initdb failed, see $JG_LOG/pg-initdb.log"
  echo "include = 'jobgate-test.conf'" >>"$PGDATA/postgresql.conf"
fi

CHANGED=0
# Settings live in our own file, included from postgresql.conf (last one wins).
# fsync/synchronous_commit/full_page_writes off: a throwaway test database; speed beats crash safety.
write_if_changed "$PGDATA/jobgate-test.conf" CHANGED <<EOF
# written by scripts/pg-up.sh
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$SOCKDIR'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
# trust on 127.0.0.1 only (no ::1, no other host); the unix socket only lets OS user postgres in as postgres
write_if_changed "$PGDATA/pg_hba.conf" CHANGED <<EOF
# written by scripts/pg-up.sh
# TYPE  DATABASE  USER      ADDRESS       METHOD
local   all       postgres                peer
host    all       all       127.0.0.1/32  trust
EOF
chown postgres:postgres "$PGDATA/jobgate-test.conf" "$PGDATA/pg_hba.conf"
chmod 600 "$PGDATA/jobgate-test.conf" "$PGDATA/pg_hba.conf"

# ---------------------------------------------------------------- 3. start
if alive "$PGDATA/postmaster.pid" postgres; then
  if [ "$CHANGED" = 1 ]; then
    log "config changed: restarting"
    pgc -w -t 60 -m fast -l "$PGLOG" restart || die "pg_ctl restart failed, see $PGLOG"
  fi
else
  # A postmaster killed hard leaves postmaster.pid (and the socket lock file) behind; if that pid is a
  # zombie, postgres itself would think it still runs ("lock file already exists"). Ours is dead: remove.
  rm -f "$PGDATA/postmaster.pid" "$SOCKDIR/.s.PGSQL.$PORT.lock"
  port_busy "$PORT" && die "127.0.0.1:$PORT is taken by a process that is not our postgres"
  # pgc = detach + pg_ctl: postgres gets its own session and none of our fds (see detach in lib.sh)
  pgc -w -t 60 -l "$PGLOG" start || die "pg_ctl start failed, see $PGLOG and $JG_LOG/pg_ctl.log"
  log "postgres pid $(head -n1 "$PGDATA/postmaster.pid") on 127.0.0.1:$PORT"
fi
wait_for 30 "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" || die "pg_isready says no, see $PGLOG"

# ---------------------------------------------------------------- 4. role + database
# (re)asserting the role's attributes each time is cheap and repairs a role someone altered
psql_admin <<'SQL' >/dev/null
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'jobgate') THEN
    CREATE ROLE jobgate LOGIN PASSWORD 'jobgate' CREATEDB;
  ELSE
    ALTER ROLE jobgate LOGIN PASSWORD 'jobgate' CREATEDB;
  END IF;
END $$;
SELECT 'CREATE DATABASE jobgate_test OWNER jobgate'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'jobgate_test') \gexec
SQL

# prove the URL works the way the tests will use it (TCP, as jobgate)
"$BIN/psql" -X -q -At "$URL_PLAIN" -c 'select 1' >/dev/null || die "cannot connect to $URL_PLAIN"

write_env "$JG_VAR/pg.env" <<EOF
JOBGATE_TEST_PG_URL=$URL
EOF
log "ready ($JG_VAR/pg.env)"
echo "$URL"
