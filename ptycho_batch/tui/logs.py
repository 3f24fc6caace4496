"""`ptybatch logs RUN JOB [-f]`: print or follow one job's log.

Following switches to the next attempt's log when a job is retried, and stops once the job is final
and its log has stopped growing.
"""

from __future__ import annotations

import argparse
import difflib
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from ptycho_batch.campaign.plan import Plan
from ptycho_batch.journal.records import JobState
from ptycho_batch.journal.store import Run, planned_state
from ptycho_batch.util.errors import SpecError


def find_job(plan: Plan, token: str) -> str:
    """A job named by its exact name, its slug, or a unique prefix; SpecError (with suggestions) otherwise."""
    if token in plan.jobs:
        return token
    by_slug = [n for n, j in plan.jobs.items() if j.slug == token]
    prefixed = by_slug or [n for n in plan.jobs if n.startswith(token)]
    if len(prefixed) == 1:
        return prefixed[0]
    if prefixed:
        raise SpecError([f"job {token!r} is ambiguous: {', '.join(prefixed[:10])}"])
    close = difflib.get_close_matches(token, list(plan.jobs), n=5)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; jobs: {', '.join(list(plan.jobs)[:10])}"
    raise SpecError([f"run {plan.campaign}: no job {token!r}{hint}"])


def log_path(plan: Plan, state: JobState) -> Path:
    """The current attempt's log (the planned one until the job has started)."""
    return Path(state.log or plan.jobs[state.name].log)


def follow(current: Callable[[], JobState], plan: Plan, out: BinaryIO, poll: float = 0.25) -> None:
    """Copy the job's log to `out` as it grows, across attempts, until the job is final and the log still."""
    path, offset = log_path(plan, current()), 0
    while True:
        state = current()
        if log_path(plan, state) != path:
            offset = _copy_from(path, offset, out)
            path, offset = log_path(plan, state), 0
            out.write(f"\n[ptybatch] attempt {state.attempt}: {path}\n".encode())
        grown = _copy_from(path, offset, out)
        if grown == offset and state.final:
            return
        offset = grown
        out.flush()
        time.sleep(poll)


def _copy_from(path: Path, offset: int, out: BinaryIO) -> int:
    """Write the bytes of `path` past `offset` to `out`; return the new offset."""
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            while chunk := handle.read(1 << 20):
                out.write(chunk)
                offset += len(chunk)
    except FileNotFoundError:
        pass
    return offset


def cmd_logs(args: argparse.Namespace) -> int:
    from ptycho_batch.executors.registry import load_run, refresh
    from ptycho_batch.journal.locate import locate_run

    run = locate_run(args.target, args.out)
    plan, states = run.plan, load_run(run)
    name = find_job(plan, args.job)
    path = log_path(plan, states[name])
    out = sys.stdout.buffer
    if args.follow:
        try:
            follow(lambda: _current_state(run, name, refresh), plan, out)
        except KeyboardInterrupt:
            return 130
        return 0
    if not path.exists():
        print(f"{name}: no log yet ({states[name].state}); expected at {path}", file=sys.stderr)
        return 1
    _copy_from(path, 0, out)
    out.flush()
    return 0


def _current_state(run: Run, name: str, refresh: Callable[[Run], None]) -> JobState:
    """The job's state through the executor's refresh (the same truth `status` and `watch` see)."""
    refresh(run)
    job = run.plan.jobs[name]
    return run.read_state(job.slug) or planned_state(job)
