#!/bin/bash
# slurm-down.sh - stop the daemons slurm-up.sh started, by their pid files only (never by name).
# Order: slurmd, slurmctld, slurmdbd, mariadbd, munged (munged only if slurm-up started it).
#   slurm-down.sh               # stop all of them; state is kept: pending/running jobs and job ids survive
#   slurm-down.sh --keep-munge  # stop slurmd, slurmctld, slurmdbd only (slurm-up uses this on a config change)
#   slurm-down.sh --purge       # also cancel all jobs first and delete Slurm state, the accounting
#                               #   database and the logs (job ids restart at 1)
# Running jobs outlive slurmd (their slurmstepd keeps going; a new slurmd reattaches): that is Slurm.
set -euo pipefail
JG_NAME=slurm-down
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh"
KEEP_MUNGE=0; PURGE=0
for a in "$@"; do
  case "$a" in
    --keep-munge) KEEP_MUNGE=1 ;;
    --purge) PURGE=1 ;;
    *) die "unknown option $a (use --keep-munge or --purge)" ;;
  esac
done
[ "$KEEP_MUNGE" = 1 ] && [ "$PURGE" = 1 ] && die "--keep-munge and --purge do not go together"
SPOOL=/var/spool/jobgate-test
SLOG=$JG_LOG/slurm
MYRUN=$JG_RUN/mysqld
cd /

[ "$KEEP_MUNGE" = 1 ] || rm -f "$JG_VAR/slurm.env" "$JG_VAR/services.env"

if [ "$PURGE" = 1 ] && alive "$JG_RUN/slurmctld.pid" slurmctld && scontrol ping >/dev/null 2>&1; then
  # else running jobs' slurmstepd would go on after their state is wiped
  ids=$(squeue -h -o %A 2>/dev/null || true)
  if [ -n "$ids" ]; then
    log "cancelling $(wc -w <<<"$ids") job(s)"
    # shellcheck disable=SC2086
    scancel $ids || true
    wait_for 15 sh -c '[ -z "$(squeue -h -o %A)" ]' || log "some jobs still listed; going on"
  fi
fi

stop_pidfile "$JG_RUN/slurmd.pid" slurmd
stop_pidfile "$JG_RUN/slurmctld.pid" slurmctld
stop_pidfile "$JG_RUN/slurmdbd.pid" slurmdbd
if [ "$KEEP_MUNGE" = 0 ]; then
  # mariadbd removes its pid file when it exits; a copy is needed to wait for it
  if [ -s "$MYRUN/mariadbd.pid" ]; then
    cp "$MYRUN/mariadbd.pid" "$JG_RUN/mariadbd.stop.pid"
    stop_pidfile "$JG_RUN/mariadbd.stop.pid" mariadbd 60
    rm -f "$MYRUN/mariadbd.pid"
  fi
  stop_pidfile "$JG_RUN/munged.pid" munged
fi

if [ "$PURGE" = 1 ]; then
  # the whole private MariaDB goes: it only ever held slurm_acct_db
  rm -rf "${SPOOL:?}/ctld" "${SPOOL:?}/d" "$JG_VAR/mariadb" "$SLOG"
  log "purged Slurm state, accounting database and logs"
fi
exit 0
