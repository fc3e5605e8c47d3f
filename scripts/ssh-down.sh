#!/bin/bash
# ssh-down.sh - stop the sshd started by ssh-up.sh (by /run/jobgate-test/sshd.pid only).
# Open sessions (their per-connection sshd children) end when their clients disconnect.
#   ssh-down.sh           # stop sshd; keys, known_hosts and the user stay (the next ssh-up reuses them)
#   ssh-down.sh --purge   # also delete /var/lib/jobgate-test/ssh (keys, known_hosts); the user jobtest stays
set -euo pipefail
JG_NAME=ssh-down
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh"
PURGE=0
for a in "$@"; do
  case "$a" in
    --purge) PURGE=1 ;;
    *) die "unknown option $a (use --purge)" ;;
  esac
done

rm -f "$JG_VAR/ssh.env" "$JG_VAR/services.env"
stop_pidfile "$JG_RUN/sshd.pid" sshd 10
if [ "$PURGE" = 1 ]; then
  rm -rf "$JG_VAR/ssh"
  log "removed $JG_VAR/ssh"
fi
exit 0
