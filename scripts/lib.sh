# lib.sh - helpers shared by the jobgate dev-service scripts (*-up.sh / *-down.sh).
# Sourced, not run. Callers set JG_NAME (used as the log prefix) before sourcing.
#
# Where things live (our own names, so nothing clashes with other test setups on the machine):
#   /run/jobgate-test        pid files of what *we* started (the down scripts stop only these)
#   /var/lib/jobgate-test    data, keys, and the env files tests source (pg.env, slurm.env, ssh.env, services.env)
#   /var/log/jobgate-test    logs
# shellcheck shell=bash disable=SC2034  # the JG_* paths are used by the scripts that source this

JG_RUN=/run/jobgate-test
JG_VAR=/var/lib/jobgate-test
JG_LOG=/var/log/jobgate-test
export DEBIAN_FRONTEND=noninteractive

log() { echo "[${JG_NAME:-jobgate}] $*" >&2; }
die() { echo "[${JG_NAME:-jobgate}] ERROR: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (it installs packages and starts daemons as other users)"

# pid_alive PID [COMM] -> 0 if PID runs, is not a zombie, and (if given) its /proc/PID/comm is COMM.
# PID 1 on these machines is not a real init and reaps orphans late (seconds to tens of seconds):
# a daemon that exited lingers as state Z, /proc/PID still exists and `kill -0` succeeds.
pid_alive() {
  local pid=${1:-} st
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  st=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  st=${st##*) }                     # field 2 is "(comm)" and may contain spaces: cut after the last ") "
  [ "${st%% *}" != Z ] || return 1  # field 3 = state
  [ -z "${2:-}" ] || [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ]
}

# alive PIDFILE COMM -> pid_alive on the first line of PIDFILE (postmaster.pid has more lines)
alive() {
  local pid
  [ -s "$1" ] || return 1
  pid=$(head -n1 "$1" 2>/dev/null) || return 1
  pid_alive "$pid" "$2"
}

# stop_pidfile PIDFILE COMM [SECONDS=30] -> TERM the pid if it is really COMM, wait, then KILL; remove PIDFILE.
# Never kills by name: a pid file we did not write, or a reused pid with another comm, is left alone.
stop_pidfile() {
  local f=$1 comm=$2 t=${3:-30} pid i
  [ -s "$f" ] || { rm -f "$f"; return 0; }
  pid=$(head -n1 "$f")
  if pid_alive "$pid" "$comm"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < t * 5; i++)); do pid_alive "$pid" "$comm" || break; sleep 0.2; done
    if pid_alive "$pid" "$comm"; then
      log "$comm ($pid) ignored TERM for ${t}s: KILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    log "stopped $comm ($pid)"
  fi
  rm -f "$f"
}

# wait_for SECONDS CMD... -> run CMD every 0.2 s until it succeeds (output discarded); 1 on timeout
wait_for() {
  local end=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$end" ] || return 1
    sleep 0.2
  done
}

# detach LOGFILE CMD... -> run CMD in a new session with stdin=/dev/null, stdout/stderr appended to
# LOGFILE, and every other inherited fd closed. Daemons otherwise keep the caller's pipes open
# (make's jobserver, a CI runner's `| tee`, ...) and whoever reads them never sees EOF.
# By default waits for CMD (daemons that fork themselves); --bg for those that do not (mariadbd).
# Not `detach ... &`: that forks a copy of the calling script which waits for the daemon forever and
# keeps the caller's stdout open (seen: `out=$(services-up.sh)` hung until mariadbd stopped).
detach() {
  local bg=0 logf
  if [ "$1" = --bg ]; then bg=1; shift; fi
  logf=$1; shift
  if [ "$bg" = 1 ]; then
    ( _close_fds; exec setsid "$@" </dev/null >>"$logf" 2>&1 ) &
  else
    ( _close_fds; exec setsid "$@" </dev/null >>"$logf" 2>&1 )
  fi
}
_close_fds() {
  local fd
  for fd in /proc/self/fd/*; do     # /proc/self = this subshell
    fd=${fd##*/}
    [ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-" 2>/dev/null
  done
  return 0
}

# port_busy PORT -> 0 if something accepts TCP connections on 127.0.0.1:PORT (bash /dev/tcp: no ss/netstat needed).
# Only called before starting a daemon of ours, to fail loudly instead of starting one that cannot bind.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# apt_ensure PKG... -> install the missing ones (noninteractive, no recommends).
# `apt-get update` runs at most once an hour across our scripts (services-up runs three in a row).
# On these images /usr/sbin/policy-rc.d denies service starts in postinst, so packages never start
# daemons behind our back; where it does not, the packages' own daemons use default ports, not ours.
apt_ensure() {
  local have p missing=()
  have=$(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' "$@" 2>/dev/null | awk '$1 == "ii" {print $2}' || true)
  for p in "$@"; do grep -qx "$p" <<<"$have" || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing: ${missing[*]}"
  mkdir -p "$JG_VAR" "$JG_LOG"
  if [ -z "$(find "$JG_VAR/.apt-updated" -mmin -60 2>/dev/null)" ]; then
    apt-get update -qq >>"$JG_LOG/apt.log" 2>&1 || die "apt-get update failed, see $JG_LOG/apt.log"
    touch "$JG_VAR/.apt-updated"
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$JG_LOG/apt.log" 2>&1 \
    || die "apt-get install ${missing[*]} failed, see $JG_LOG/apt.log"
}

# write_if_changed FILE [VAR] -> write stdin to FILE only if its content differs; if it did and VAR is
# given, set VAR=1 (callers restart/reload their daemon then). Always returns 0.
write_if_changed() {
  local tmp
  tmp=$(mktemp "$1.XXXXXX")
  cat >"$tmp"
  if [ -f "$1" ] && cmp -s "$tmp" "$1"; then rm -f "$tmp"; return 0; fi
  mv -f "$tmp" "$1"
  [ -z "${2:-}" ] || printf -v "$2" 1
}

# write_env FILE -> atomically replace FILE with stdin (KEY=value lines, for `set -a; . FILE` or dotenv)
write_env() {
  local tmp
  tmp=$(mktemp "$1.XXXXXX")
  cat >"$tmp"
  chmod 644 "$tmp"
  mv -f "$tmp" "$1"
}

# ensure_user NAME -> local login user (bash, home). Password field '*' rather than useradd's '!':
# with `UsePAM no` sshd refuses "locked" ('!') accounts even for key logins.
ensure_user() {
  id "$1" >/dev/null 2>&1 || useradd -m -s /bin/bash "$1"
  [ "$(getent shadow "$1" | cut -d: -f2)" = '*' ] || usermod -p '*' "$1"
}
