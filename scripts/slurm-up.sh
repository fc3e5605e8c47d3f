#!/bin/bash
# slurm-up.sh - one-node Slurm cluster "jgcluster" for the jobgate tests, started by hand (no systemd).
#
# Idempotent: installs Debian packages if missing (munge, slurmctld, slurmd, slurm-client, slurmdbd,
# mariadb-server, slurm-wlm-torque), (re)writes /etc/slurm/slurm.conf + slurmdbd.conf, starts whatever
# of munged, mariadbd (private datadir, 127.0.0.1:55306), slurmdbd, slurmctld, slurmd is not running,
# creates the accounting associations (account "jobgate" with users root and jobtest), waits until
# the node is idle and sacct answers, writes /var/lib/jobgate-test/slurm.env. A warm run only checks.
#
#   SLURM_CPUS=N      CPUs the node advertises (default 8: several test jobs at once on 2 cores)
#   SLURM_ENFORCE=X   AccountingStorageEnforce value, e.g. "associations" (default: no enforcement)
#
# Pid files: /run/jobgate-test/{munged,slurmdbd,slurmctld,slurmd}.pid, /run/jobgate-test/mysqld/mariadbd.pid.
# slurm-down.sh stops exactly those. Logs: /var/log/jobgate-test/slurm/.
set -euo pipefail
JG_NAME=slurm-up
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh"

CLUSTER=jgcluster
PARTITION=debug
ACCOUNT=jobgate
SSH_USER=jobtest                     # the SSH test user (ssh-up.sh); its jobs must be accepted too
SPOOL=/var/spool/jobgate-test        # StateSaveLocation + SlurmdSpoolDir
SLOG=$JG_LOG/slurm
CONF=/etc/slurm/slurm.conf           # the one place every client (sbatch, qsub, jobs over ssh) looks
DBDCONF=/etc/slurm/slurmdbd.conf
MYDATA=$JG_VAR/mariadb               # private MariaDB: never touches a system /var/lib/mysql or port 3306
MYRUN=$JG_RUN/mysqld                 # its socket and pid file (owned by mysql)
MYPORT=55306
HOST=$(hostname -s)
CPUS=${SLURM_CPUS:-8}
REALMEM=$(( $(free -m | awk '/^Mem:/{print $2}') * 95 / 100 ))   # a bit below the real total, else slurmd drains the node
ENFORCE=${SLURM_ENFORCE:-}
cd /

my() { mariadb --no-defaults -uroot --socket="$MYRUN/mysqld.sock" -N -B "$@"; }

# ---------------------------------------------------------------- 1. packages
# gridengine-client conflicts with slurm-wlm-torque (both ship /usr/bin/qsub): apt would remove ours.
if dpkg-query -W -f='${db:Status-Abbrev}' gridengine-client 2>/dev/null | grep -q '^ii'; then
  die "gridengine-client is installed and owns /usr/bin/qsub; remove it (apt-get remove gridengine-client) first"
fi
apt_ensure munge slurmctld slurmd slurm-client slurmdbd mariadb-server slurm-wlm-torque
head -n1 /usr/bin/qsub | grep -q perl || die "/usr/bin/qsub is not Slurm's Perl PBS wrapper"
# spank_pbs sets PBS_JOBID, PBS_JOBNAME, PBS_O_WORKDIR... in jobs; without it they are empty.
# Debian's /etc/slurm/plugstack.conf includes plugstack.conf.d/*.conf.
SPANK_PBS=$(find /usr/lib -path "*/slurm-wlm/spank_pbs.so" -print -quit)
[ -n "$SPANK_PBS" ] || die "spank_pbs.so not found (package slurm-wlm-torque)"
mkdir -p /etc/slurm/plugstack.conf.d
write_if_changed /etc/slurm/plugstack.conf.d/pbs.conf <<<"required $SPANK_PBS"
chmod 644 /etc/slurm/plugstack.conf.d/pbs.conf
grep -qs 'plugstack.conf.d' /etc/slurm/plugstack.conf || echo "include /etc/slurm/plugstack.conf.d/*.conf" >>/etc/slurm/plugstack.conf

