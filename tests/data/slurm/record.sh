#!/bin/bash
# Re-record the real Slurm output the parser tests read (tests/unit/test_slurm.py).
# Runs jobs on the test cluster (scripts/slurm-up.sh) and saves what squeue/sacct/sbatch
# print, with the exact options jobgate uses (see src/jobgate/backends/slurm.py).
# Takes ~2 minutes (a 1-minute time limit needs 60-90 s to show). Usage: record.sh [outdir]
set -euo pipefail
OUT=$(cd "${1:-$(dirname "$0")}" && pwd)
WORK=$(mktemp -d /tmp/jg-record.XXXXXX)
cd "$WORK"
SQ_FMT='ArrayJobID:|,ArrayTaskID:|,JobID:|,State:|,Reason:|,exit_code:|,BatchHost:|'
SA_FMT='JobID,JobIDRaw,State,ExitCode,NodeList'
squeue_all() { squeue -h -t all -r -j "$1" -O "$SQ_FMT"; }
sub() { sbatch --parsable -o "$WORK/%j.out" "$@"; }

ok=$(sub --wrap 'echo hi')
fail=$(sub --wrap 'exit 3')
sig=$(sub --wrap 'kill -9 $$')
held=$(sub -H --wrap true)
run=$(sub --wrap 'sleep 300')
array=$(sub --array=0-3 --wrap '[ "$SLURM_ARRAY_TASK_ID" = 2 ] && exit 5; exit 0')
pend_array=$(sub -H --array=0-5%2 --wrap true)
timeout=$(sub --time=1 --wrap 'sleep 300')
sleep 3
squeue_all "$held,$run,$pend_array" > "$OUT/squeue-live.txt"
sleep 5   # let 'sleep 300' be RUNNING long enough to be cancelled as a running job
scancel "$run" "$held"
until [ -z "$(squeue -h -t PD,R,CG,CF -j "$ok,$fail,$sig,$run,$array,$timeout" -o %i)" ]; do sleep 5; done
scancel "$pend_array"; sleep 1
ids="$ok,$fail,$sig,$held,$run,$array,$pend_array,$timeout"
squeue_all "$ids" > "$OUT/squeue-final.txt"
sacct -X -P -n -S now-3600 -j "$ids" -o "$SA_FMT" > "$OUT/sacct-final.txt"
{ echo "ok=$ok fail=$fail signal=$sig held=$held running_cancelled=$run array=$array"
  echo "held_array=$pend_array timeout=$timeout"; } > "$OUT/jobs.txt"
# Errors: a single unknown id (squeue exits 1), a refused submission.
squeue -h -t all -r -j 999999 -O "$SQ_FMT" > "$OUT/squeue-unknown.txt" 2>&1 || echo "rc=$?" >> "$OUT/squeue-unknown.txt"
sbatch --parsable -p nosuchpartition --wrap true > "$OUT/sbatch-refused.txt" 2>&1 || echo "rc=$?" >> "$OUT/sbatch-refused.txt"
rm -rf "$WORK"
echo "recorded into $OUT"
