"""Process control for jobs: each job runs in its own session; stopping it means its whole process group.

`ProcessRegistry` knows the running jobs of one runner (the local supervisor, or one SLURM task), so a
cancel, a scheduler's signal or Ctrl-C stops all of them at once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading

TERM_GRACE_S = 5.0   # SIGTERM first; SIGKILL to whatever is left this long after


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
