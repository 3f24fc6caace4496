"""The run store: the single source of truth about a campaign run, written atomically.

Layout under `<out>/.ptybatch/<campaign>/`:
    submit.lock, submit.owner         held by whoever carries a live run (journal.lock)
    <run-id>/run.json                 executor, who carries the run (supervisor pid and start time), finished
    <run-id>/campaign.yaml            the frozen campaign text (with --set overrides recorded)
    <run-id>/plan.json                the resolved plan
    <run-id>/submitted/<key>.json     one record per scheduler submission (a SLURM array: all its tasks)
    <run-id>/jobs/<slug>/state.json   a job's own record, replaced atomically on every state change
    <run-id>/work/<slug>/             each job's scratch working directory
    <run-id>/records/<digest>.json    one copy of each env/provenance record that jobs' analysis/ files link to
A job reads as its own record, else as its submission record says (queued, with its scheduler id), else as
planned (PENDING): submitting an array costs a few files, however many tasks it has; each task's record
is written by its runner on the node (or by the poller, for a verdict seen from outside).
A crash at any moment leaves only whole files behind, which `status` and a re-`submit` understand. A record
that cannot be read (a damaged disk, a hand edit) is moved aside to `state.json.corrupt` and reads as LOST,
so one bad file never blocks a run or a later one.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterator, MutableMapping
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ptycho_batch.campaign.plan import Plan, PlanJobs, PlannedJob, load_plan
from ptycho_batch.journal.records import JobState, State, Submission
from ptycho_batch.util.bulk import collector_paused
from ptycho_batch.util.errors import RecordError
from ptycho_batch.util.fsio import write_atomic, write_json

JOURNAL_DIR = ".ptybatch"
SUBMITTED_DIR = "submitted"
SUBMITTED_REASON = "submitted"   # the reason a job reads with while only its submission record knows it


def new_run_id() -> str:
    """`YYYYMMDDTHHMMSS.mmmZ-xxxx`: sorts by start time, unique across hosts."""
    now = time.time()
    stamp = datetime.fromtimestamp(now, tz=timezone.utc).strftime("%Y%m%dT%H%M%S")
    return f"{stamp}.{int(now * 1000) % 1000:03d}Z-{secrets.token_hex(2)}"


def planned_state(job: PlannedJob, **fields: Any) -> JobState:
    """The record of a job that has not started: PENDING, its backend and stage, nothing from any other run.
    (For a matrix cell, `job` may be its job's first cell, `plan.jobs.head(name)`, with `name=` the cell's.)"""
    return JobState(**{"name": job.name, "backend": job.backend, "stage": job.stage, **fields})


class JournalStates(MutableMapping[str, JobState]):
    """Every planned job's state, in plan order, as `Run.all_states` says, each built when it is read.

    Why: `status` of a 10,000-task array needs the count of each state and a few records, and the SLURM poll
    the scheduler ids of the unfinished jobs and the few records it changes; folding the submission records
    into a (job id, time) per task and reading `state_of` / `live_ids` builds no record a job. A record set
    here (a verdict just written) is read back as the job's own."""

    def __init__(self, jobs: PlanJobs, submitted: dict[str, tuple[str, float]], recorded: dict[str, JobState]) -> None:
        self.jobs, self.submitted, self.recorded = jobs, submitted, recorded

    def __getitem__(self, name: str) -> JobState:
        state = self.recorded.get(name)
        if state is not None:
            return state
        head = self.jobs.head(name)   # KeyError: not a job of this plan
        if name not in self.submitted:
            return planned_state(head, name=name)
        job_id, updated = self.submitted[name]
        return planned_state(head, name=name, slurm_job_id=job_id, reason=SUBMITTED_REASON, updated=updated)

    def __setitem__(self, name: str, state: JobState) -> None:
        self.recorded[name] = state

    def __delitem__(self, name: str) -> None:
        raise TypeError("a job's state can be replaced, not removed")

    def __iter__(self) -> Iterator[str]:
        return iter(self.jobs)

    def __len__(self) -> int:
        return len(self.jobs)

    def state_of(self, name: str) -> State:
        state = self.recorded.get(name)
        return state.state if state is not None else State.PENDING

    def live_ids(self) -> dict[str, str]:
        """The scheduler id of every unfinished job that has one, by job name (in no particular order)."""
        ids = {name: job_id for name, (job_id, _) in self.submitted.items() if job_id and name not in self.recorded}
        ids.update((name, state.slurm_job_id) for name, state in self.recorded.items()
                   if state.slurm_job_id and not state.final)
        return ids


