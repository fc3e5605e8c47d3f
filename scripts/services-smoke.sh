#!/bin/bash
# services-smoke.sh - end-to-end check of what services-up.sh provides (~5-10 s). Read-only apart from
# submitting a few tiny jobs. Prints one line per check and "N passed, N failed"; non-zero exit on failure.
set -uo pipefail
ENVF=/var/lib/jobgate-test/services.env
[ -s "$ENVF" ] || { echo "FAIL - $ENVF missing: run scripts/services-up.sh"; exit 1; }
set -a
# shellcheck source=/dev/null
. "$ENVF"
set +a
pass=0; fail=0
ok()  { echo "ok   - $*"; pass=$((pass + 1)); }
bad() { echo "FAIL - $*"; fail=$((fail + 1)); }
check() { local name=$1; shift; if "$@" >/dev/null 2>&1; then ok "$name"; else bad "$name"; fi; }
# wait_state JOBID STATE: poll squeue (all states) up to 30 s
wait_state() { local _ s; for _ in $(seq 150); do s=$(squeue -h -t all -j "$1" -o %T 2>/dev/null)
  [ "$s" = "$2" ] && return 0; sleep 0.2; done; return 1; }
# wait_sacct JOBID FIELDS EXPECTED: poll sacct up to 20 s (it lags squeue by up to a few seconds)
wait_sacct() { local _; for _ in $(seq 100); do [ "$(sacct -X -n -P -j "$1" -o "$2" 2>/dev/null)" = "$3" ] && return 0
  sleep 0.2; done; echo "sacct: $(sacct -X -n -P -j "$1" -o "$2")" >&2; return 1; }
SSH=(ssh -p "$JOBGATE_TEST_SSH_PORT" -i "$JOBGATE_TEST_SSH_KEY" -o IdentitiesOnly=yes -o BatchMode=yes
     -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$JOBGATE_TEST_SSH_KNOWN_HOSTS"
     "$JOBGATE_TEST_SSH_USER@$JOBGATE_TEST_SSH_HOST")

# PostgreSQL: the URL without SQLAlchemy's "+psycopg" driver suffix is a libpq URL
PGURL=${JOBGATE_TEST_PG_URL/+psycopg/}
[ "$(psql -X -At "$PGURL" -c 'select current_user || current_database()' 2>/dev/null)" = jobgatejobgate_test ] \
  && ok "psql connects to $PGURL" || bad "psql $PGURL"
check "jobgate may create tables" psql -X -q "$PGURL" -c 'create temp table t(x int); insert into t values (1)'

check "munge round trip"          sh -c 'munge -n </dev/null | unmunge'
check "slurmctld answers ping"    scontrol ping
check "node idle or busy"         sh -c "sinfo -h -N -o %T | grep -qxE 'idle|mixed|allocated'"

D=$(mktemp -d /tmp/jg-smoke.XXXX); chmod 755 "$D"
J=$(sbatch --parsable -o "$D/ok-%j.out" --wrap true)
wait_state "$J" COMPLETED && ok "sbatch --wrap true -> COMPLETED ($J)" || bad "sbatch --wrap true ($J)"
wait_sacct "$J" State,ExitCode "COMPLETED|0:0" && ok "sacct shows $J COMPLETED 0:0" || bad "sacct $J"
J=$(sbatch --parsable -o /dev/null --wrap 'exit 3')
wait_state "$J" FAILED && scontrol show job "$J" | grep -q 'ExitCode=3:0' && ok "exit 3 -> FAILED ExitCode=3:0" || bad "exit 3"
J=$(sbatch --parsable -o /dev/null --wrap 'sleep 300')
wait_state "$J" RUNNING && scancel "$J" && wait_state "$J" CANCELLED && ok "scancel running job -> CANCELLED" || bad "scancel"
# several at once: SLURM_CPUS (8) slots on 2 cores
A=$(sbatch --parsable -o /dev/null --array=0-5 --wrap 'sleep 3')
sleep 1.5
n=$(squeue -h -r -j "$A" -t RUNNING -o %i | wc -l)
[ "$n" -ge 6 ] && ok "6 array tasks run at once ($n running)" || bad "parallel jobs: only $n running"
scancel "$A"

if [ "${JOBGATE_TEST_PBS:-0}" = 1 ]; then
  printf '#!/bin/bash\n#PBS -N smokepbs\n#PBS -l walltime=00:05:00\necho "$PBS_JOBID $PBS_JOBNAME"\n' >"$D/p.pbs"
  P=$(cd "$D" && qsub -o "$D/p.out" -e "$D/p.err" p.pbs)
  wait_state "$P" COMPLETED && grep -q "^$P smokepbs" "$D/p.out" && ok "qsub + PBS_JOBID/PBS_JOBNAME ($P)" || bad "qsub"
  check "qstat knows $P" sh -c "qstat $P | grep -q smokepbs"
fi

check "ssh -p $JOBGATE_TEST_SSH_PORT $JOBGATE_TEST_SSH_USER@$JOBGATE_TEST_SSH_HOST (key, pinned host)" "${SSH[@]}" true
S=$("${SSH[@]}" "sbatch --parsable -o /dev/null --wrap 'id -un'" 2>/dev/null)
[ -n "$S" ] && wait_state "$S" COMPLETED && ok "ssh + sbatch as $JOBGATE_TEST_SSH_USER ($S)" || bad "ssh + sbatch"
[ -n "$S" ] && wait_sacct "$S" User,Account,State "jobtest|$JOBGATE_TEST_SLURM_ACCOUNT|COMPLETED" \
  && ok "sacct: $S by jobtest, account $JOBGATE_TEST_SLURM_ACCOUNT" || bad "sacct user/account of $S"
Q=$("${SSH[@]}" "printf '#!/bin/bash\\ntrue\\n' >q.pbs && qsub -o /dev/null -e /dev/null q.pbs" 2>/dev/null)
[ -n "$Q" ] && wait_state "$Q" COMPLETED && ok "ssh + qsub as $JOBGATE_TEST_SSH_USER ($Q)" || bad "ssh + qsub"

rm -rf "$D"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
