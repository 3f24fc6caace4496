"""`ptybatch watch` and `ptybatch logs`: a live view of a run, read from its journal only.

On a terminal: a rich Live dashboard in the alternate screen, keys read in cbreak mode (see tui_app for
what they do). Elsewhere (CI logs, pipes): one plain line per state change, no control codes, and the
policy verdict as exit code once the run is settled. Every poll goes through the executor's one refresh
path (a liveness check of the local supervisor, or the shared once-per-interval sacct for SLURM), so the
dashboard, `status` and `submit` always show the same truth.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections import Counter
from contextlib import nullcontext
from typing import TextIO

from rich.console import Console
from rich.live import Live

from ptycho_batch.executors.registry import refresh, refresh_or_raise
from ptycho_batch.journal.reader import JournalCache
from ptycho_batch.journal.store import Run
from ptycho_batch.reports.detail import state_line
from ptycho_batch.reports.inventory import policy_decision
from ptycho_batch.tui.app import Dashboard
from ptycho_batch.tui.term import cbreak
from ptycho_batch.util.progress import spinner

STOP_CHECK_S = 0.25      # how soon a background viewer notices its stop event
BIG_JOURNAL = 1000       # jobs above which the first read gets a spinner
JOBS_PER_SECOND = 2500   # a bigger run is redrawn less often: 10,000 jobs every 4 s keeps an idle viewer cheap


def default_interval(jobs: int) -> float:
    """Seconds between journal reads when the user does not say: 1 s, longer for very big runs."""
    return max(1.0, jobs / JOBS_PER_SECOND)


def watch_run(run: Run, stop: threading.Event | None = None, interval: float = 1.0,
              console: Console | None = None) -> int:
    """Show `run` until `q`, `stop` is set, or (not on a terminal) the run is settled.

    Returns 0, or in plain mode the policy verdict (0 passed, 1 not). Safe to call from a thread: keys
    still work there, and Ctrl-C goes to the main thread, which should then set `stop` (BackgroundWatch).
    """
    stop = stop or threading.Event()
    console = console or Console()
    if not console.is_terminal:
        return watch_plain(run, stop, interval, sys.stdout)
    dashboard = Dashboard(run, refresh=refresh)
    with spinner(f"reading the journal of {len(dashboard.cache.plan.jobs)} jobs") \
            if len(dashboard.cache.plan.jobs) >= BIG_JOURNAL else nullcontext():
        dashboard.cache.poll()
    fd = sys.stdin.fileno() if sys.stdin is not None and sys.stdin.isatty() else None
    with cbreak(fd) as keys, Live(console=console, screen=True, auto_refresh=False,
                                  redirect_stdout=False, redirect_stderr=False) as live:
        next_poll = time.monotonic() + interval
        dirty = True
        while not dashboard.quit and not stop.is_set():
            if time.monotonic() >= next_poll:
                dashboard.cache.poll()
                next_poll = time.monotonic() + interval
                dirty = True
            if dirty:
                live.update(dashboard.frame(console.size.width, console.size.height), refresh=True)
            key = keys.read(min(max(0.0, next_poll - time.monotonic()), STOP_CHECK_S))
            dirty = key is not None
            if key is not None:
                dashboard.handle(key)
    return 0


def watch_plain(run: Run, stop: threading.Event, interval: float, out: TextIO) -> int:
    """One line per state change until the run is settled (or `stop`); the exit code of the policy."""
    cache = JournalCache(run, refresh=refresh)
    changed = cache.poll()
    counts = Counter(s.state for s in cache.states.values())
    print(f"[ptybatch] watching run {run.id} of {cache.plan.campaign}: {len(cache.states)} jobs ("
          + ", ".join(f"{state}: {count}" for state, count in sorted(counts.items())) + ")", file=out, flush=True)
    shown: dict[str, str] = {}
    while True:
        for state in changed:
            if shown.get(state.name) != state.state:
                print(state_line(state), file=out, flush=True)
                shown[state.name] = state.state
        if cache.settled():
            decision = policy_decision(cache.plan, cache.states)
            print(f"[ptybatch] {decision.text}", file=out, flush=True)
            return 0 if decision.passed else 1
        if stop.wait(interval):
            return 0
        changed = cache.poll()


class BackgroundWatch:
    """The dashboard in a thread, for `submit --watch` (the executor keeps the main thread and its signals)."""

    def __init__(self, run: Run, interval: float = 1.0) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=watch_run, args=(run, self._stop, interval),
                                        name="ptybatch-watch", daemon=True)
        self._thread.start()

    @property
    def active(self) -> bool:
        """False once the user pressed q (submit may then go back to printing its lines)."""
        return self._thread.is_alive()

    def stop(self) -> None:
        """Leave the dashboard and restore the terminal; call it in a `finally`."""
        self._stop.set()
        self._thread.join()


def cmd_watch(args: argparse.Namespace) -> int:
    from ptycho_batch.journal.locate import locate_run

    run = locate_run(args.target, args.out)
    refresh_or_raise(run)  # a scheduler that does not answer now is one line, not a dashboard of stale states
    try:
        return watch_run(run, interval=args.interval or default_interval(len(run.plan.jobs)))
    except KeyboardInterrupt:
        return 130
