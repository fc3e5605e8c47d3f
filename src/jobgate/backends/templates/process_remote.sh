# Commands the process scheduler runs on its host, one per channel:
#   bash -c "<this file>"$'\n''jg_<name> "$@"' jobgate-<name> ARGS...
# Values arrive as arguments (or stdin), never spliced into the text. Per-job paths use
# builtins only (read, parameter expansion), so a poll of 1000 jobs forks nothing per job.
set -f

# Sets jg_now to the start time (field 22 of /proc/PID/stat) of live, non-zombie process $1.
jg_alive() {
  local s
  jg_now=
  { read -r s < "/proc/$1/stat"; } 2>/dev/null || return 1
  s=${s##*) }   # the command name (field 2) may hold spaces and parentheses
  # shellcheck disable=SC2086  # splitting into fields is the point; set -f stops globbing
  set -- $s
  [ "$1" != Z ] || return 1   # PID 1 may reap late: a zombie is dead
  jg_now=${20}
}

# Is process $1 still the one that started at $2 (any start time if $2 is empty)?
jg_ours() { jg_alive "$1" && { [ -z "$2" ] || [ "$jg_now" = "$2" ]; }; }

# $1 run dir, $2 a working directory to create (or ""). Idempotent: a retry after a lost
# reply reports the job the first try started instead of starting it twice.
jg_launch() {
  local pid
  [ -r /proc/self/stat ] || { echo "the process scheduler needs Linux /proc" >&2; exit 2; }
  cd -- "$1" || exit 2
  [ -z "$2" ] || mkdir -p -- "$2" || exit 2
  if ! { read -r pid < jobgate.pid; } 2>/dev/null; then
    # setsid: its own session and process group, no terminal to hang up; no nohup, so
    # the job's signals are as with the local backend (SIGHUP not ignored).
    setsid bash jobgate.sh > jobgate.log 2>&1 < /dev/null &
    pid=$!
  fi
  jg_alive "$pid"
  printf '%s\t%s\t%s\n' "$pid" "$jg_now" "${HOSTNAME:-$(hostname)}"
}

# $1 run dir. Exit 3: no job was ever started there.
jg_find() {
  local pid host=
  { read -r pid < "$1/jobgate.pid"; } 2>/dev/null || exit 3
  { read -r host < "$1/HOSTNAME"; } 2>/dev/null
  jg_alive "$pid"
  printf '%s\t%s\t%s\n' "$pid" "$jg_now" "$host"
}

# stdin: "job id<TAB>pid<TAB>start<TAB>run dir" per job. Whether the process lives is read
# before the sidecar: the wrapper writes the sidecar before it exits, so "gone and no
# sidecar" can never be a job that ended between the two reads.
jg_poll() {
  local id pid want dir alive code started host
  while IFS=$'\t' read -r id pid want dir; do
    alive=0; jg_ours "$pid" "$want" && alive=1
    code=; { read -r code < "$dir/exitcode"; } 2>/dev/null
    started=0; [ -e "$dir/job.started" ] && started=1
    host=; { read -r host < "$dir/HOSTNAME"; } 2>/dev/null
    printf '%s\t%s\t%s\t%s\t%s\n' "$id" "$alive" "$code" "$started" "$host"
  done
}

# $1 run dir, $2 pid, $3 start time, $4 grace in tenths of a second, $5 grace in seconds.
# cancel.sh first (as before scancel on a cluster), then TERM to the job's process group,
# KILL after the grace period. A pid that now belongs to another process is left alone.
jg_stop() {
  local i=0
  if [ -f "$1/cancel.sh" ]; then
    (cd -- "$1" && exec timeout -k 1 "$5" bash cancel.sh) < /dev/null > /dev/null 2>&1
  fi
  jg_ours "$2" "$3" || exit 0
  kill -TERM -- "-$2" 2>/dev/null
  while jg_ours "$2" "$3" && [ "$i" -lt "$4" ]; do sleep 0.1; i=$((i + 1)); done
  kill -KILL -- "-$2" 2>/dev/null   # what is left of the group: the job's own children
  exit 0
}
