"""Which executor carries a run: chosen by name at submit, read back from run.json by every reader."""

from __future__ import annotations

from ptycho_batch.executors.base import Executor
from ptycho_batch.journal.records import JobState
from ptycho_batch.journal.store import Run
from ptycho_batch.util.errors import SchedulerUnreachable


def make_executor(name: str, *, jobs: int | None = None) -> Executor:
    """`local`, `slurm`, or `auto` (slurm when sbatch answers)."""
    if name == "auto":
        from ptycho_batch.executors.slurm.cluster import sbatch_available

        name = "slurm" if sbatch_available() else "local"
    if name == "slurm":
        from ptycho_batch.executors.slurm.executor import SlurmExecutor

        return SlurmExecutor()
    from ptycho_batch.executors.local.executor import LocalExecutor

    return LocalExecutor(jobs)


def executor_of(run: Run) -> Executor:
    return make_executor(str(run.info().get("executor") or "local"))


def refresh(run: Run) -> None:
    """The one refresh path: whoever carries the run brings its journal up to date (no-op once finished)."""
    if not run.info().get("finished"):
        executor_of(run).refresh(run)


def refresh_or_raise(run: Run) -> None:
    """Refresh; raise SchedulerUnreachable when the run is not finished and its scheduler did not answer:
    a one-shot reader must not present the last recorded states as the truth. (Followers survive an outage.)"""
    refresh(run)
    info = run.info()
    if info.get("scheduler_unreachable") and not info.get("finished"):
        raise SchedulerUnreachable(f"run {run.id}: {str(info.get('executor', '')).upper()} did not answer "
                                   f"({info['scheduler_unreachable']}); try again once it does")


def load_run(run: Run) -> dict[str, JobState]:
    """Every planned job's state after `refresh_or_raise` (PENDING for jobs without a record)."""
    refresh_or_raise(run)
    return run.all_states()
