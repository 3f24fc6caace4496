#!/usr/bin/env bash
# stop-dev-cluster.sh DIR [--purge] -- stop the daemons that start-dev-cluster.sh DIR started.
#
# Only processes named by DIR's pid files are signalled, so other clusters and daemons on the machine
# are safe. Jobs still queued or running are cancelled first so that no slurmstepd or job process
# outlives slurmd. DIR (state, logs, database) is kept, so start-dev-cluster.sh can restart it with
# job ids carrying on; --purge deletes DIR afterwards (job ids then restart at 1).
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
DIR=${1:?usage: stop-dev-cluster.sh DIR [--purge]}
PURGE=${2:-}
log() { echo "[stop-dev-cluster] $*"; }
[ -z "$PURGE" ] || [ "$PURGE" = --purge ] || { echo "usage: stop-dev-cluster.sh DIR [--purge]" >&2; exit 2; }
[ -d "$DIR" ] || { log "no such directory $DIR: nothing to stop"; exit 0; }
DIR=$(cd "$DIR" && pwd)
# shellcheck source=slurm/dev-cluster-lib.sh
source "$HERE/dev-cluster-lib.sh"
export SLURM_CONF=$DIR/slurm.conf

cancel_all_jobs() {
  live_pid "$DIR/run/slurmctld.pid" slurmctld >/dev/null && [ -f "$SLURM_CONF" ] || return 0
  local jobs
  mapfile -t jobs < <(timeout 10 squeue -h -o %A 2>/dev/null | sort -u)
  [ ${#jobs[@]} -gt 0 ] || return 0
  log "cancelling ${#jobs[@]} job(s)"
  timeout 10 scancel "${jobs[@]}" 2>/dev/null
  for _ in $(seq 1 100); do
    [ -z "$(timeout 10 squeue -h -t RUNNING,COMPLETING,SUSPENDED 2>/dev/null)" ] && return 0
    sleep 0.2
  done
  log "jobs still completing after 20 s; stopping anyway"
}

stop_daemon() { # stop_daemon PIDFILE COMM: SIGTERM, wait up to 30 s, then SIGKILL
  local pid
  if ! pid=$(live_pid "$1" "$2"); then rm -f "$1"; log "$2 not running"; return 0; fi
  log "stopping $2 (pid $pid)"
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 1 150); do live_pid "$1" "$2" >/dev/null || break; sleep 0.2; done
  if live_pid "$1" "$2" >/dev/null; then
    log "$2 ignored SIGTERM for 30 s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null
    sleep 0.5
  fi
  rm -f "$1"
}

cancel_all_jobs
# clients first, then the services they report to
stop_daemon "$DIR/run/slurmd.pid" slurmd
stop_daemon "$DIR/run/slurmctld.pid" slurmctld
stop_daemon "$DIR/run/slurmdbd.pid" slurmdbd
stop_daemon "$DIR/mysql/mysqld.pid" mariadbd
stop_daemon "$DIR/munge/munged.pid" munged

if [ "$PURGE" = --purge ]; then rm -rf "$DIR"; log "removed $DIR"; fi
log "done"
