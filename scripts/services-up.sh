#!/bin/bash
# services-up.sh - bring up every dev service the jobgate tests use, in order, each failing loudly:
#   pg-up.sh     PostgreSQL 127.0.0.1:55432, database jobgate_test         -> /var/lib/jobgate-test/pg.env
#   slurm-up.sh  one-node Slurm "jgcluster" + sacct + PBS wrappers (qsub)  -> /var/lib/jobgate-test/slurm.env
#   ssh-up.sh    sshd 127.0.0.1:2222, user jobtest, key login               -> /var/lib/jobgate-test/ssh.env
#   s3-up.sh     S3 (moto server) 127.0.0.1:5055                            -> /var/lib/jobgate-test/s3.env
#   browser-up.sh  Debian's Chromium for the dashboard's browser tests     -> /var/lib/jobgate-test/browser.env
# then writes /var/lib/jobgate-test/services.env = all five, for tests to source in one go:
#   set -a; . /var/lib/jobgate-test/services.env; set +a
# Idempotent and quick (< 1 s) when everything already runs. Run as root. Stop: services-down.sh.
set -euo pipefail
JG_NAME=services-up
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh"

ms() { local t=${EPOCHREALTIME//[.,]/}; echo $((t / 1000)); }   # wall clock in milliseconds
T0=$(ms)
for s in pg slurm ssh s3 browser; do
  t=$(ms)
  # pg-up prints the URL on stdout; keep our stdout for the summary below
  if ! "$HERE/$s-up.sh" >/dev/null; then
    rm -f "$JG_VAR/services.env"    # absent unless all five are up
    die "$s-up.sh failed; services.env removed"
  fi
  log "$s up ($(($(ms) - t)) ms)"
done

{
  echo "# written by jobgate scripts/services-up.sh $(date -u +%FT%TZ)"
  cat "$JG_VAR/pg.env" "$JG_VAR/slurm.env" "$JG_VAR/ssh.env" "$JG_VAR/s3.env" "$JG_VAR/browser.env"
} | write_env "$JG_VAR/services.env"
log "all up in $(($(ms) - T0)) ms: $JG_VAR/services.env"
cat "$JG_VAR/services.env"
