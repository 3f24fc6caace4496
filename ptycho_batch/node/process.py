"""Process control for jobs: each job runs in its own session; stopping it means its whole process group.

`ProcessRegistry` knows the running jobs of one runner (the local supervisor, or one SLURM task), so a
cancel, a scheduler's signal or Ctrl-C stops all of them at once.

Nothing a job started outlives it: every job's environment carries a token (`PTYBATCH_JOB_TOKEN`), and when
its main process ends (success, failure, timeout or cancel) its process group and every process still
carrying its token (background, `setsid` and double-forked children too) are killed. The runner is a child
subreaper, so such orphans become its children and are reaped here instead of by init.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import signal
import subprocess
import threading
from pathlib import Path

TERM_GRACE_S = 5.0   # SIGTERM first; SIGKILL to whatever is left this long after
JOB_TOKEN_VAR = "PTYBATCH_JOB_TOKEN"
_PR_SET_CHILD_SUBREAPER = 36


def signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the job's whole process group, then SIGKILL what is left after a grace period."""
    signal_group(proc.pid, signal.SIGTERM)
    try:
        proc.wait(TERM_GRACE_S)
    except subprocess.TimeoutExpired:
        pass
    signal_group(proc.pid, signal.SIGKILL)
    proc.wait()


class ProcessRegistry:
    """The process groups of running jobs, so that a cancel or a scheduler's signal stops all of them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._procs: dict[int, subprocess.Popen[bytes]] = {}
        self._stopping: set[int] = set()
        self.cancelled = False
        self.timed_out = False
        self.interrupted = False

    def add(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._procs[proc.pid] = proc

    def pids(self) -> set[int]:
        with self._lock:
            return set(self._procs)

    def remove(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._procs.pop(proc.pid, None)
            self._stopping.discard(proc.pid)

    def cancel_all(self) -> None:
        self.cancelled = True
        self._stop_all()

    def time_out(self) -> None:
        """The scheduler says time is up (SLURM's warning signal): stop the jobs, record a timeout."""
        self.timed_out = True
        self._stop_all()

    def interrupt(self) -> None:
        """The scheduler is taking the node away (SIGTERM: preemption or scancel): stop, decide nothing."""
        self.interrupted = True
        self._stop_all()

    def stop(self, pid: int) -> None:
        """Stop one job's group: SIGTERM now, SIGKILL after the grace (without blocking the caller)."""
        with self._lock:
            if pid not in self._procs or pid in self._stopping:
                return
            self._stopping.add(pid)
        signal_group(pid, signal.SIGTERM)
        timer = threading.Timer(TERM_GRACE_S, self._kill_if_running, (pid,))
        timer.daemon = True
        timer.start()

    def _kill_if_running(self, pid: int) -> None:
        with self._lock:
            running = pid in self._procs
        if running:
            signal_group(pid, signal.SIGKILL)

    def _stop_all(self) -> None:
        with self._lock:
            pids = list(self._procs)
        for pid in pids:
            self.stop(pid)


_subreaper_pid: int | None = None


def become_subreaper() -> None:
    """Orphans of this process's jobs are re-parented here (Linux; harmless where it is refused). Once per
    process (the flag stays set, but a fork does not inherit it): loading libc costs a millisecond a job."""
    global _subreaper_pid
    if _subreaper_pid == os.getpid():
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    _subreaper_pid = os.getpid()


def new_job_token() -> str:
    return secrets.token_hex(8)


def _adopted_carriers(token: str, known: set[int]) -> bool:
    """Whether a child this process did not start itself (an orphan it adopted) carries `token`; without
    /proc/<pid>/task/<tid>/children, assume so (a full sweep)."""
    try:
        tasks = list(Path("/proc/self/task").iterdir())
        children = {int(pid) for task in tasks for pid in (task / "children").read_text().split()}
    except OSError:
        return True
    return any(_carries(pid, token) for pid in children - known)


def _carries(pid: int, token: str) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            return f"{JOB_TOKEN_VAR}={token}".encode() in handle.read().split(b"\0")
    except OSError:
        return False


def _carriers(token: str) -> list[int]:
    """Live processes whose environment carries `token`."""
    return [int(entry.name) for entry in os.scandir("/proc")
            if entry.name.isdigit() and _carries(int(entry.name), token)]


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass   # not our child: its own parent (or init) reaps it


def end_leftovers(token: str, group: int, known: set[int]) -> int:
    """Kill what a finished job left running: its process group, then every carrier of its token (repeated
    until none is left, so a process forking during the sweep is caught). Returns how many were killed."""
    signal_group(group, signal.SIGKILL)
    _reap_group(group)
    if not _group_exists(group) and not _adopted_carriers(token, known):
        return 0   # the common case: nothing left, no scan of /proc
    killed = 0
    for _ in range(10):
        pids = [pid for pid in _carriers(token) if pid != os.getpid()]
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except (ProcessLookupError, PermissionError):
                pass
        for pid in pids:
            _reap(pid)
    return killed


def _group_exists(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _reap_group(group: int) -> None:
    """Reap killed members of the job's group that were adopted here (zombies otherwise)."""
    try:
        while os.waitpid(-group, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass
