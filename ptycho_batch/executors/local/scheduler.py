"""The DAG on this machine: dependencies first, cores and GPUs as a budget, inside the run supervisor.

Each running job is a thread waiting on one child process (the job runner's). A job takes `resources.cpus`
cores (default 1) from the machine's count and, when GPUs are visible, `gpus` of them (pinned through
CUDA_VISIBLE_DEVICES); it starts only when they are free, so two multi-threaded trainings never share two
cores. Jobs start in order: one waiting for its budget keeps later ones waiting (no starvation). A job
whose upstream did not complete ends SKIPPED; a cancel request (a marker file any process may write) stops
a running job's process group and keeps a waiting one from starting; SIGTERM to the supervisor cancels
everything.
"""

from __future__ import annotations

import os
import signal
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from ptycho_batch.campaign.plan import Plan, PlannedJob
from ptycho_batch.executors.outcomes import skip_reason
from ptycho_batch.journal.records import JobState, State
from ptycho_batch.journal.store import Run
from ptycho_batch.node.process import ProcessRegistry
from ptycho_batch.node.runner import probe_ahead, run_job
from ptycho_batch.runtimes.base import Runtime
from ptycho_batch.util.errors import SpecError

CANCEL_CHECK_S = 0.5   # how often running jobs' cancel markers are looked at


def machine_cpus() -> int:
    """The cores this process may use (its affinity mask, e.g. under taskset or a cgroup cpuset)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def job_cpus(job: PlannedJob) -> int:
    return max(1, job.resources.cpus or 1)


def check_budget(plan: Plan, cpus: int, gpus: list[str]) -> None:
    """SpecError (exit 2, before anything is written) for a job that could never start on this machine.
    Without visible GPUs a job's `gpus` is what it asks of a cluster node and runs on CPU here."""
    problems = [f"job {job.name}: asks resources.cpus={job_cpus(job)}, this machine has {cpus} cores"
                for job in plan.jobs.values() if job_cpus(job) > cpus]
    if gpus:
        problems += [f"job {job.name}: asks gpus={job.gpus}, this machine shows {len(gpus)} GPUs"
                     for job in plan.jobs.values() if job.gpus > len(gpus)]
    if problems:
        raise SpecError(problems)


class Scheduler:
    """Runs every non-final job of a run to a final state."""

    def __init__(self, plan: Plan, run: Run, runtimes: dict[str, Runtime], states: dict[str, JobState],
                 max_jobs: int, gpus: list[str], cpus: int | None = None) -> None:
        self.plan, self.run, self.runtimes, self.states = plan, run, runtimes, states
        self.max_jobs = max_jobs
        self.gpus, self.free_gpus = gpus, list(gpus)
        self.cpus = self.free_cpus = cpus or machine_cpus()
        self.registry = ProcessRegistry()
        self.running: dict[Future[JobState], tuple[PlannedJob, list[str], int]] = {}
        self.waiting = {name: {n for n in job.needs if not states[n].final}
                        for name, job in plan.jobs.items() if not states[name].final}
        self.dependents: dict[str, list[str]] = {}
        for name in self.waiting:
            for need in plan.jobs[name].needs:
                self.dependents.setdefault(need, []).append(name)
        self.ready = deque(name for name, needs in self.waiting.items() if not needs)
        self.unfinished = set(self.waiting)
        self.probed: set[str] = set()   # backends whose provenance probe has started

    def execute(self) -> dict[str, JobState]:
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        pool = ThreadPoolExecutor(max_workers=self.max_jobs, thread_name_prefix="ptybatch-job")
        try:
            while self.unfinished:
                self._start_ready(pool)
                if not self.running:
                    continue
                done, _ = wait(self.running, timeout=CANCEL_CHECK_S, return_when=FIRST_COMPLETED)
                for future in done:
                    job, held_gpus, held_cpus = self.running.pop(future)
                    self.free_gpus += held_gpus
                    self.free_cpus += held_cpus
                    self.states[job.name] = future.result()
                    self._finished(job.name)
                self._stop_cancelled()
        except KeyboardInterrupt:
            self._cancel_everything()
        finally:
            pool.shutdown(wait=True)
            signal.signal(signal.SIGTERM, previous)
        return self.states

    def _start_ready(self, pool: ThreadPoolExecutor) -> None:
        while self.ready and len(self.running) < self.max_jobs:
            job = self.plan.jobs[self.ready[0]]
            gpus_wanted = min(job.gpus, len(self.gpus)) if self.gpus else 0
            cpus_wanted = min(job_cpus(job), self.cpus)
            if gpus_wanted > len(self.free_gpus) or cpus_wanted > self.free_cpus:
                return
            self.ready.popleft()
            reason = skip_reason(job, self.states)
            if reason or self.run.cancel_requested(job.slug):
                final = State.SKIPPED if reason else State.CANCELLED
                self._record(job, final, reason or "cancelled before it started")
                self._finished(job.name)
                continue
            held_gpus, self.free_gpus = self.free_gpus[:gpus_wanted], self.free_gpus[gpus_wanted:]
            self.free_cpus -= cpus_wanted
            state = self.states[job.name]
            state.state = State.RUNNING
            pinned = {"CUDA_VISIBLE_DEVICES": ",".join(held_gpus)} if held_gpus else None
            if job.backend not in self.probed:
                self.probed.add(job.backend)
                probe_ahead(job, self.run, self.runtimes[job.backend], pinned or {})
            future = pool.submit(run_job, job, self.run, self.runtimes[job.backend], state, self.states,
                                 pinned_env=pinned, registry=self.registry)
            self.running[future] = (job, held_gpus, cpus_wanted)

    def _finished(self, name: str) -> None:
        self.unfinished.discard(name)
        for dependent in self.dependents.get(name, ()):
            self.waiting[dependent].discard(name)
            if not self.waiting[dependent]:
                self.ready.append(dependent)

    def _stop_cancelled(self) -> None:
        """Running jobs someone asked to cancel: stop their groups (the runner records CANCELLED)."""
        for job, _, _ in self.running.values():
            pid = self.states[job.name].pid
            if pid is not None and self.run.cancel_requested(job.slug):
                self.registry.stop(pid)

    def _cancel_everything(self) -> None:
        self.registry.cancel_all()
        for future, (job, _, _) in list(self.running.items()):
            self.states[job.name] = future.result()
            self.unfinished.discard(job.name)
        for name in self.plan.jobs:
            if name in self.unfinished:
                self._record(self.plan.jobs[name], State.CANCELLED, "cancelled before it started")

    def _record(self, job: PlannedJob, final: State, reason: str) -> None:
        state = self.states[job.name]
        state.state, state.reason = final, reason
        self.run.write_state(job.slug, state)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