# munge key (Debian's postinst normally creates one)
if [ ! -s /etc/munge/munge.key ]; then
  mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null \
    || dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
  chown munge:munge /etc/munge/munge.key; chmod 600 /etc/munge/munge.key
fi
ensure_user "$SSH_USER"

mkdir -p "$JG_RUN" "$JG_LOG" "$SPOOL/ctld" "$SPOOL/d" "$SLOG" /run/munge
chmod 755 "$JG_RUN" "$JG_LOG"        # root-owned: slurm daemons write pid files before dropping root
chown munge:munge /run/munge
chown slurm:slurm "$SLOG" "$SPOOL/ctld"   # slurmctld + slurmdbd run as SlurmUser=slurm
install -d -m 755 -o mysql -g mysql "$MYRUN"

# ---------------------------------------------------------------- 2. config
CHANGED=0
write_if_changed "$CONF" CHANGED <<EOF
# written by jobgate scripts/slurm-up.sh - one-node test cluster, no cgroups, no systemd
ClusterName=$CLUSTER
# explicit addresses: nothing depends on "$HOST" resolving
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
MailProg=/bin/true
SwitchType=switch/none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
${ENFORCE:+AccountingStorageEnforce=$ENFORCE}
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=10
# one line per finished job, kept forever (history even if slurmdbd is down)
JobCompType=jobcomp/filetxt
JobCompLoc=$SLOG/jobcomp.log
SchedulerType=sched/backfill
# default batch_sched_delay=3 starts ~2 jobs per 3 s; 0 leaves the 1 s background loop as the limit
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
# cancels and time limits bite as fast as Slurm allows; finished jobs stay in squeue/scontrol 300 s
KillWait=2
OverTimeLimit=0
MinJobAge=300
InactiveLimit=0
MessageTimeout=10
SlurmctldTimeout=30
SlurmdTimeout=60
MaxJobCount=20000
StateSaveLocation=$SPOOL/ctld
SlurmdSpoolDir=$SPOOL/d
SlurmctldPidFile=$JG_RUN/slurmctld.pid
SlurmdPidFile=$JG_RUN/slurmd.pid
SlurmctldLogFile=$SLOG/slurmctld.log
SlurmdLogFile=$SLOG/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# lets slurmd accept CPUs=$CPUS on a machine with fewer cores instead of draining the node
SlurmdParameters=config_overrides
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS Boards=1 SocketsPerBoard=1 CoresPerSocket=$CPUS ThreadsPerCore=1 RealMemory=$REALMEM State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
chmod 644 "$CONF"
# StorageHost=127.0.0.1, not localhost: the MySQL client library turns "localhost" into the default socket
write_if_changed "$DBDCONF" CHANGED <<EOF
# written by jobgate scripts/slurm-up.sh
AuthType=auth/munge
DbdHost=$HOST
DbdAddr=127.0.0.1
DbdPort=6819
SlurmUser=slurm
LogFile=$SLOG/slurmdbd.log
PidFile=$JG_RUN/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$MYPORT
StorageLoc=slurm_acct_db
StorageUser=slurm
StoragePass=jobgate
EOF
chown slurm:slurm "$DBDCONF"; chmod 600 "$DBDCONF"   # slurmdbd refuses a world-readable conf

if [ "$CHANGED" = 1 ] && { alive "$JG_RUN/slurmctld.pid" slurmctld || alive "$JG_RUN/slurmd.pid" slurmd \
                           || alive "$JG_RUN/slurmdbd.pid" slurmdbd; }; then
  # Queued and running jobs survive a restart, except that a changed CPU layout (SLURM_CPUS) makes
  # slurmctld abort and requeue jobs running on the node ("change in socket/core configuration").
  log "config changed: restarting slurmd, slurmctld, slurmdbd"
  "$HERE/slurm-down.sh" --keep-munge
fi

