"""Following a run to its end from the foreground: refresh, read what changed, tell the caller, repeat."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ptycho_batch.executors.local.supervisor import pause
from ptycho_batch.executors.registry import executor_of, refresh
from ptycho_batch.journal.reader import JournalCache
from ptycho_batch.journal.records import JobState
from ptycho_batch.journal.store import Run

MAX_INTERVAL_S = 5.0


def follow(run: Run, on_change: Callable[[JobState], None], *, interval: float = 0.25,
           stop: threading.Event | None = None, timeout: float | None = None,
           on_notice: Callable[[str | None], None] = lambda problem: None) -> dict[str, JobState]:
    """Until every job is final (and a self-finalizing carrier has written the report) or `stop` is set;
    backs off while nothing changes. `timeout` (seconds) bounds the wait. `on_notice` hears when the
    scheduler stops answering (its error) and when it answers again (None)."""
    deadline = time.monotonic() + timeout if timeout is not None else None
    cache = JournalCache(run, refresh=refresh)
    self_finalizing = executor_of(run).finalizes_itself
    wait = interval
    problem = None
    while True:
        changed = cache.poll()
        for state in changed:
            on_change(state)
        if cache.info.get("scheduler_unreachable") != problem:
            problem = cache.info.get("scheduler_unreachable")
            on_notice(problem)
        if cache.all_final and (cache.info.get("finished") or not self_finalizing):
            return cache.states
        if (stop is not None and stop.is_set()) or (deadline is not None and time.monotonic() > deadline):
            return cache.states
        wait = interval if changed else min(wait * 1.5, MAX_INTERVAL_S)
        pause(run, wait)   # cut short when the run's local supervisor exits
