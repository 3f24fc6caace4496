#!/usr/bin/env bash
# start-dev-cluster.sh DIR -- start (or confirm) ptybatch's private single-node SLURM cluster.
#
# Why: the SLURM executor is tested against a real scheduler, not a mock. This script gives every
# developer and CI the same small cluster: munged, slurmctld, slurmd and (unless turned off) slurmdbd
# on a private MariaDB so that `sacct` works. Every file it writes lives under DIR (configs, munge key,
# state, spool, logs, pid files, database); all addresses are 127.0.0.1.
#
# Idempotent: a daemon whose pid file names a live process is left alone, and any of its daemons that is
# down (killed, crashed) is started again. If the wanted configuration
# differs from the one the running daemons use (e.g. accounting switched off), the cluster is stopped
# with stop-dev-cluster.sh and started again on the same DIR: state and job ids carry over.
# Clients: `source DIR/env.sh` (exports SLURM_CONF), then sbatch/squeue/sacct/scontrol/submitit work.
#
# Knobs (environment, defaults in brackets):
#   PTYBATCH_SLURM_ACCOUNTING      dbd | none [dbd]   none = no slurmdbd, `sacct` fails (fallback tests)
#   PTYBATCH_SLURM_CPUS            CPUs the node advertises [8]; more than the real cores on purpose,
#                                  so tests can run several small jobs at once
#   PTYBATCH_SLURM_MAX_ARRAY_SIZE  MaxArraySize [10001]; array indices must stay below it
#   PTYBATCH_SLURM_MEM_MB          node RealMemory [90% of what `slurmd -C` finds]
#   PTYBATCH_SLURM_PORT            slurmctld port; slurmd uses +1, slurmdbd +2 [6817]
#   PTYBATCH_SLURM_INSTALL         1 = apt-get install missing Debian packages [1]
#   PTYBATCH_SLURM_TIMEOUT         seconds to wait for each daemon to answer [60]
# Needs root (daemons run as root, SlurmUser=root).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
DIR=${1:?usage: start-dev-cluster.sh DIR}
ACCOUNTING=${PTYBATCH_SLURM_ACCOUNTING:-dbd}
CPUS=${PTYBATCH_SLURM_CPUS:-8}
MAX_ARRAY_SIZE=${PTYBATCH_SLURM_MAX_ARRAY_SIZE:-10001}
CTLD_PORT=${PTYBATCH_SLURM_PORT:-6817}
SLURMD_PORT=$((CTLD_PORT + 1))
DBD_PORT=$((CTLD_PORT + 2))
TIMEOUT=${PTYBATCH_SLURM_TIMEOUT:-60}

log() { echo "[start-dev-cluster] $*"; }
die() { echo "[start-dev-cluster] ERROR: $*" >&2; exit 1; }

case $ACCOUNTING in dbd|none) ;; *) die "PTYBATCH_SLURM_ACCOUNTING must be dbd or none, not '$ACCOUNTING'";; esac
[[ $CPUS =~ ^[1-9][0-9]*$ ]] || die "PTYBATCH_SLURM_CPUS must be a positive integer"
[[ $MAX_ARRAY_SIZE =~ ^[1-9][0-9]*$ ]] || die "PTYBATCH_SLURM_MAX_ARRAY_SIZE must be a positive integer"
[ "$(id -u)" = 0 ] || die "must run as root"

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
# shellcheck source=slurm/dev-cluster-lib.sh
source "$HERE/dev-cluster-lib.sh"

