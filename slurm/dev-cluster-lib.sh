# shellcheck shell=bash
# dev-cluster-lib.sh -- shared by start-dev-cluster.sh and stop-dev-cluster.sh (sourced, not run).

# live_pid PIDFILE COMM: print the pid that PIDFILE names when it is a live, non-zombie process called
# COMM. Checking the name as well as the pid means a stale pid file, whose number the kernel has since
# given to an unrelated process, is never taken for our daemon (and that process is never signalled).
live_pid() {
  local pid state
  [ -s "$1" ] || return 1
  pid=$( { tr -dc 0-9 <"$1"; } 2>/dev/null) || return 1  # the file may vanish meanwhile
  [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
  state=$(sed 's/^.*) //' "/proc/$pid/stat" | cut -d' ' -f1)
  [ "$state" != Z ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] || return 1
  echo "$pid"
}
