"""What the journal records about a job: its state, its failure class, its attempts and artifacts.

States and built-in failure classes are enums whose members are their own strings, so records written by
any earlier version read back unchanged and comparisons with plain strings keep working. A campaign's own
`signatures` may name further failure classes, so `JobState.failure_class` stays a string.
"""

from __future__ import annotations

import time
from enum import Enum
from typing import Any

from pydantic import BaseModel, Field


class _Word(str, Enum):
    """An enum member that prints, formats and serialises as its value (`COMPLETED`, `node-fail`)."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class State(_Word):
    """A job's state in the journal. LOST: its runner died (or its record was damaged) before a verdict."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"
    CANCELLED = "CANCELLED"
    LOST = "LOST"

    @property
    def final(self) -> bool:
        return self in FINAL_STATES


FINAL_STATES = frozenset({State.COMPLETED, State.FAILED, State.SKIPPED, State.CANCELLED, State.LOST})
UNSUCCESSFUL = frozenset({State.FAILED, State.SKIPPED, State.CANCELLED, State.LOST})


class FailureClass(_Word):
    """Why a job did not complete (triage's classes plus the scheduler's and the supervisor's)."""

    CANCELLED = "cancelled"
    TIMEOUT = "timeout"
    OOM = "oom"
    XLA = "xla"
    IMPORT = "import"
    KILLED = "killed"
    EXPECTATION = "expectation"
    MISSING_ARTIFACT = "missing-artifact"
    MISSING_METRIC = "missing-metric"
    USAGE = "usage"
    TEST_FAILURE = "test-failure"
    EXCEPTION = "exception"
    EXIT = "exit"
    RUNTIME = "runtime"
    LOST = "lost"
    NODE_FAIL = "node-fail"
    SUBMIT = "submit"   # the scheduler refused the job (sbatch's message says why)


class ArtifactRecord(BaseModel):
    name: str
    path: str
    digest: str | None = None
    algorithm: str | None = None


class Attempt(BaseModel):
    """One execution of a job (fallback re-runs and SLURM requeues add attempts), with the command and params
    it ran with: after a fallback the result comes from the last attempt's command, not the planned one."""

    number: int
    state: State
    log: str
    argv: list[str] = Field(default_factory=list)
    params: dict[str, Any] = Field(default_factory=dict)
    exit_code: int | None = None
    signal: int | None = None
    failure_class: str | None = None
    failure_line: str | None = None
    red_note: str | None = None
    started: float | None = None
    ended: float | None = None
    fallback: str | None = None
    reason: str | None = None   # why an attempt ended without a verdict (preempted, requeued)


class JobState(BaseModel):
    name: str
    state: State = State.PENDING
    backend: str = ""
    stage: str = ""
    attempt: int = 0
    reason: str | None = None
    cache_key: str | None = None
    cache_parts: dict[str, str] = Field(default_factory=dict)
    cached_from: str | None = None
    started: float | None = None
    ended: float | None = None
    exit_code: int | None = None
    signal: int | None = None
    failure_class: str | None = None
    failure_line: str | None = None
    hint: str | None = None
    signature: str | None = None
    fallback: str | None = None
    pid: int | None = None
    pid_start: str | None = None
    host: str | None = None
    slurm_job_id: str | None = None
    log: str | None = None
    red_note: str | None = None
    green: list[str] = Field(default_factory=list)
    metrics: dict[str, Any] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)   # a COMPLETED job's: unmatched observe, warning lines
    artifacts: dict[str, ArtifactRecord] = Field(default_factory=dict)
    attempts: list[Attempt] = Field(default_factory=list)
    updated: float = 0.0

    @property
    def timeouts(self) -> int:
        """Attempts that ended at their time limit (what `requeue: N` counts, on the node and in the poller)."""
        return sum(1 for attempt in self.attempts if attempt.failure_class == FailureClass.TIMEOUT)

    @property
    def last_attempt(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def warning_text(self) -> str | None:
        """`completed with warnings: ...` for a COMPLETED job that has some (shown wherever a state is)."""
        if self.state == State.COMPLETED and self.warnings:
            return f"completed with warnings: {'; '.join(self.warnings)}"
        return None

    @property
    def duration(self) -> float | None:
        if self.started is None:
            return None
        return (self.ended or time.time()) - self.started


class Submission(BaseModel):
    """One call to the scheduler (one `sbatch`: a job, or an array of tasks), recorded once for all its jobs.

    Why one record per call: a 10,000-task array must cost the shared file system a few files, not 10,000
    (each a metadata round trip on Lustre or GPFS). Written before the call without `job_id` (an intent a
    later submit can adopt or drop), then again with it. A job without a record of its own reads as this
    says (PENDING, `job_id` or `<job_id>_<index>`); the job's own record, written by its runner on the node
    or by the poller, always wins.
    """

    names: list[str]
    job_id: str | None = None   # None while the call is under way (or a killed submitter's unknown fate)
    array: bool = False
    submitted: float | None = None
    options: dict[str, Any] = Field(default_factory=dict)

    def task_ids(self) -> list[str]:
        """The scheduler id of each of `names`, in order (empty before the call returned)."""
        if self.job_id is None:
            return []
        return [f"{self.job_id}_{index}" for index in range(len(self.names))] if self.array else [self.job_id]
