"""The SLURM executor: the whole campaign is submitted at once through submitit, then followed.

Each job is a submitit job running `slurm_node.run_on_node` (the local executor's job runner); `needs`
become `afterok` dependencies; a matrix job becomes one job array (split at the cluster's MaxArraySize).
All jobs of a run share one SLURM job name, `ptybatch_<campaign>_<run id>`. submitit's files live in
`<run>/slurm/`. States come from the one poller (slurm_poll), never from submitit's own watcher, which
needs accounting and can wait forever on a job that died without a result.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO

from ptycho_batch.campaign.config import user_resources
from ptycho_batch.campaign.plan import Plan
from ptycho_batch.executors.base import Finalize
from ptycho_batch.executors.outcomes import propagate_skips, settle, settle_array
from ptycho_batch.executors.slurm import cluster, poll
from ptycho_batch.executors.slurm.options import sbatch_options
from ptycho_batch.journal.lock import campaign_lock
from ptycho_batch.journal.records import FailureClass, JobState, State
from ptycho_batch.journal.store import SUBMITTED_REASON, Run, list_runs
from ptycho_batch.runtimes.base import Runtime
from ptycho_batch.util.errors import SlurmCommandError
from ptycho_batch.util.progress import spinner


def job_name(plan: Plan, run: Run) -> str:
    return f"ptybatch_{plan.campaign}_{run.id}"


class SlurmExecutor:
    name = "slurm"
    finalizes_itself = False

    def __init__(self) -> None:
        self.sbatch_calls = 0
        self._max_array: int | None = None

    def max_array(self) -> int:
        """The cluster's MaxArraySize, asked once per submit: its `scontrol show config` is also the proof
        that the controller answers (SlurmCommandError otherwise), so no `sinfo` is needed beside it."""
        if self._max_array is None:
            self._max_array = cluster.max_array_size()
        return self._max_array

    def check(self, plan: Plan) -> None:
        """Nothing to check here: what a node offers is the cluster's to say (sbatch refuses, recorded `submit`)."""

    def launch(self, run: Run, runtimes: dict[str, Runtime], states: dict[str, JobState], lock: IO[str],
               finalize: Finalize) -> None:
        with spinner(f"submitting {len(run.plan.jobs)} jobs to SLURM"):
            self.submit_all(run.plan, run, states)

    def refresh(self, run: Run) -> None:
        poll.refresh(run)

    def cancel(self, run: Run, names: list[str]) -> list[str]:
        """Record each cancel request, then scancel; the poller records CANCELLED (the marker says it was asked).

        A job that never reached SLURM is CANCELLED here. When scancel fails (the controller is down) the
        requests are withdrawn, so that nothing records a cancel that did not happen, and the error says why.
        """
        states = run.all_states()
        affected = [n for n in (names or list(run.plan.jobs)) if not states[n].final]
        for name in affected:
            run.request_cancel(run.plan.jobs[name].slug)
        ids = [i for n in affected if (i := states[n].slurm_job_id)]
        try:
            cluster.scancel(ids)
        except SlurmCommandError:
            for name in affected:
                run.withdraw_cancel(run.plan.jobs[name].slug)
            raise
        for name in affected:
            if not states[name].slurm_job_id:
                job = run.plan.jobs[name]
                settle(run, job, states[name], State.CANCELLED, FailureClass.CANCELLED,
                       "cancelled before it reached SLURM", runtime=run.plan.runtimes[job.backend])
        return affected

    def active_run(self, campaign_dir: Path) -> Run | None:
        """The unfinished run to follow; jobs of it that never reached SLURM (a killed submitter, a controller
        that was down) are submitted now, under the campaign lock (a live submitter makes it CampaignBusy)."""
        self.max_array()  # a submit must not follow a run it cannot see: raises unless the controller answers
        run = reattach_target(campaign_dir)
        if run is not None and any(not s.final and not s.slurm_job_id for s in run.all_states().values()):
            with campaign_lock(campaign_dir, run.id):
                states = run.all_states()
                with spinner("submitting the jobs that never reached SLURM"):
                    self.submit_all(run.plan, run, states)
        return run

    def describe_launch(self, run: Run) -> str:
        return f"submitted {len(run.plan.jobs)} jobs in {self.sbatch_calls} sbatch call(s)"

    def interrupt(self, run: Run) -> str:
        unfinished = sum(1 for state in run.all_states().values() if not state.final)
        if not unfinished:
            return "stopped following; every job of the run has ended"
        return (f"stopped following; {unfinished} unfinished job(s) stay in SLURM "
                "(`ptybatch status` / `watch` / `submit` again pick the run up, `ptybatch cancel` stops them)")

    def submit_all(self, plan: Plan, run: Run, states: dict[str, JobState]) -> None:
        """One sbatch per plain job and per array chunk, in dependency order, for every unfinished job that
        has no SLURM id yet, each call recorded by one submission record (no file per job). A job sbatch
        refuses is recorded FAILED (`submit`) and its dependents SKIPPED; an unreachable controller stops the
        submission (SlurmCommandError) and the next submit goes on."""
        from ptycho_batch.executors.slurm import submission  # submitit: only a submit needs it, not a viewer

        name = job_name(plan, run)
        run.update_info(slurm_job_name=name)
        for job_key, slurm_id in submission.adopt_leftovers(run, name).items():
            _submitted(states[job_key], slurm_id)
        defaults = user_resources()
        max_array = self.max_array()
        array_ids: dict[str, list[str]] = {}   # base job -> SLURM ids to depend on
        groups: dict[str, list[str]] = {}
        for job_key, job in plan.jobs.items():
            if not states[job_key].final and not states[job_key].slurm_job_id:
                groups.setdefault(job.base, []).append(job_key)
        for base, names in groups.items():
            names = [n for n in names if not states[n].final]  # a refused upstream skipped them meanwhile
            if not names:
                continue
            first = plan.jobs[names[0]]
            options = sbatch_options(first, defaults)
            after = sorted({i for need in first.needs for i in self._ids_of(need, plan, states, array_ids)})
            ids: list[str] = []
            chunks = [names] if len(names) == 1 and names[0] == base else \
                [names[start:start + max_array] for start in range(0, len(names), max_array)]
            for chunk in chunks:
                try:
                    chunk_ids = submission.submit(run, chunk, job_name=name, options=options, after=after,
                                                  parallelism=first.array_parallelism)
                except submission.SbatchRefused as refused:
                    self._refused(run, plan, states, chunk, str(refused))
                    continue
                self.sbatch_calls += 1
                for job_key, slurm_id in zip(chunk, chunk_ids):  # journaled by the call's one record
                    _submitted(states[job_key], slurm_id)
                ids.append(chunk_ids[0].split("_")[0])
            if ids:
                array_ids[base] = ids
        run.update_info(sbatch_calls=run.info().get("sbatch_calls", 0) + self.sbatch_calls)

    @staticmethod
    def _refused(run: Run, plan: Plan, states: dict[str, JobState], names: list[str], message: str) -> None:
        """sbatch refused these jobs (one job, or one array): FAILED (`submit`) with sbatch's message, their
        dependents SKIPPED. A refused array gets one red note, which each of its tasks points at."""
        runtime = plan.runtimes[plan.jobs.head(names[0]).backend]
        if len(names) > 1:
            settle_array(run, plan, names, states, State.FAILED, FailureClass.SUBMIT,
                         f"sbatch refused the job array: {message}", runtime=runtime)
        else:
            job = plan.jobs[names[0]]
            states[job.name] = settle(run, job, states[job.name], State.FAILED, FailureClass.SUBMIT,
                                      f"sbatch refused the job: {message}", runtime=runtime)
        propagate_skips(run, plan, states)

    @staticmethod
    def _ids_of(need: str, plan: Plan, states: dict[str, JobState], array_ids: dict[str, list[str]]) -> list[str]:
        """SLURM ids a dependent must wait for (none when the upstream is already complete)."""
        base = plan.jobs[need].base
        if base in array_ids:
            return array_ids[base]
        state = states[need]
        return [] if state.final or not state.slurm_job_id else [state.slurm_job_id]


def _submitted(state: JobState, slurm_id: str) -> None:
    """In memory, what the submission record says of a job (readers derive the same from it)."""
    state.state, state.slurm_job_id, state.reason = State.PENDING, slurm_id, SUBMITTED_REASON


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