class Run:
    """One run directory and its journal."""

    def __init__(self, run_dir: Path) -> None:
        self.dir = run_dir

    @property
    def id(self) -> str:
        return self.dir.name

    @property
    def campaign_dir(self) -> Path:
        return self.dir.parent

    @cached_property
    def plan(self) -> Plan:
        """The frozen plan (plan.json never changes under a run)."""
        path = self.dir / "plan.json"
        try:
            with collector_paused():
                return load_plan(path.read_bytes(), str(path))
        except (OSError, ValueError) as error:
            raise RecordError(f"{path}: damaged or missing run plan ({_first_line(error)})") from None

    @property
    def shared_records(self) -> Path:
        return self.dir / "records"

    def job_dir(self, slug: str) -> Path:
        return self.dir / "jobs" / slug

    def workdir(self, slug: str) -> Path:
        return self.dir / "work" / slug

    def write_state(self, slug: str, state: JobState) -> None:
        state.updated = time.time()
        folder = self.job_dir(slug)
        if not folder.is_dir():
            folder.mkdir(parents=True)
        write_atomic(folder / "state.json", state.model_dump_json(indent=1))

    def recorded_slugs(self) -> set[str]:
        """The jobs that have a folder of their own (a record, or a cancel marker), in one directory read."""
        try:
            return set(os.listdir(self.dir / "jobs"))
        except FileNotFoundError:
            return set()

    def read_state(self, slug: str) -> JobState | None:
        """A job's record; None before it has one; LOST (the file moved aside) when it is damaged."""
        path = self.job_dir(slug) / "state.json"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise RecordError(f"{path}: cannot read ({_first_line(error)})") from None
        try:
            state = JobState.model_validate_json(data)
        except (ValidationError, ValueError) as error:
            return self._damaged(slug, path, error)
        if state.name not in self.plan.jobs or self.plan.jobs.slug(state.name) != slug:
            return self._damaged(slug, path, ValueError(f"record names job {state.name!r}"))
        return state

    def _damaged(self, slug: str, path: Path, error: Exception) -> JobState | None:
        name = next((n for n in self.plan.jobs if self.plan.jobs.slug(n) == slug), None)
        if name is None:
            return None  # not a job of this plan: nothing to show
        job = self.plan.jobs[name]
        aside = path.with_name("state.json.corrupt")
        try:
            os.replace(path, aside)
        except OSError:
            pass  # another reader moved it first
        why = f"damaged record moved to {aside} ({_first_line(error)})"
        state = planned_state(job, state=State.LOST, failure_class="lost", ended=time.time(), reason=why,
                              failure_line=why)
        self.write_state(slug, state)
        return state

    def read_states(self) -> dict[str, JobState]:
        """Every job the journal knows of, by job name: its own record, else what its submission record says."""
        with collector_paused():
            return {**self.submitted_states(), **self.recorded_states()}

    def recorded_states(self) -> dict[str, JobState]:
        """The jobs' own records, by job name."""
        states: dict[str, JobState] = {}
        for slug in sorted(self.recorded_slugs()):
            state = self.read_state(slug)
            if state is not None:
                states[state.name] = state
        return states

    def write_submission(self, key: str, submission: Submission) -> None:
        folder = self.dir / SUBMITTED_DIR
        folder.mkdir(exist_ok=True)
        write_atomic(folder / f"{key}.json", submission.model_dump_json())

    def drop_submission(self, key: str) -> None:
        (self.dir / SUBMITTED_DIR / f"{key}.json").unlink(missing_ok=True)

    def submissions(self) -> dict[str, Submission]:
        """The submission records by key; a damaged one is moved aside (its jobs read as never submitted)."""
        folder = self.dir / SUBMITTED_DIR
        try:
            names = sorted(name for name in os.listdir(folder) if name.endswith(".json") and name[0] != ".")
        except FileNotFoundError:
            return {}
        found: dict[str, Submission] = {}
        for name in names:
            path = folder / name
            try:
                found[name[:-5]] = Submission.model_validate_json(path.read_bytes())
            except FileNotFoundError:
                continue  # dropped meanwhile
            except OSError as error:
                raise RecordError(f"{path}: cannot read ({_first_line(error)})") from None
            except (ValidationError, ValueError):
                try:
                    os.replace(path, path.with_name(name + ".corrupt"))
                except OSError:
                    pass  # another reader moved it first
        return found

    def submitted_tasks(self) -> dict[str, tuple[str, float]]:
        """What the submission records say of their jobs, by job name: its scheduler id, and when."""
        tasks: dict[str, tuple[str, float]] = {}
        jobs = self.plan.jobs
        for submission in self.submissions().values():
            updated = submission.submitted or 0.0
            tasks.update((name, (job_id, updated))
                         for name, job_id in zip(submission.names, submission.task_ids()) if name in jobs)
        return tasks

    def submitted_states(self) -> dict[str, JobState]:
        """What the submission records say of their jobs: PENDING, with the scheduler's id of each."""
        tasks = self.submitted_tasks()
        states = JournalStates(self.plan.jobs, tasks, {})
        return {name: states[name] for name in tasks}

    def journal_states(self) -> JournalStates:
        """Every planned job's state, each built when read (see JournalStates)."""
        with collector_paused():
            return JournalStates(self.plan.jobs, self.submitted_tasks(), self.recorded_states())

    def all_states(self) -> dict[str, JobState]:
        """Every planned job's state: as read_states says, or PENDING when the journal knows nothing of it yet."""
        states = self.journal_states()
        with collector_paused():
            return dict(states.items())

    def info(self) -> dict[str, Any]:
        """run.json; an unreadable one reads as empty (a damaged old run never blocks a new one)."""
        try:
            info = json.loads((self.dir / "run.json").read_text())
        except (OSError, ValueError):
            return {}
        return info if isinstance(info, dict) else {}

    def update_info(self, **fields: Any) -> None:
        info = self.info()
        info.update(fields)
        write_json(self.dir / "run.json", info)

    def write_series(self, slug: str, series: dict[str, Any]) -> None:
        """A job's observed series (`{"series": {...}, "epochs": {...}}`), kept in the journal so a report
        never depends on files in the report dir that a later run may replace."""
        folder = self.job_dir(slug)
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / "series.json", series)

    def read_series(self, slug: str, state: JobState) -> dict[str, Any]:
        """The series of the run that produced `state` (the earlier run for a reused result); {} if none."""
        run_dir = self.campaign_dir / state.cached_from if state.cached_from else self.dir
        try:
            series = json.loads((run_dir / "jobs" / slug / "series.json").read_text())
        except (OSError, ValueError):
            return {}
        return series if isinstance(series, dict) else {}

    def cancel_requested(self, slug: str) -> bool:
        return (self.job_dir(slug) / "cancel").exists()

    def request_cancel(self, slug: str) -> None:
        folder = self.job_dir(slug)
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(folder / "cancel", f"{time.time()}\n")

    def withdraw_cancel(self, slug: str) -> None:
        """The cancel could not be delivered (the scheduler refused): the job must not read as cancelled."""
        (self.job_dir(slug) / "cancel").unlink(missing_ok=True)


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def campaign_journal(out: Path, campaign: str) -> Path:
    return out / JOURNAL_DIR / campaign


def list_runs(campaign_dir: Path) -> list[Run]:
    """Runs of a campaign, oldest first (run ids start with a UTC timestamp)."""
    if not campaign_dir.is_dir():
        return []
    return [Run(p) for p in sorted(campaign_dir.iterdir()) if (p / "run.json").exists()]


def create_run(campaign_dir: Path, run_id: str) -> Run:
    run_dir = campaign_dir / run_id
    (run_dir / "jobs").mkdir(parents=True)
    return Run(run_dir)
