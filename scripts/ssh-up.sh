#!/bin/bash
# ssh-up.sh - private sshd on 127.0.0.1:2222 (no systemd) with key-only login for the test user "jobtest".
#
# Files in /var/lib/jobgate-test/ssh: sshd_config, host_ed25519_key, sshd.log, client key id_ed25519(.pub),
# known_hosts (host key pinned as [127.0.0.1]:2222), ssh_config (Host jobgate-test = all of the above).
# Pid file /run/jobgate-test/sshd.pid. Env file for tests: /var/lib/jobgate-test/ssh.env.
# Idempotent: a warm run checks the config and that a login works. Stop with ssh-down.sh.
#
#   ssh -p 2222 -i /var/lib/jobgate-test/ssh/id_ed25519 \
#       -o UserKnownHostsFile=/var/lib/jobgate-test/ssh/known_hosts jobtest@127.0.0.1 sbatch --wrap hostname
#   ssh -F /var/lib/jobgate-test/ssh/ssh_config jobgate-test squeue
set -euo pipefail
JG_NAME=ssh-up
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh"

D=$JG_VAR/ssh
PORT=2222
USER_NAME=jobtest
PIDFILE=$JG_RUN/sshd.pid
cd /

# ---------------------------------------------------------------- 1. packages + user
# (policy-rc.d keeps the package's own sshd, on port 22, from starting; it is not ours anyway)
apt_ensure openssh-server openssh-client
ensure_user "$USER_NAME"        # password field '*': with UsePAM no, sshd refuses '!' (locked) accounts
H=$(getent passwd "$USER_NAME" | cut -d: -f6)

# ---------------------------------------------------------------- 2. keys and config
mkdir -p "$JG_RUN" "$D" /run/sshd    # /run/sshd: privilege separation dir, sshd will not start without it
chmod 755 "$JG_VAR" "$D"
[ -s "$D/host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -C jobgate-test-host -f "$D/host_ed25519_key"
[ -s "$D/id_ed25519" ]       || ssh-keygen -q -t ed25519 -N '' -C "$USER_NAME@jobgate-test" -f "$D/id_ed25519"
chmod 600 "$D/id_ed25519" "$D/host_ed25519_key"
install -d -m 700 -o "$USER_NAME" -g "$USER_NAME" "$H/.ssh"
write_if_changed "$H/.ssh/authorized_keys" <"$D/id_ed25519.pub"
chown "$USER_NAME:$USER_NAME" "$H/.ssh/authorized_keys"; chmod 600 "$H/.ssh/authorized_keys"
write_if_changed "$D/known_hosts" <<<"[127.0.0.1]:$PORT $(cut -d' ' -f1,2 "$D/host_ed25519_key.pub")"
chmod 644 "$D/known_hosts"

CHANGED=0
write_if_changed "$D/sshd_config" CHANGED <<EOF
# written by jobgate scripts/ssh-up.sh
Port $PORT
ListenAddress 127.0.0.1
HostKey $D/host_ed25519_key
PidFile $PIDFILE
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
AllowUsers $USER_NAME
UsePAM no
# the service under test opens many connections and channels at once (default 10:30:100 drops some)
MaxStartups 100:30:200
MaxSessions 50
AcceptEnv LANG LC_*
Subsystem sftp /usr/lib/openssh/sftp-server
LogLevel INFO
EOF
chmod 644 "$D/sshd_config"

write_if_changed "$D/ssh_config" <<EOF
# written by jobgate scripts/ssh-up.sh; use: ssh -F $D/ssh_config jobgate-test CMD
Host jobgate-test
  HostName 127.0.0.1
  Port $PORT
  User $USER_NAME
  IdentityFile $D/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $D/known_hosts
  StrictHostKeyChecking yes
  BatchMode yes
EOF
chmod 644 "$D/ssh_config"

/usr/sbin/sshd -t -f "$D/sshd_config" || die "sshd rejects $D/sshd_config"

# ---------------------------------------------------------------- 3. start
if alive "$PIDFILE" sshd; then
  if [ "$CHANGED" = 1 ]; then
    kill -HUP "$(cat "$PIDFILE")"       # sshd re-execs itself with the new config, same pid
    log "config changed: sshd reloaded"
  fi
else
  port_busy "$PORT" && die "127.0.0.1:$PORT is taken by a process that is not our sshd (another test sshd?): stop it first"
  rm -f "$PIDFILE"
  # absolute path: sshd re-execs itself and refuses a relative one. -E: log to a file (no syslog here).
  detach "$D/sshd.log" /usr/sbin/sshd -f "$D/sshd_config" -E "$D/sshd.log" || die "sshd failed, see $D/sshd.log"
  wait_for 10 test -s "$PIDFILE" || die "sshd wrote no pid file, see $D/sshd.log"
  log "sshd pid $(cat "$PIDFILE") on 127.0.0.1:$PORT"
fi

# the real proof: a key login with the pinned host key (retried: right after a start or HUP it may refuse once)
login() { ssh -F "$D/ssh_config" jobgate-test true </dev/null; }
wait_for 10 login || { login || true; die "login as $USER_NAME failed, see $D/sshd.log"; }

write_env "$JG_VAR/ssh.env" <<EOF
JOBGATE_TEST_SSH_HOST=127.0.0.1
JOBGATE_TEST_SSH_PORT=$PORT
JOBGATE_TEST_SSH_USER=$USER_NAME
JOBGATE_TEST_SSH_KEY=$D/id_ed25519
JOBGATE_TEST_SSH_KNOWN_HOSTS=$D/known_hosts
JOBGATE_TEST_SSH_CONFIG=$D/ssh_config
EOF
log "ready: ssh -F $D/ssh_config jobgate-test hostname"