# ---------------------------------------------------------------- 3. daemons
# munged: one per machine (fixed socket /run/munge). One we did not start is used, never stopped.
if ! alive "$JG_RUN/munged.pid" munged; then
  if munge -n </dev/null >/dev/null 2>&1; then
    log "using a munged not started by us"
  else
    rm -f /run/munge/munged.pid
    detach "$SLOG/startup.log" runuser -u munge -- /usr/sbin/munged   # forks; pid file written as user munge
    wait_for 10 test -s /run/munge/munged.pid || die "munged did not start, see /var/log/munge/munged.log"
    cp /run/munge/munged.pid "$JG_RUN/munged.pid"                    # our copy = "started by us"
    log "munged pid $(cat "$JG_RUN/munged.pid")"
  fi
fi
wait_for 10 sh -c 'munge -n </dev/null | unmunge' || die "munge round trip fails"

if ! alive "$MYRUN/mariadbd.pid" mariadbd; then
  port_busy "$MYPORT" && die "127.0.0.1:$MYPORT is taken by a process that is not our mariadbd"
  if [ ! -d "$MYDATA/mysql" ]; then
    rm -rf "$MYDATA"; install -d -m 750 -o mysql -g mysql "$MYDATA"
    log "mariadb-install-db $MYDATA"
    mariadb-install-db --no-defaults --user=mysql --datadir="$MYDATA" --auth-root-authentication-method=socket \
      --skip-test-db >>"$SLOG/mariadb-install.log" 2>&1 || die "mariadb-install-db failed, see $SLOG/mariadb-install.log"
  fi
  rm -f "$MYRUN/mariadbd.pid"
  # --no-defaults: ignore /etc/mysql (system datadir, socket, port). Does not fork itself, hence --bg.
  # skip-name-resolve: TCP clients from 127.0.0.1 match 'user'@'127.0.0.1' without DNS.
  detach --bg "$SLOG/mariadbd.log" /usr/sbin/mariadbd --no-defaults --user=mysql --datadir="$MYDATA" \
    --socket="$MYRUN/mysqld.sock" --pid-file="$MYRUN/mariadbd.pid" --bind-address=127.0.0.1 --port="$MYPORT" \
    --skip-name-resolve --innodb-buffer-pool-size=256M --innodb-lock-wait-timeout=900
  wait_for 60 my -e 'select 1' || die "mariadbd did not start, see $SLOG/mariadbd.log"
  wait_for 10 test -s "$MYRUN/mariadbd.pid"
  log "mariadbd pid $(cat "$MYRUN/mariadbd.pid") on 127.0.0.1:$MYPORT"
  my -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
    CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'jobgate';
    CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'jobgate';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1'; GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"
fi

STARTED=0
# slurmdbd, slurmctld, slurmd fork themselves and write their pid files.
# They listen on 0.0.0.0:6819/6817/6818 (Slurm 22.05 has no bind address): another Slurm would clash.
if ! alive "$JG_RUN/slurmdbd.pid" slurmdbd; then
  port_busy 6819 && die "port 6819 is taken by a slurmdbd that is not ours (another test cluster?): stop it first"
  rm -f "$JG_RUN/slurmdbd.pid"     # stale (dead or zombie): else the wait below sees the old pid
  detach "$SLOG/startup.log" /usr/sbin/slurmdbd || die "slurmdbd failed, see $SLOG/slurmdbd.log"
  wait_for 60 sacctmgr -n show cluster || die "slurmdbd not answering, see $SLOG/slurmdbd.log"
  log "slurmdbd pid $(cat "$JG_RUN/slurmdbd.pid")"; STARTED=1
fi

