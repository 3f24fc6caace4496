"""What a viewer knows of a run: the journal read incrementally.

A campaign of 10,000 jobs must not cost 10,000 JSON parses a second: each poll stats the state files
and re-reads only those whose mtime or size changed. Every viewer (watch, submit's follow) reads through
this, after the executor's refresh (which a viewer passes in, since executors sit above the journal).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, TypeVar

from ptycho_batch.journal.lock import lock_held, read_owner
from ptycho_batch.journal.records import JobState, State
from ptycho_batch.journal.store import SUBMITTED_DIR, Run, planned_state

Stamp = tuple[int, int]
T = TypeVar("T")


def file_stamp(path: str) -> Stamp | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size


FINAL_SWEEP = 10  # a final job's state file is re-checked on one poll in this many (a full read on `r`)


class JournalCache:
    """A run's plan and job states; `poll()` picks up what changed since the last poll."""

    def __init__(self, run: Run, refresh: Callable[[Run], None] | None = None) -> None:
        self.run = run
        self.refresh = refresh
        self.plan = run.plan
        jobs = self.plan.jobs
        self.states: dict[str, JobState] = {name: planned_state(jobs.head(name), name=name) for name in jobs}
        self.info: dict[str, Any] = {}
        self.submit_alive = False
        self.version = 0  # bumped whenever a state changed, so views can cache per version
        self.started = _run_started(run)
        self._seen: dict[str, Stamp] = {}
        self._jobs_dir = str(run.dir / "jobs")
        self._submitted_dir = str(run.dir / SUBMITTED_DIR)
        self._submitted_stamp: Stamp | None = None
        self._folders: list[str] = []
        self._folders_stamp: Stamp | None = None
        self._final: set[str] = set()
        self._final_order: list[str] = []
        self._polls = 0
        self._memo: dict[str, tuple[int, Any]] = {}
        self.base_version: dict[str, int] = {}  # campaign job -> version when one of its cells last changed

    def poll(self, full: bool = False) -> list[JobState]:
        """Re-read the state files that changed; return the states that did.

        Unfinished jobs are checked on every poll, final ones (which rarely change again) in turns,
        so that an idle poll of a 10,000-job run stats a few hundred files, not 10,000.
        """
        self._polls += 1
        if self.refresh is not None:
            self.refresh(self.run)  # the executor's one refresh path (sacct for SLURM, liveness locally)
        changed: list[JobState] = []
        for slug in self._due(full):
            path = f"{self._jobs_dir}/{slug}/state.json"
            stamp = file_stamp(path)
            if stamp is None or self._seen.get(slug) == stamp:
                continue
            state = self.run.read_state(slug)
            if state is None:
                continue
            self._seen[slug] = stamp
            self.states[state.name] = state
            changed.append(state)
            (self._final.add if state.final else self._final.discard)(slug)
        changed += self._poll_submitted()
        if changed:
            self.version += 1
            self._final_order = list(self._final)
            for state in changed:
                if state.name in self.plan.jobs:
                    self.base_version[self.plan.jobs.head(state.name).base] = self.version
        self._poll_info()
        return changed

    def _poll_submitted(self) -> list[JobState]:
        """Jobs that only a submission record knows of (queued array tasks): as it says, until their own
        record appears (which always wins). Re-read only when the folder changed (a rename into it)."""
        stamp = file_stamp(self._submitted_dir)
        if stamp == self._submitted_stamp:
            return []
        self._submitted_stamp = stamp
        changed: list[JobState] = []
        for name, state in self.run.submitted_states().items():
            if self.plan.jobs.slug(name) not in self._seen and self.states[name] != state:
                self.states[name] = state
                changed.append(state)
        return changed

    def _due(self, full: bool) -> list[str]:
        stamp = file_stamp(self._jobs_dir)
        if stamp != self._folders_stamp:  # a new job folder changes the folder's mtime
            try:
                with os.scandir(self._jobs_dir) as entries:
                    self._folders = [entry.name for entry in entries]
                self._folders_stamp = stamp
            except FileNotFoundError:
                self._folders = []
        if full:
            return self._folders
        turn = self._polls % FINAL_SWEEP
        return [slug for slug in self._folders if slug not in self._final] + self._final_order[turn::FINAL_SWEEP]

    def _poll_info(self) -> None:
        stamp = file_stamp(str(self.run.dir / "run.json"))
        if stamp is not None and self._seen.get("/run.json") != stamp:
            try:
                self.info = json.loads((self.run.dir / "run.json").read_text())
                self._seen["/run.json"] = stamp
            except (OSError, ValueError):
                pass
        self.submit_alive = lock_held(self.run.campaign_dir) and self._owner_is_this_run()

    def _owner_is_this_run(self) -> bool:
        return read_owner(self.run.campaign_dir).get("run_id") == self.run.id

    def memo(self, key: str, version: int, compute: Callable[[], T]) -> T:
        """`compute()`, remembered while `version` stays the same (frames between changes reuse it)."""
        remembered, value = self._memo.get(key, (-1, None))
        if remembered != version:
            value = compute()
            self._memo[key] = (version, value)
        return value

    def per_version(self, key: str, compute: Callable[[], T]) -> T:
        return self.memo(key, self.version, compute)

    def backend_counts(self) -> Counter[tuple[str, State]]:
        """(backend, state) -> jobs."""
        return self.per_version("backend_counts", lambda: Counter((s.backend, s.state) for s in self.states.values()))

    def counts(self) -> Counter[State]:
        def by_state() -> Counter[State]:
            counts: Counter[State] = Counter()
            for (_, state), count in self.backend_counts().items():
                counts[state] += count
            return counts

        return self.per_version("counts", by_state)

    @property
    def all_final(self) -> bool:
        counts = self.counts()
        return not counts.get(State.PENDING) and not counts.get(State.RUNNING)

    def settled(self) -> bool:
        """No state of this run will change any more: every job is final, or no one is left to move them."""
        if self.all_final or self.info.get("finished"):
            return True
        return not self.submit_alive and self.info.get("executor") == "local"

    def elapsed(self) -> float:
        """Seconds since the run started; up to its last job's end once every job is final."""
        if self.all_final:
            last_end = self.per_version("last_end", lambda: max(
                (s.ended for s in self.states.values() if s.ended is not None), default=None))
            if last_end is not None:
                return last_end - self.started
        return time.time() - self.started


def _run_started(run: Run) -> float:
    """Run ids begin with their UTC start stamp (`20261126T062317Z-ab12`, or with milliseconds)."""
    match = re.match(r"(\d{8}T\d{6})(\.\d+)?Z", run.id)
    if match is None:
        return (run.dir / "plan.json").stat().st_mtime
    moment = datetime.strptime(match.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=timezone.utc)
    return moment.timestamp() + float(match.group(2) or 0)
