"""The local executor, the embedded default when there is no cluster: a detached supervisor per run."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import IO

from ptycho_batch.campaign.plan import Plan
from ptycho_batch.executors.base import Finalize
from ptycho_batch.executors.local import liveness, supervisor
from ptycho_batch.executors.local.scheduler import Scheduler, check_budget, machine_cpus
from ptycho_batch.journal.records import JobState
from ptycho_batch.journal.store import Run
from ptycho_batch.node.gpus import visible_gpus
from ptycho_batch.runtimes.base import Runtime


class LocalExecutor:
    name = "local"
    finalizes_itself = True

    def __init__(self, max_jobs: int | None = None) -> None:
        self.max_jobs = max_jobs

    def check(self, plan: Plan) -> None:
        """A job asking more cores or GPUs than this machine has could never start: exit 2 before anything."""
        check_budget(plan, machine_cpus(), visible_gpus())

    def launch(self, run: Run, runtimes: dict[str, Runtime], states: dict[str, JobState], lock: IO[str],
               finalize: Finalize) -> None:
        gpus = visible_gpus()
        max_jobs = self.max_jobs or machine_cpus()   # the core budget bounds it further (scheduler.py)

        def body() -> None:
            Scheduler(run.plan, run, runtimes, states, max_jobs, gpus).execute()
            finalize(run)

        supervisor.start(run, lock, body)

    def refresh(self, run: Run) -> None:
        liveness.refresh(run)

    def cancel(self, run: Run, names: list[str]) -> list[str]:
        """Write each job's cancel marker; the supervisor stops running ones and never starts the rest."""
        targets = names or list(run.plan.jobs)
        affected: list[str] = []
        for name in targets:
            state = run.read_state(run.plan.jobs[name].slug)
            if state is not None and state.final:
                continue
            run.request_cancel(run.plan.jobs[name].slug)
            affected.append(name)
        return affected

    def active_run(self, campaign_dir: Path) -> Run | None:
        return None  # a live supervisor holds the campaign lock: a second submit is told it is busy

    def describe_launch(self, run: Run) -> str:
        pid = (run.info().get("supervisor") or {}).get("pid")
        return f"run {run.id} handed to its supervisor (pid {pid}; it goes on without this terminal)"

    def interrupt(self, run: Run) -> str:
        """Ctrl-C of the foreground submit: the whole run is cancelled (SIGTERM to the supervisor)."""
        self.cancel(run, [])
        pid = (run.info().get("supervisor") or {}).get("pid")
        if liveness.supervisor_alive(run) and pid:
            os.kill(pid, signal.SIGTERM)
        return "interrupted: running jobs stopped and recorded CANCELLED"
