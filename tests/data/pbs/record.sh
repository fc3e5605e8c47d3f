#!/bin/bash
# Re-record real output of the PBS commands jobgate uses (Torque flavor) from Slurm's Torque
# wrappers (package slurm-wlm-torque, started by scripts/slurm-up.sh): qsub, qstat -f, qdel.
# PBS Pro JSON and real Torque samples in this directory are synthetic (see README.md).
set -euo pipefail
OUT=$(cd "${1:-$(dirname "$0")}" && pwd)
WORK=$(mktemp -d /tmp/jg-record-pbs.XXXXXX)
cd "$WORK"
printf '#!/bin/bash\n#PBS -N jobgate-rec-ok\necho hi\n' > ok.pbs
printf '#!/bin/bash\n#PBS -N jobgate-rec-fail\nexit 3\n' > fail.pbs
printf '#!/bin/bash\n#PBS -N jobgate-rec-run\nsleep 300\n' > run.pbs
ok=$(qsub -j oe -o "$WORK/ok.log" ok.pbs)
fail=$(qsub -j oe -o "$WORK/fail.log" fail.pbs)
held=$(qsub -h -j oe -o "$WORK/held.log" ok.pbs)
run=$(qsub -j oe -o "$WORK/run.log" run.pbs)
echo "$ok" > "$OUT/qsub.txt"
until qstat -f "$run" | grep -q 'job_state = R'; do sleep 0.5; done
qstat -f "$held" "$run" > "$OUT/qstat-f-live.txt"
qdel "$run" "$held"
until [ "$(qstat -f "$ok" "$fail" "$run" "$held" | grep -c 'job_state = C')" = 4 ]; do sleep 0.5; done
qstat -f "$ok" "$fail" "$run" "$held" > "$OUT/qstat-f-final.txt"
{ qstat -f 999999 || echo "rc=$?"; } > "$OUT/qstat-f-unknown.txt" 2>&1
{ qdel "$ok" || echo "rc=$?"; } > "$OUT/qdel-finished.txt" 2>&1
{ qsub -q nosuchqueue ok.pbs || echo "rc=$?"; } > "$OUT/qsub-refused.txt" 2>&1
echo "ok=$ok fail=$fail held=$held running_cancelled=$run" > "$OUT/jobs.txt"
rm -rf "$WORK"
echo "recorded into $OUT"
