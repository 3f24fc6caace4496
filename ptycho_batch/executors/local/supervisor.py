"""The run supervisor: a detached process that carries one local run from its first job to its report.

`submit` forks it once everything is planned and journaled (so it starts in a millisecond, with nothing to
import), and then only follows the journal. The supervisor leaves the submitter's session, so closing the
terminal (SIGHUP), Ctrl-C in it or `kill -9` of the submitter does not reach it or its jobs. It inherits the
campaign lock from the submitter and holds it until the run is finished. It records its pid and start time
in run.json, so any reader can tell it is alive; a reader that finds it dead settles the run (liveness).
Its own output (nothing, unless something goes wrong) goes to `<run>/supervisor.log`.
"""

from __future__ import annotations

import gc
import os
import select
import signal
import socket
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import IO

from ptycho_batch.journal.lock import record_owner
from ptycho_batch.journal.store import Run
from ptycho_batch.util.procs import process_start_time

LOG_NAME = "supervisor.log"
_exits: dict[Path, int] = {}   # run dir -> read end of a pipe the supervisor holds open until it exits


def start(run: Run, lock: IO[str], body: Callable[[], None]) -> int:
    """Fork the supervisor, which runs `body` and exits; return its pid once run.json names it."""
    ready_r, ready_w = os.pipe()
    exit_r, exit_w = os.pipe()   # non-inheritable: jobs and probes do not hold it open
    pid = os.fork()
    if pid == 0:  # the supervisor
        os.close(ready_w)
        os.close(exit_r)
        _detach(run)
        os.read(ready_r, 1)  # run.json names this process before it does anything (EOF if the parent died)
        os.close(ready_r)
        os._exit(_supervise(run, lock, body))
    os.close(ready_r)
    os.close(exit_w)
    _exits[run.dir] = exit_r
    run.update_info(supervisor={"pid": pid, "start": process_start_time(pid), "host": socket.gethostname()})
    os.close(ready_w)
    return pid


def pause(run: Run, seconds: float) -> None:
    """Sleep `seconds`, or less: until the supervisor of `run` exits, when this process started it (so a
    foreground submit reports a finished run at once instead of at its next poll)."""
    fd = _exits.get(run.dir)
    if fd is None:
        time.sleep(seconds)
    elif select.select([fd], [], [], seconds)[0]:   # EOF: the supervisor is gone
        os.close(_exits.pop(run.dir))


def _detach(run: Run) -> None:
    """Its own session, no terminal, output to the run's supervisor.log."""
    os.setsid()
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    null = os.open(os.devnull, os.O_RDONLY)
    log = os.open(run.dir / LOG_NAME, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(null)
    os.close(log)


def _supervise(run: Run, lock: IO[str], body: Callable[[], None]) -> int:
    gc.freeze()  # the plan and the imported modules live until exit: the collector need not walk them per job
    try:
        record_owner(run.campaign_dir, run.id, os.getpid())
        body()
        return 0
    except BaseException:  # nothing may escape a forked child: it would run the submitter's code
        traceback.print_exc()
        return 1
    finally:
        lock.close()
