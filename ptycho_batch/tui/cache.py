"""Digests of the visible jobs' logs: read only for the rows on screen, and only when they grew."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ptycho_batch.campaign.plan import Plan
from ptycho_batch.journal.reader import Stamp, file_stamp
from ptycho_batch.journal.records import JobState, State
from ptycho_batch.node.envfirewall import job_secrets
from ptycho_batch.node.logtail import read_tail
from ptycho_batch.node.observe import extract_metrics
from ptycho_batch.tui.logs import log_path


@dataclass
class LogDigest:
    """The last line of a log and the metrics its tail shows (for jobs still running)."""

    stamp: Stamp | None = None
    last_line: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)


class LogDigests:
    """Per-log digests, recomputed only when the log's size or mtime changed."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self._digests: dict[str, LogDigest] = {}

    def get(self, state: JobState) -> LogDigest:
        """The digest of the job's own log in this run; nothing for a job that has not started (the planned
        log path may still hold an earlier run's log, which must not show as this run's)."""
        if state.log is None:
            return LogDigest()
        path = str(log_path(self.plan, state))
        digest = self._digests.setdefault(path, LogDigest())
        stamp = file_stamp(path)
        if stamp is not None and stamp != digest.stamp:
            text = read_tail(Path(path), secrets=job_secrets(self.plan.jobs[state.name].pass_env))
            lines = [line for line in text.splitlines() if line.strip()]
            digest.stamp = stamp
            digest.last_line = lines[-1].strip() if lines else ""
            digest.metrics = extract_metrics(text, self.plan.jobs[state.name].observe)[0]
        return digest

    def metrics(self, state: JobState) -> dict[str, Any]:
        """Recorded metrics once the job concluded; the ones its log shows so far while it runs."""
        if state.metrics or state.final:
            return state.metrics
        return self.get(state).metrics if state.state == State.RUNNING else {}
