"""The report-dir layout, as code: every path under `<out>/<report_dir>/` is named here and nowhere else.

    cli/<log name>                         raw combined stdout+stderr of each job (attempt N: <stem>.attemptN<ext>)
    analysis/<slug>.{metrics,env,provenance}.json, copied artifacts, <name>_digest_<slug>.txt,
             artifact_inventory.md / .json
    red/blocked_<UTC YYYYMMDDTHHMMSSZ>_<slug>.md, blocked_<stamp>_<first task's slug>_array_of_<N>.md
    green/<passing test log>, blocker_resolved_<slug>.md
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path


def utc_stamp(when: float) -> str:
    """`YYYYMMDDTHHMMSSZ`, the timestamp format of run ids and red notes."""
    return datetime.fromtimestamp(when, tz=timezone.utc).strftime("%Y%m%dT%H%M%SZ")


@dataclass(frozen=True)
class ReportDir:
    """One backend's (or the summary's) report directory."""

    root: Path

    @property
    def cli(self) -> Path:
        return self.root / "cli"

    @property
    def analysis(self) -> Path:
        return self.root / "analysis"

    @property
    def red(self) -> Path:
        return self.root / "red"

    @property
    def green(self) -> Path:
        return self.root / "green"

    def log(self, name: str) -> Path:
        return self.cli / name

    def record(self, slug: str, kind: str) -> Path:
        """`analysis/<slug>.<kind>.json` (kind: metrics, env, provenance)."""
        return self.analysis / f"{slug}.{kind}.json"

    def digest_file(self, artifact: str, slug: str) -> Path:
        return self.analysis / f"{artifact}_digest_{slug}.txt"

    def red_note(self, slug: str, when: float) -> Path:
        return self.red / f"blocked_{utc_stamp(when)}_{slug}.md"

    def array_red_note(self, first_slug: str, tasks: int, when: float) -> Path:
        """The one red note of an array submission that failed as a whole (sbatch refused it): named after its
        first task and its size, `blocked_<stamp>_<first task>_array_of_<N>.md`, not one note a task."""
        return self.red_note(f"{first_slug}_array_of_{tasks}", when)

    def blocker_notes(self, slug: str) -> list[Path]:
        """This job's red notes, oldest first (the stamp has no underscore, so the slug is what follows it)."""
        names = os.listdir(self.red) if self.red.is_dir() else ()
        return sorted(self.red / n for n in names if n.startswith("blocked_") and n.split("_", 2)[-1] == f"{slug}.md")

    def blocker_resolved(self, slug: str) -> Path:
        return self.green / f"blocker_resolved_{slug}.md"

    @property
    def inventory(self) -> Path:
        return self.analysis / "artifact_inventory.md"


def attempt_log(log: Path, attempt: int) -> Path:
    """`train.log` for the first attempt, `train.attempt2.log` for the second, and so on."""
    return log if attempt <= 1 else log.with_name(f"{log.stem}.attempt{attempt}{log.suffix}")
