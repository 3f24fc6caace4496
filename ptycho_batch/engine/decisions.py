"""Which jobs run and which are reused from an earlier run, and why (shared by `plan` and every executor).

A job is reused when an earlier run completed it with the same cache key and its collected artifacts
are still on disk with the recorded digests. Otherwise it runs, and the reason names what changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ptycho_batch.campaign.plan import Plan, PlannedJob, cache_key, cache_parts, why_rerun
from ptycho_batch.journal.records import JobState, State
from ptycho_batch.journal.store import Run, list_runs
from ptycho_batch.node.runner import upstream_digests
from ptycho_batch.runtimes.base import Runtime
from ptycho_batch.util.digests import path_digest
from ptycho_batch.util.errors import RecordError


@dataclass(frozen=True)
class Decision:
    run: bool
    reason: str
    cached: JobState | None = None


@dataclass
class History:
    """Per job name, its latest record and its latest COMPLETED record across earlier runs."""

    latest: dict[str, tuple[Run, JobState]]
    completed: dict[str, tuple[Run, JobState]]

    @classmethod
    def load(cls, campaign_dir: Path, exclude: str | None = None) -> History:
        latest: dict[str, tuple[Run, JobState]] = {}
        completed: dict[str, tuple[Run, JobState]] = {}
        for run in list_runs(campaign_dir):
            if run.id == exclude:
                continue
            try:
                states = run.read_states()
            except RecordError:
                continue  # an old run whose plan is unreadable informs nothing and blocks nothing
            for name, state in states.items():
                if state.state in (State.PENDING,):
                    continue
                latest[name] = (run, state)
                if state.state == State.COMPLETED:
                    completed[name] = (run, state)
        return cls(latest, completed)


def artifacts_intact(state: JobState) -> str | None:
    """None when every recorded artifact is still on disk unchanged, else what is wrong."""
    for name, record in state.artifacts.items():
        path = Path(record.path)
        if not path.exists():
            return f"artifact {name} is gone from {path}"
        if record.digest and record.algorithm and path_digest(path, record.algorithm) != record.digest:
            return f"artifact {name} changed on disk"
    return None


def decide_all(plan: Plan, runtimes: dict[str, Runtime], history: History, *, force: bool = False,
               rerun_failed: bool = False) -> dict[str, Decision]:
    """Decide every job in topological order; a job whose upstream runs also runs."""
    decisions: dict[str, Decision] = {}
    known: dict[str, JobState] = {}
    for name, job in plan.jobs.items():
        decision = _decide(job, runtimes[job.backend], history, decisions, known, force, rerun_failed)
        decisions[name] = decision
        if decision.cached is not None:
            known[name] = decision.cached
    return decisions


def _decide(job: PlannedJob, runtime: Runtime, history: History, decisions: dict[str, Decision],
            known: dict[str, JobState], force: bool, rerun_failed: bool) -> Decision:
    if force:
        return Decision(True, "--force")
    rerunning = [n for n in job.needs if decisions[n].run]
    if rerunning:
        return Decision(True, f"upstream {', '.join(rerunning)} runs")
    previous = history.completed.get(job.name)
    if previous is None:
        return Decision(True, "no completed record")
    run, state = previous
    if rerun_failed:
        return _reuse(run, state, "--rerun-failed keeps completed jobs")
    parts = cache_parts(job, runtime.identity(), upstream_digests(job, known))
    if cache_key(parts) != state.cache_key:
        return Decision(True, why_rerun(parts, state.cache_parts))
    damaged = artifacts_intact(state)
    if damaged:
        return Decision(True, damaged)
    return _reuse(run, state, "cache key matches")


def _reuse(run: Run, state: JobState, why: str) -> Decision:
    origin = state.cached_from or run.id
    return Decision(False, f"{why}: completed in run {origin}", state.model_copy(update={"cached_from": origin}))
