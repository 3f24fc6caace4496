"""The local executor: the embedded default when there is no cluster.

Runs the DAG on this machine with up to N jobs at once (threads that each wait on one child process).
When GPUs are visible, each job holds one GPU, pinned through CUDA_VISIBLE_DEVICES. Ctrl-C (or SIGTERM)
stops every job's process group and records CANCELLED; a job whose upstream failed ends SKIPPED.
"""

from __future__ import annotations

import os
import signal
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from ptycho_batch.campaign.plan import Plan, PlannedJob, cache_key, cache_parts
from ptycho_batch.engine.decisions import upstream_digests
from ptycho_batch.journal.store import JobState, Run
from ptycho_batch.node.gpus import visible_gpus
from ptycho_batch.node.runner import ProcessRegistry, run_job
from ptycho_batch.runtimes.base import Runtime


def skip_reason(job: PlannedJob, states: dict[str, JobState]) -> str | None:
    """Why `job` cannot run because of its upstream, or None when every need completed."""
    for need in job.needs:
        upstream = states[need]
        if upstream.state != "COMPLETED":
            detail = f" ({upstream.failure_class})" if upstream.failure_class else ""
            return f"upstream {need} {upstream.state}{detail}"
    return None


class LocalExecutor:
    name = "local"

    def __init__(self, max_jobs: int | None = None) -> None:
        self.gpus = visible_gpus()
        self.max_jobs = max_jobs or (len(self.gpus) if self.gpus else (os.cpu_count() or 1))
        self.registry = ProcessRegistry()

    def execute(self, plan: Plan, run: Run, runtimes: dict[str, Runtime], states: dict[str, JobState],
                on_change: Callable[[JobState], None] = lambda s: None) -> dict[str, JobState]:
        """Run every non-final job of `states` to a final state, dependencies first."""
        free_gpus = list(self.gpus)
        running: dict[Future[JobState], tuple[PlannedJob, str | None]] = {}
        waiting = {name: {n for n in job.needs if not states[n].final}
                   for name, job in plan.jobs.items() if not states[name].final}
        dependents: dict[str, list[str]] = {}
        for name in waiting:
            for need in plan.jobs[name].needs:
                dependents.setdefault(need, []).append(name)
        ready = deque(name for name, needs in waiting.items() if not needs)
        unfinished = set(waiting)

        def finished(name: str) -> None:
            unfinished.discard(name)
            for dependent in dependents.get(name, ()):
                waiting[dependent].discard(name)
                if not waiting[dependent]:
                    ready.append(dependent)

        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        pool = ThreadPoolExecutor(max_workers=self.max_jobs, thread_name_prefix="ptybatch-job")
        try:
            while unfinished:
                while ready and len(running) < self.max_jobs:
                    job = plan.jobs[ready[0]]
                    needs_gpu = bool(self.gpus and job.gpus)
                    if needs_gpu and not free_gpus:
                        break
                    ready.popleft()
                    reason = skip_reason(job, states)
                    if reason or run.cancel_requested(job.slug):
                        final = "SKIPPED" if reason else "CANCELLED"
                        self._finish(run, job, states, final, reason or "cancelled before it started", on_change)
                        finished(job.name)
                        continue
                    gpu = free_gpus.pop(0) if needs_gpu else None
                    state = self._prepare(job, runtimes[job.backend], states)
                    on_change(state)
                    pinned = {"CUDA_VISIBLE_DEVICES": gpu} if gpu is not None else None
                    future = pool.submit(run_job, job, run, runtimes[job.backend], state,
                                         pinned_env=pinned, registry=self.registry)
                    running[future] = (job, gpu)
                if not running:
                    continue
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    job, gpu = running.pop(future)
                    if gpu is not None:
                        free_gpus.append(gpu)
                    states[job.name] = future.result()
                    on_change(states[job.name])
                    finished(job.name)
        except KeyboardInterrupt:
            self.registry.cancel_all()
            for future, (job, _) in running.items():
                states[job.name] = future.result()
                unfinished.discard(job.name)
                on_change(states[job.name])
            for name in plan.jobs:
                if name in unfinished:
                    self._finish(run, plan.jobs[name], states, "CANCELLED", "cancelled before it started", on_change)
            raise
        finally:
            pool.shutdown(wait=True)
            signal.signal(signal.SIGTERM, previous)
        return states

    @staticmethod
    def _prepare(job: PlannedJob, runtime: Runtime, states: dict[str, JobState]) -> JobState:
        state = states[job.name]
        state.state = "RUNNING"
        state.cache_parts = cache_parts(job, runtime.identity(), upstream_digests(job, states))
        state.cache_key = cache_key(state.cache_parts)
        return state

    @staticmethod
    def _finish(run: Run, job: PlannedJob, states: dict[str, JobState], final: str, reason: str,
                on_change: Callable[[JobState], None]) -> None:
        state = states[job.name]
        state.state = final  # type: ignore[assignment]
        state.reason = reason
        run.write_state(job.slug, state)
        on_change(state)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
