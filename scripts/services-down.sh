#!/bin/bash
# services-down.sh - stop what services-up.sh started, in reverse order: s3, ssh, slurm, pg.
# Each script stops only the daemons it started (pid files). Every one is tried even if another fails.
#   services-down.sh           # stop; data, keys and job state are kept
#   services-down.sh --purge   # also wipe the PostgreSQL data dir, Slurm state + accounting DB, SSH keys
set -euo pipefail
JG_NAME=services-down
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh"
for a in "$@"; do [ "$a" = --purge ] || die "unknown option $a (use --purge)"; done

rm -f "$JG_VAR/services.env"
rc=0
for s in s3 ssh slurm pg; do
  "$HERE/$s-down.sh" "$@" || { log "$s-down.sh failed (exit $?)"; rc=1; }
done
exit "$rc"
