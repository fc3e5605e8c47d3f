"""Arrays where there is no scheduler (local, and SSH hosts through `process`): the job's
script becomes a driver (bash) that runs each index as a task, at most the `%` limit at
once, with the scheduler's variables (JOBGATE_ARRAY_TASK_ID, and SLURM_ARRAY_TASK_ID,
PBS_ARRAYID for scripts written for them), each with its own tasks/<i>/ stdout, stderr
and exit code; every task says its state as a `task` line of $JOBGATE_EVENTS, which the
gateway reads with its batched look at the job (engine/hearing.py) and keeps task by
task. The job exits with the code of the first failed task, by index (0 if none)."""

from __future__ import annotations

import shlex

from jobgate.backends.array_spec import array_indices

_SAY = (
    'printf \'{"type":"task","message":"task %s %s","data":'
    '{"index":%s,"state":"%s"%s}}\\n\' "$1" "$2" "$1" "$2" "$3" >> "$JOBGATE_EVENTS"'
)


def driver(command: str, spec: str) -> str:
    """The shell command that runs `command` once per index of array `spec`."""
    each = array_indices(spec)
    indices = " ".join(map(str, each))
    limit = int(spec.split("%", 1)[1]) if "%" in spec else len(each)
    body = f"""say() {{ {_SAY}; }}
task() {{
  d="$JOBGATE_RUN_DIR/tasks/$1"; mkdir -p "$d"; say "$1" RUNNING ""
  ( export JOBGATE_ARRAY_TASK_ID="$1" SLURM_ARRAY_TASK_ID="$1" PBS_ARRAYID="$1"
    exec {command} ) < /dev/null > "$d/stdout" 2> "$d/stderr"
  c=$?; printf '%s\\n' "$c" > "$d/exitcode"
  if [ "$c" = 0 ]; then s=COMPLETED; else s=FAILED; fi
  say "$1" "$s" ",\\"exit_code\\":$c"
}}
for i in {indices}; do
  while [ "$(jobs -rp | wc -l)" -ge {max(1, limit)} ]; do wait -n; done
  task "$i" &
done
wait
for i in {indices}; do
  c=$(cat "$JOBGATE_RUN_DIR/tasks/$i/exitcode" 2>/dev/null || echo 1)
  [ "$c" = 0 ] || exit "$c"
done
"""
    return f"/bin/bash -c {shlex.quote(body)} jobgate-array"
