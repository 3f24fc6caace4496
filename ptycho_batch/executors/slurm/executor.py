"""The SLURM executor: the whole campaign is submitted at once through submitit, then followed.

Each job is a submitit job running `slurm_node.run_on_node` (the local executor's job runner); `needs`
become `afterok` dependencies; a matrix job becomes one job array (split at the cluster's MaxArraySize).
All jobs of a run share one SLURM job name, `ptybatch_<campaign>_<run id>`. submitit's files live in
`<run>/slurm/`. States come from the one poller (slurm_poll), never from submitit's own watcher, which
needs accounting and can wait forever on a job that died without a result.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import submitit

from ptycho_batch.campaign.config import user_resources
from ptycho_batch.campaign.plan import Plan, PlannedJob
from ptycho_batch.campaign.spec import Resources
from ptycho_batch.executors.slurm import cluster
from ptycho_batch.executors.slurm.node import run_on_node
from ptycho_batch.executors.slurm.poll import poll
from ptycho_batch.journal.locate import load_run
from ptycho_batch.journal.store import JobState, Run, list_runs
from ptycho_batch.runtimes.base import Runtime
from ptycho_batch.util.progress import spinner

SIGNAL_DELAY_S = 20   # SLURM warns the node this long before the time limit: the job ends as a clean timeout
MARGIN_MIN = 2        # SLURM's limit sits this far past the job's own timeout_min


def job_name(plan: Plan, run: Run) -> str:
    return f"ptybatch_{plan.campaign}_{run.id}"


def slurm_parameters(job: PlannedJob, name: str, defaults: Resources) -> dict[str, Any]:
    """submitit parameters from a job's resources (user config defaults under the campaign's)."""
    merged = Resources.model_validate({**defaults.model_dump(exclude_none=True),
                                       **job.resources.model_dump(exclude_none=True)})
    extra: dict[str, Any] = {"kill-on-invalid-dep": "yes", "requeue": True}
    params: dict[str, Any] = {"slurm_job_name": name, "slurm_signal_delay_s": SIGNAL_DELAY_S}
    time_limit = merged.time if merged.time is not None else (
        int(job.timeout_min) + MARGIN_MIN if job.timeout_min else None)
    if isinstance(time_limit, int):
        params["slurm_time"] = time_limit
    elif time_limit is not None:
        extra["time"] = time_limit
    for key, value in (("slurm_partition", merged.partition), ("slurm_gpus_per_node", merged.gpus),
                       ("slurm_cpus_per_task", merged.cpus), ("slurm_constraint", merged.constraint),
                       ("slurm_qos", merged.qos), ("slurm_nodes", merged.nodes),
                       ("slurm_account", merged.account)):
        if value is not None:
            params[key] = value
    if merged.mem_gb is not None:
        params["slurm_mem"] = f"{int(merged.mem_gb * 1024)}M"
    extra.update({key: value for key, value in merged.sbatch.items()})
    if job.array_parallelism:
        params["slurm_array_parallelism"] = job.array_parallelism
    params["slurm_additional_parameters"] = extra
    return params


class SlurmExecutor:
    name = "slurm"

    def __init__(self, *, detach: bool = False, poll_interval: float = 2.0, max_interval: float = 30.0) -> None:
        self.detach = detach
        self.poll_interval = poll_interval
        self.max_interval = max_interval
        self.sbatch_calls = 0

    def execute(self, plan: Plan, run: Run, runtimes: dict[str, Runtime], states: dict[str, JobState],
                on_change: Callable[[JobState], None] = lambda s: None) -> dict[str, JobState]:
        for runtime in {id(r): r for r in runtimes.values()}.values():
            runtime.prepare()  # build venvs once here, not in every array task at once
        with spinner(f"submitting {len(plan.jobs)} jobs to SLURM"):
            self.submit_all(plan, run, states)
        if self.detach:
            return states
        return self.follow(plan, run, on_change)

    def submit_all(self, plan: Plan, run: Run, states: dict[str, JobState]) -> None:
        """One sbatch per plain job and per array chunk, in dependency order."""
        folder = run.dir / "slurm"
        executor = submitit.AutoExecutor(folder=folder / "%j", cluster="slurm")
        name = job_name(plan, run)
        defaults = user_resources()
        max_array = cluster.max_array_size()
        array_ids: dict[str, list[str]] = {}   # base job -> SLURM ids to depend on
        groups: dict[str, list[str]] = {}
        for job_key, job in plan.jobs.items():
            if not states[job_key].final:
                groups.setdefault(job.base, []).append(job_key)
        for base, names in groups.items():
            first = plan.jobs[names[0]]
            parameters = slurm_parameters(first, name, defaults)
            upstream = sorted({i for need in first.needs for i in self._ids_of(need, plan, states, array_ids)})
            if upstream:
                parameters["slurm_dependency"] = "afterok:" + ":".join(upstream)
            executor.update_parameters(**parameters)
            ids: list[str] = []
            if len(names) == 1 and names[0] == base:
                submitted = [executor.submit(run_on_node, str(run.dir), base)]
                self.sbatch_calls += 1
            else:
                submitted = []
                for start in range(0, len(names), max_array):
                    with executor.batch():
                        chunk = [executor.submit(run_on_node, str(run.dir), n) for n in names[start:start + max_array]]
                    self.sbatch_calls += 1
                    submitted += chunk
                    ids.append(chunk[0].job_id.split("_")[0])
            for job_key, handle in zip(names, submitted):
                state = states[job_key]
                state.state, state.slurm_job_id, state.reason = "PENDING", handle.job_id, "submitted"
                run.write_state(plan.jobs[job_key].slug, state)
            array_ids[base] = ids or [submitted[0].job_id]
        run.update_info(slurm_job_name=name, sbatch_calls=self.sbatch_calls)

    @staticmethod
    def _ids_of(need: str, plan: Plan, states: dict[str, JobState], array_ids: dict[str, list[str]]) -> list[str]:
        """SLURM ids a dependent must wait for (none when the upstream is already complete)."""
        base = plan.jobs[need].base
        if base in array_ids:
            return array_ids[base]
        state = states[need]
        return [] if state.final or not state.slurm_job_id else [state.slurm_job_id]

    def follow(self, plan: Plan, run: Run, on_change: Callable[[JobState], None]) -> dict[str, JobState]:
        """Poll until every job is final; back off while nothing changes. Ctrl-C stops following only."""
        seen: dict[str, tuple[str, str | None]] = {}
        interval = self.poll_interval
        while True:
            states = poll(run, plan, min_interval=0, force=True)
            changed = False
            for name in plan.jobs:
                state = states.get(name)
                if state is not None and seen.get(name) != (state.state, state.reason):
                    seen[name] = (state.state, state.reason)
                    on_change(state)
                    changed = True
            if all(name in states and states[name].final for name in plan.jobs):
                return states
            interval = self.poll_interval if changed else min(interval * 1.5, self.max_interval)
            time.sleep(interval)


def reattach_target(campaign_dir: Path) -> Run | None:
    """The newest SLURM run of a campaign that still has unfinished jobs (a new submit follows it)."""
    for run in reversed(list_runs(campaign_dir)):
        if run.info().get("executor") != "slurm":
            continue
        plan, _ = load_run(run)
        states = poll(run, plan)
        if any(name not in states or not states[name].final for name in plan.jobs):
            return run
        return None
    return None
