"""The run journal: the single source of truth about a campaign run, written atomically.

Layout under `<out>/.ptybatch/<campaign>/`:
    submit.lock, submit.owner         held by the live `submit` (fcntl lock, released by the kernel on any death)
    <run-id>/run.json                 executor, submitter pid/host, start/end
    <run-id>/campaign.yaml            the frozen campaign text (with --set overrides recorded)
    <run-id>/plan.json                the resolved plan
    <run-id>/jobs/<slug>/state.json   one record per job, replaced atomically on every state change
    <run-id>/work/<slug>/             each job's scratch working directory
A crash at any moment leaves only whole files behind, which `status` and a re-`submit` understand.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from ptycho_batch.util.errors import CampaignBusy

State = Literal["PENDING", "RUNNING", "COMPLETED", "FAILED", "SKIPPED", "CANCELLED"]
FINAL_STATES = frozenset({"COMPLETED", "FAILED", "SKIPPED", "CANCELLED"})
JOURNAL_DIR = ".ptybatch"


class ArtifactRecord(BaseModel):
    name: str
    path: str
    digest: str | None = None
    algorithm: str | None = None


class Attempt(BaseModel):
    """One execution of a job (fallback re-runs and SLURM requeues add attempts)."""

    number: int
    state: State
    log: str
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
    state: State = "PENDING"
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
    artifacts: dict[str, ArtifactRecord] = Field(default_factory=dict)
    attempts: list[Attempt] = Field(default_factory=list)
    updated: float = 0.0

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def duration(self) -> float | None:
        if self.started is None:
            return None
        return (self.ended or time.time()) - self.started


def utc_stamp(when: float | None = None) -> str:
    """`YYYYMMDDTHHMMSSZ`, the timestamp format of run ids and red notes."""
    moment = datetime.fromtimestamp(when if when is not None else time.time(), tz=timezone.utc)
    return moment.strftime("%Y%m%dT%H%M%SZ")


def new_run_id() -> str:
    """`YYYYMMDDTHHMMSS.mmmZ-xxxx`: sorts by start time, unique across hosts."""
    now = time.time()
    stamp = datetime.fromtimestamp(now, tz=timezone.utc).strftime("%Y%m%dT%H%M%S")
    return f"{stamp}.{int(now * 1000) % 1000:03d}Z-{secrets.token_hex(2)}"


def write_atomic(path: Path, text: str) -> None:
    """Write via a temporary file and rename: readers see the old or the new file, never half of one."""
    tmp = f"{path.parent}/.{path.name}.{os.getpid()}.{threading.get_ident()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)


def write_json(path: Path, data: Any) -> None:
    write_atomic(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


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

    def read_states(self) -> dict[str, JobState]:
        states: dict[str, JobState] = {}
        for path in sorted((self.dir / "jobs").glob("*/state.json")):
            state = JobState.model_validate_json(path.read_text())
            states[state.name] = state
        return states

    def read_state(self, slug: str) -> JobState | None:
        path = self.job_dir(slug) / "state.json"
        return JobState.model_validate_json(path.read_text()) if path.exists() else None

    def info(self) -> dict[str, Any]:
        path = self.dir / "run.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def update_info(self, **fields: Any) -> None:
        info = self.info()
        info.update(fields)
        write_json(self.dir / "run.json", info)

    def cancel_requested(self, slug: str) -> bool:
        return (self.job_dir(slug) / "cancel").exists()

    def request_cancel(self, slug: str) -> None:
        folder = self.job_dir(slug)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "cancel").write_text(f"{time.time()}\n")


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


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of `pid` (to tell a live process from a recycled pid)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def process_alive(pid: int | None, start: str | None) -> bool:
    return pid is not None and start is not None and process_start_time(pid) == start


@contextmanager
def submit_lock(campaign_dir: Path, run_id: str) -> Iterator[None]:
    """Hold the campaign's submit lock for the life of this process (the kernel drops it on any exit)."""
    campaign_dir.mkdir(parents=True, exist_ok=True)
    handle = open(campaign_dir / "submit.lock", "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        owner = read_owner(campaign_dir)
        raise CampaignBusy(
            f"campaign {campaign_dir.name!r} is already being run: run {owner.get('run_id', '?')} "
            f"(pid {owner.get('pid', '?')} on {owner.get('host', '?')}, since {owner.get('since', '?')})"
        ) from None
    try:
        write_json(campaign_dir / "submit.owner", {
            "run_id": run_id, "pid": os.getpid(), "host": socket.gethostname(),
            "since": datetime.now(timezone.utc).isoformat(timespec="seconds")})
        yield
    finally:
        handle.close()


def read_owner(campaign_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((campaign_dir / "submit.owner").read_text())
    except (OSError, ValueError):
        return {}


def lock_held(campaign_dir: Path) -> bool:
    """Whether a live `submit` holds the campaign's lock (tested without taking it for long)."""
    path = campaign_dir / "submit.lock"
    if not path.exists():
        return False
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False