# accounting: cluster, account "jobgate", users root + jobtest in it (a warm run: one query).
# slurmctld would add the cluster itself, but associations need it now. -P: else names are cut at 10 chars.
assoc() { sacctmgr -n -P show assoc cluster="$CLUSTER" format=account,user; }
have_assocs() { local u; for u in root "$SSH_USER"; do grep -qx "$ACCOUNT|$u" <<<"$1" || return 1; done; }
A=$(assoc)
if ! have_assocs "$A"; then
  sacctmgr -n -P show cluster format=cluster | grep -qx "$CLUSTER" || sacctmgr -i add cluster "$CLUSTER" >/dev/null
  grep -qx "$ACCOUNT|" <<<"$A" \
    || sacctmgr -i add account "$ACCOUNT" cluster="$CLUSTER" description="jobgate tests" organization=jobgate >/dev/null
  for u in root "$SSH_USER"; do
    grep -qx "$ACCOUNT|$u" <<<"$A" || sacctmgr -i add user "$u" account="$ACCOUNT" cluster="$CLUSTER" >/dev/null
  done
  have_assocs "$(assoc)" || die "could not create the associations $ACCOUNT/{root,$SSH_USER} in $CLUSTER"
  log "accounting: account $ACCOUNT with users root, $SSH_USER"
fi

if ! alive "$JG_RUN/slurmctld.pid" slurmctld; then
  port_busy 6817 && die "port 6817 is taken by a slurmctld that is not ours (another test cluster?): stop it first"
  rm -f "$JG_RUN/slurmctld.pid"     # stale (dead or zombie): else the wait below sees the old pid
  detach "$SLOG/startup.log" /usr/sbin/slurmctld || die "slurmctld failed, see $SLOG/slurmctld.log"
  wait_for 30 scontrol ping || die "slurmctld not answering, see $SLOG/slurmctld.log"
  log "slurmctld pid $(cat "$JG_RUN/slurmctld.pid")"; STARTED=1
fi
if ! alive "$JG_RUN/slurmd.pid" slurmd; then
  port_busy 6818 && die "port 6818 is taken by a slurmd that is not ours (another test cluster?): stop it first"
  rm -f "$JG_RUN/slurmd.pid"     # stale (dead or zombie): else the wait below sees the old pid
  detach "$SLOG/startup.log" /usr/sbin/slurmd || die "slurmd failed, see $SLOG/slurmd.log"
  wait_for 30 test -s "$JG_RUN/slurmd.pid" || die "slurmd wrote no pid file, see $SLOG/slurmd.log"
  log "slurmd pid $(cat "$JG_RUN/slurmd.pid")"; STARTED=1
fi

# ---------------------------------------------------------------- 4. wait until usable
# idle = up, nothing running; mixed/allocated/completing = up and busy (a re-run while tests run). "idle*" = not responding.
node_ok() { sinfo -h -N -n "$HOST" -o '%T' | grep -qxE 'idle|mixed|allocated|completing'; }
if ! wait_for 60 node_ok; then
  log "node state '$(sinfo -h -N -n "$HOST" -o '%T' 2>&1)': trying to resume"
  scontrol update NodeName="$HOST" State=RESUME 2>/dev/null || true
  wait_for 30 node_ok || die "node not usable: $(sinfo -N -h -o '%T %E' 2>&1), see $SLOG/slurmd.log"
fi
# after a (re)start: slurmctld has registered with slurmdbd (ControlHost set), else the first jobs
# reach accounting late. Then sacct must answer (every run: it is what the tests rely on).
ctld_registered() { [ -n "$(sacctmgr -n -P show cluster "$CLUSTER" format=controlhost)" ]; }
if [ "$STARTED" = 1 ]; then
  wait_for 30 ctld_registered || die "slurmctld did not register with slurmdbd, see $SLOG/slurmctld.log"
fi
wait_for 30 sacct -n -X -S now -o JobID || die "sacct does not answer, see $SLOG/slurmdbd.log"

write_env "$JG_VAR/slurm.env" <<EOF
JOBGATE_TEST_SLURM_CLUSTER=$CLUSTER
JOBGATE_TEST_SLURM_PARTITION=$PARTITION
JOBGATE_TEST_SLURM_ACCOUNT=$ACCOUNT
JOBGATE_TEST_SLURM_CPUS=$CPUS
JOBGATE_TEST_PBS=1
EOF
log "cluster up: $(sinfo -h -N -o '%N %P %T %c CPUs %m MB')"
