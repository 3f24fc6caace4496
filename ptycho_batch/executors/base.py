"""The executor interface: hand a run to whoever carries it, refresh what readers see, cancel, interrupt.

`launch` returns once the run is in its carrier's hands (a detached local supervisor, the SLURM queue);
from then on every reader (the foreground `submit`, `watch`, `status`, `report`, `logs`) gets states through
`refresh` followed by a journal read, so all of them see the same truth.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import IO, Protocol

from ptycho_batch.campaign.plan import Plan
from ptycho_batch.journal.records import JobState
from ptycho_batch.journal.store import Run
from ptycho_batch.runtimes.base import Runtime

Finalize = Callable[[Run], None]   # writes the run's report once every job is final (given by the engine)


class Executor(Protocol):
    name: str
    finalizes_itself: bool   # the carrier writes the report when the run ends (else the foreground follower does)

    def check(self, plan: Plan) -> None:
        """SpecError for a job this executor could never run (e.g. more cores than this machine has)."""

    def launch(self, run: Run, runtimes: dict[str, Runtime], states: dict[str, JobState], lock: IO[str],
               finalize: Finalize) -> None:
        """Start every non-final job of `states`; `lock` is the campaign lock, held by the caller."""

    def refresh(self, run: Run) -> None:
        """Bring the journal up to date with the carrier's truth (cheap, shared by every reader)."""

    def cancel(self, run: Run, names: list[str]) -> list[str]:
        """Cancel the named unfinished jobs (every unfinished one when empty); return the names affected."""

    def interrupt(self, run: Run) -> str:
        """What Ctrl-C of a foreground follow does; returns the sentence that tells the user."""

    def active_run(self, campaign_dir: Path) -> Run | None:
        """A run of this campaign that a new submit should follow rather than start again, if any."""

    def describe_launch(self, run: Run) -> str:
        """One line saying where the run went (for `submit --detach`)."""
