#!/bin/bash
# s3-up.sh - an S3-compatible server for the tests: moto's (moto[server], from the venv's
# dev dependencies) on 127.0.0.1:5055, in memory. Pid file /run/jobgate-test/s3.pid.
# Env file for tests: /var/lib/jobgate-test/s3.env (JOBGATE_TEST_S3_ENDPOINT).
# Idempotent: a warm run checks that it answers. Stop with s3-down.sh.
set -euo pipefail
JG_NAME=s3-up
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh"

PORT=5055
PIDFILE=$JG_RUN/s3.pid
SERVER=$HERE/../.venv/bin/moto_server
[ -x "$SERVER" ] || die "no $SERVER: install the dev dependencies first (make installs them)"
mkdir -p "$JG_RUN" "$JG_VAR"

PY=$HERE/../.venv/bin/python
answers() { "$PY" -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$PORT/moto-api/', timeout=2)" 2>/dev/null; }
if ! answers; then
  if [ -s "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then kill "$(cat "$PIDFILE")" || true; fi
  nohup "$SERVER" -H 127.0.0.1 -p "$PORT" >"$JG_VAR/s3.log" 2>&1 &
  echo $! >"$PIDFILE"
  for _ in $(seq 100); do answers && break; sleep 0.1; done
  answers || die "moto_server did not answer on $PORT (see $JG_VAR/s3.log)"
fi
printf 'JOBGATE_TEST_S3_ENDPOINT=http://127.0.0.1:%s\n' "$PORT" | write_env "$JG_VAR/s3.env"
log "S3 (moto) on 127.0.0.1:$PORT"
