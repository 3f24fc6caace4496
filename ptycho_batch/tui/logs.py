"""`ptybatch logs RUN JOB [-f]`: print or follow one job's log, and the tail readers the TUI shares.

Logs can be gigabytes (Keras progress bars), so tails are read from the end of the file, never whole.
Following switches to the next attempt's log when a job is retried, and stops once the job is final
and its log has stopped growing.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from ptycho_batch.campaign.plan import Plan
from ptycho_batch.journal.store import JobState, Run
from ptycho_batch.node.observe import clean_text
from ptycho_batch.util.errors import SpecError

TAIL_BYTES = 64 * 1024


def read_tail(path: Path, max_bytes: int = TAIL_BYTES) -> str:
    """The last `max_bytes` of a log as a terminal would show them (empty when there is no log yet)."""
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - max_bytes))
            data = handle.read(max_bytes)
    except OSError:
        return ""
    if len(data) == max_bytes and size > max_bytes:
        data = data.split(b"\n", 1)[-1]  # drop the cut-off first line
    return clean_text(data.decode(errors="replace"))


def tail_lines(path: Path, count: int) -> list[str]:
    """The last `count` lines of a log, blank trailing lines removed."""
    lines = read_tail(path).rstrip("\n").splitlines()
    return lines[-count:] if count > 0 else []


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
    from ptycho_batch.journal.locate import load_run, locate_run

    run = locate_run(args.target, args.out)
    plan, states = load_run(run)
    name = find_job(plan, args.job)
    path = log_path(plan, states[name])
    out = sys.stdout.buffer
    if args.follow:
        try:
            follow(lambda: _current_state(run, plan, name), plan, out)
        except KeyboardInterrupt:
            return 130
        return 0
    if not path.exists():
        print(f"{name}: no log yet ({states[name].state}); expected at {path}", file=sys.stderr)
        return 1
    _copy_from(path, 0, out)
    out.flush()
    return 0


def _current_state(run: Run, plan: Plan, name: str) -> JobState:
    job = plan.jobs[name]
    return run.read_state(job.slug) or JobState(name=name, backend=job.backend, stage=job.stage)


def add_logs_parser(commands: argparse._SubParsersAction) -> None:
    logs = commands.add_parser("logs", help="print (or follow with -f) one job's log")
    logs.add_argument("target", help="run dir, run id, campaign file or name, or out dir (its newest run)")
    logs.add_argument("job", help="job name, slug, or a unique prefix")
    logs.add_argument("-f", "--follow", action="store_true",
                      help="keep printing as the log grows, until the job ends (follows retries)")
    logs.add_argument("--out", type=Path)