# ------------------------------------------------------------------ packages
install_missing_packages() {
  local wanted=(munged:munge munge:munge slurmctld:slurmctld slurmd:slurmd sbatch:slurm-client)
  [ "$ACCOUNTING" = dbd ] && wanted+=(slurmdbd:slurmdbd mariadbd:mariadb-server-core
                                      mariadb-install-db:mariadb-server-core mariadb:mariadb-client-core)
  local missing=() pair
  for pair in "${wanted[@]}"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "${PTYBATCH_SLURM_INSTALL:-1}" = 1 ] || die "missing Debian packages: ${missing[*]}"
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  log "installing ${missing[*]} (log: $DIR/log/apt.log)"
  local apt=(apt-get -o DPkg::Lock::Timeout=300)
  export DEBIAN_FRONTEND=noninteractive
  # try without `update` first: the package lists are usually fresh enough and updating costs seconds
  "${apt[@]}" install -y --no-install-recommends "${missing[@]}" >"$DIR/log/apt.log" 2>&1 || {
    "${apt[@]}" update >>"$DIR/log/apt.log" 2>&1
    "${apt[@]}" install -y --no-install-recommends "${missing[@]}" >>"$DIR/log/apt.log" 2>&1 \
      || die "apt-get failed, see $DIR/log/apt.log"
  }
}

