"""Which executor carries a run: chosen by name at submit, read back from run.json by every reader."""

from __future__ import annotations

from ptycho_batch.executors.base import Executor
from ptycho_batch.journal.records import JobState
from ptycho_batch.journal.store import Run


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


def load_run(run: Run) -> dict[str, JobState]:
    """Every planned job's state after a refresh (PENDING for jobs without a record)."""
    refresh(run)
    return run.all_states()
