"""The SLURM executor: the whole campaign is submitted at once through submitit, then followed.

Each job is a submitit job running `slurm_node.run_on_node` (the local executor's job runner); `needs`
become `afterok` dependencies; a matrix job becomes one job array (split at the cluster's MaxArraySize).
All jobs of a run share one SLURM job name, `ptybatch_<campaign>_<run id>`. submitit's files live in
`<run>/slurm/`. States come from the one poller (slurm_poll), never from submitit's own watcher, which
needs accounting and can wait forever on a job that died without a result.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

import submitit

from ptycho_batch.campaign.config import user_resources
from ptycho_batch.campaign.plan import Plan, PlannedJob
from ptycho_batch.campaign.spec import Resources
from ptycho_batch.executors.base import Finalize
from ptycho_batch.executors.slurm import cluster, poll
from ptycho_batch.executors.slurm.node import run_on_node
from ptycho_batch.journal.records import JobState, State
from ptycho_batch.journal.store import Run, list_runs
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
    finalizes_itself = False

    def __init__(self) -> None:
        self.sbatch_calls = 0

    def launch(self, run: Run, runtimes: dict[str, Runtime], states: dict[str, JobState], lock: IO[str],
               finalize: Finalize) -> None:
        with spinner(f"submitting {len(run.plan.jobs)} jobs to SLURM"):
            self.submit_all(run.plan, run, states)

    def refresh(self, run: Run) -> None:
        poll.refresh(run)

    def cancel(self, run: Run, names: list[str]) -> list[str]:
        """Record each cancel request, then scancel; the poller records CANCELLED (the marker says it was asked)."""
        states = run.all_states()
        affected = [n for n in (names or list(run.plan.jobs)) if not states[n].final]
        for name in affected:
            run.request_cancel(run.plan.jobs[name].slug)
        ids = [i for n in affected if (i := states[n].slurm_job_id)]
        if ids:
            cluster.scancel(ids)
        return affected

    def active_run(self, campaign_dir: Path) -> Run | None:
        return reattach_target(campaign_dir)

    def describe_launch(self, run: Run) -> str:
        return f"submitted {len(run.plan.jobs)} jobs in {self.sbatch_calls} sbatch call(s)"

    def interrupt(self, run: Run) -> str:
        return ("stopped following; the jobs keep running in SLURM "
                "(`ptybatch status` / `watch` / `submit` again pick the run up)")

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
                state.state, state.slurm_job_id, state.reason = State.PENDING, handle.job_id, "submitted"
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


def reattach_target(campaign_dir: Path) -> Run | None:
    """The newest SLURM run of a campaign that still has unfinished jobs (a new submit follows it)."""
    for run in reversed(list_runs(campaign_dir)):
        if run.info().get("executor") != "slurm":
            continue
        poll.refresh(run)
        if any(not state.final for state in run.all_states().values()):
            return run
        return None
    return None