# ------------------------------------------------------------------ helpers
wait_until() { # wait_until WHAT LOGFILE CMD... : poll CMD until it succeeds, else show the log and die
  local what=$1 logfile=$2; shift 2
  local deadline=$((SECONDS + TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      tail -n 25 "$logfile" >&2 2>/dev/null || true
      die "$what not ready after ${TIMEOUT}s (log: $logfile)"
    fi
    sleep 0.2
  done
}

any_daemon_running() {
  live_pid "$DIR/run/slurmctld.pid" slurmctld >/dev/null || live_pid "$DIR/run/slurmd.pid" slurmd >/dev/null \
    || live_pid "$DIR/run/slurmdbd.pid" slurmdbd >/dev/null
}

RESTART_NEEDED=0
write_config() { # write_config PATH MODE < content : replace only when the content changed
  local tmp
  tmp=$(mktemp "$1.XXXX"); cat >"$tmp"; chmod "$2" "$tmp"
  if [ -f "$1" ] && cmp -s "$tmp" "$1"; then rm -f "$tmp"; return 0; fi
  [ -f "$1" ] && any_daemon_running && RESTART_NEEDED=1
  mv -f "$tmp" "$1"
}

port_in_use() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }

start_daemon_unless_running() { # PIDFILE COMM CMD... : daemons must never inherit our stdout/stderr,
  local pidfile=$1 comm=$2; shift 2     # or a CI step that captures them waits for them forever
  if live_pid "$pidfile" "$comm" >/dev/null; then log "$comm already running"; return 0; fi
  log "starting $comm"
  "$@" </dev/null >>"$DIR/log/$comm.stdout" 2>&1
}

# ------------------------------------------------------------------ layout and configuration
mkdir -p "$DIR"/{state,spool,log,run}
install_missing_packages
chmod 755 "$DIR"
# munged refuses a socket directory others can write to, and a key readable by others
install -d -m 755 "$DIR/munge"
install -d -m 700 "$DIR/munge/private"
MUNGE_SOCKET=$DIR/munge/munge.socket
MUNGE_KEY=$DIR/munge/private/munge.key
if [ ! -s "$MUNGE_KEY" ]; then
  dd if=/dev/urandom of="$MUNGE_KEY" bs=1024 count=1 status=none
  chmod 400 "$MUNGE_KEY"
fi

NODE=$(hostname -s)
# Node size from `slurmd -C` (the real hardware); a node described bigger than it is gets drained.
HARDWARE=$(slurmd -C | head -n1)
hardware() { grep -o "$1=[0-9]*" <<<"$HARDWARE" | cut -d= -f2; }
MEM_MB=${PTYBATCH_SLURM_MEM_MB:-$(( $(hardware RealMemory) * 90 / 100 ))}
# Without DefMemPerCPU a job gets the whole node's memory by default: one job at a time.
DEF_MEM_PER_CPU=$(( MEM_MB / CPUS ))

if [ "$ACCOUNTING" = dbd ]; then
  ACCOUNTING_CONF="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT
# slurmctld reaches slurmdbd through munge; that socket is read from AccountingStoragePass, not AuthInfo
AccountingStoragePass=$MUNGE_SOCKET"
else
  ACCOUNTING_CONF="AccountingStorageType=accounting_storage/none"
fi

# Memory enforcement, so that a job over its --mem ends OUT_OF_MEMORY: with a cgroup v1 memory controller
# (hybrid hierarchies, as podman machines here have) task/cgroup confines each step and the kernel's OOM
# killer acts; otherwise each step is measured every second and killed when over (OverMemoryKill).
if [ -d /sys/fs/cgroup/memory ]; then
  MEMORY_CONF="TaskPlugin=task/cgroup"
  write_config "$DIR/cgroup.conf" 644 <<EOF
# Generated by ptybatch slurm/start-dev-cluster.sh; edits are overwritten on the next start.
CgroupPlugin=cgroup/v1
CgroupMountpoint=/sys/fs/cgroup
ConstrainRAMSpace=yes
ConstrainSwapSpace=yes
AllowedSwapSpace=0
EOF
else
  MEMORY_CONF="TaskPlugin=task/none
JobAcctGatherFrequency=task=1
JobAcctGatherParams=OverMemoryKill"
  rm -f "$DIR/cgroup.conf"
fi

write_config "$DIR/slurm.conf" 644 <<EOF
# Generated by ptybatch slurm/start-dev-cluster.sh; edits are overwritten on the next start.
ClusterName=ptybatch
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# track processes by parent id (no systemd here); memory is enforced as MEMORY_CONF above says
ProctrackType=proctrack/linuxproc
$MEMORY_CONF
JobAcctGatherType=jobacct_gather/linux
MpiDefault=none
# the default MailProg (/usr/bin/mail) is not installed; a missing one logs an error per job
MailProg=/bin/true
ReturnToService=2
KillWait=5
# finished jobs stay visible to squeue/scontrol for 5 minutes (the sacct-less fallback reads them)
MinJobAge=300
MaxJobCount=100000
MaxArraySize=$MAX_ARRAY_SIZE
# the defaults (batch_sched_delay=3, sched_interval=60, bf_interval=30) make a test cluster crawl:
# a three-job dependency chain took 42 s with them, 2 s without
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_interval=2,bf_interval=1,sched_min_interval=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$DEF_MEM_PER_CPU
$ACCOUNTING_CONF
# advertise PTYBATCH_SLURM_CPUS CPUs whatever the real core count (oversubscription on purpose)
SlurmdParameters=config_overrides
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
# Jobs in "urgent" preempt those in "debug" (the default), which are requeued: a real PREEMPTED for tests.
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP PriorityTier=1
PartitionName=urgent Nodes=ALL MaxTime=INFINITE State=UP PriorityTier=2
EOF

if [ "$ACCOUNTING" = dbd ]; then
  # slurmdbd reads slurmdbd.conf beside $SLURM_CONF; it must be mode 600 and owned by SlurmUser
  write_config "$DIR/slurmdbd.conf" 600 <<EOF
# Generated by ptybatch slurm/start-dev-cluster.sh; edits are overwritten on the next start.
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
PidFile=$DIR/run/slurmdbd.pid
LogFile=$DIR/log/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
# MariaDB listens on its unix socket only (--skip-networking): host "localhost" plus MYSQL_UNIX_PORT
# select it, and root logs in by unix_socket authentication (no password)
StorageHost=localhost
StorageUser=root
StorageLoc=slurm_acct_db
EOF
fi

cat >"$DIR/env.sh" <<EOF
# Source this to use ptybatch's dev cluster in $DIR (sbatch, squeue, sacct, scontrol, submitit).
export SLURM_CONF=$DIR/slurm.conf
EOF

export SLURM_CONF=$DIR/slurm.conf
# a caller running inside a SLURM job must not make our client calls talk about its job
unset SLURM_JOB_ID SLURM_JOBID

if [ "$RESTART_NEEDED" = 1 ]; then
  log "configuration changed while the cluster runs: restarting it"
  "$HERE/stop-dev-cluster.sh" "$DIR"
fi

# ------------------------------------------------------------------ daemons
start_daemon_unless_running "$DIR/munge/munged.pid" munged \
  munged --force --socket="$MUNGE_SOCKET" --key-file="$MUNGE_KEY" --pid-file="$DIR/munge/munged.pid" \
  --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/private/munged.seed"
wait_until munged "$DIR/log/munged.log" sh -c "munge -n -S '$MUNGE_SOCKET' | unmunge -S '$MUNGE_SOCKET'"

if [ "$ACCOUNTING" = dbd ]; then
  DB=$DIR/mysql
  export MYSQL_UNIX_PORT=$DB/mysqld.sock
  if ! live_pid "$DB/mysqld.pid" mariadbd >/dev/null && [ ! -d "$DB/data/mysql" ]; then
    log "initialising the MariaDB data directory"
    mkdir -p "$DB/data"
    mariadb-install-db --no-defaults --datadir="$DB/data" --user=root \
      --auth-root-authentication-method=socket --skip-test-db >"$DIR/log/mariadb-install.log" 2>&1 \
      || die "mariadb-install-db failed, see $DIR/log/mariadb-install.log"
  fi
  # mariadbd stays in the foreground: setsid detaches it from our session and terminal
  start_daemon_unless_running "$DB/mysqld.pid" mariadbd \
    setsid --fork mariadbd --no-defaults --datadir="$DB/data" --user=root --skip-networking \
    --socket="$DB/mysqld.sock" --pid-file="$DB/mysqld.pid" --log-error="$DIR/log/mariadb.log" \
    --innodb-buffer-pool-size=128M --innodb-log-file-size=16M --innodb-use-native-aio=0
  wait_until mariadbd "$DIR/log/mariadb.log" mariadb --no-defaults -S "$DB/mysqld.sock" -uroot -e 'select 1'

  live_pid "$DIR/run/slurmdbd.pid" slurmdbd >/dev/null || ! port_in_use "$DBD_PORT" \
    || die "port $DBD_PORT is taken by another program; choose PTYBATCH_SLURM_PORT"
  start_daemon_unless_running "$DIR/run/slurmdbd.pid" slurmdbd slurmdbd
  wait_until slurmdbd "$DIR/log/slurmdbd.log" sacctmgr -n list cluster
fi

# a port held by our own live daemon is fine: this script restarts whichever of its daemons is down
live_pid "$DIR/run/slurmctld.pid" slurmctld >/dev/null || ! port_in_use "$CTLD_PORT" \
  || die "port $CTLD_PORT is taken by another program (another cluster?); choose PTYBATCH_SLURM_PORT"
live_pid "$DIR/run/slurmd.pid" slurmd >/dev/null || ! port_in_use "$SLURMD_PORT" \
  || die "port $SLURMD_PORT is taken by another program (another cluster?); choose PTYBATCH_SLURM_PORT"
start_daemon_unless_running "$DIR/run/slurmctld.pid" slurmctld slurmctld
wait_until slurmctld "$DIR/log/slurmctld.log" scontrol ping

start_daemon_unless_running "$DIR/run/slurmd.pid" slurmd slurmd -N "$NODE"
node_ready() { sinfo -h -n "$NODE" -o %T | grep -Eqx 'idle|mixed|allocated|completing'; }
wait_until "node $NODE" "$DIR/log/slurmd.log" node_ready

log "ready: node $NODE, $CPUS CPUs, MaxArraySize=$MAX_ARRAY_SIZE, accounting: $ACCOUNTING"
log "use:  source $DIR/env.sh"
log "stop: $HERE/stop-dev-cluster.sh $DIR [--purge]"
