#!/bin/bash
# s3-down.sh - stop the S3 server s3-up.sh started (its data is in memory: nothing kept).
set -euo pipefail
JG_NAME=s3-down
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh"
PIDFILE=$JG_RUN/s3.pid
if [ -s "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  kill "$(cat "$PIDFILE")"
fi
rm -f "$PIDFILE" "$JG_VAR/s3.env"
