"""Cancelling jobs of a run from any process (the CLI, the TUI): record the request, then stop the job.

The request is a marker file in the job's journal folder, written first, so whichever process ends the
job (the local job runner, the SLURM poller) records CANCELLED rather than a failure.
"""

from __future__ import annotations

import signal

from ptycho_batch.campaign.plan import Plan
from ptycho_batch.journal.store import Run, process_alive
from ptycho_batch.node.runner import signal_group


def cancel_jobs(run: Run, plan: Plan, names: list[str]) -> list[str]:
    """Request cancellation of `names` (all unfinished jobs when empty); return the names affected.

    Only the named jobs' records are read, so cancelling one job of a 10,000-job run stays instant.
    """
    if names:
        states = {n: s for n in names if (s := run.read_state(plan.jobs[n].slug)) is not None}
    else:
        states = run.read_states()
    targets = names or [n for n in plan.jobs if n not in states or not states[n].final]
    affected: list[str] = []
    slurm_ids: list[str] = []
    for name in targets:
        state = states.get(name)
        if state is not None and state.final:
            continue
        slug = plan.jobs[name].slug
        run.request_cancel(slug)
        if state is not None and state.slurm_job_id:
            slurm_ids.append(state.slurm_job_id)
        elif state is not None and state.state == "RUNNING" and process_alive(state.pid, state.pid_start):
            signal_group(state.pid, signal.SIGTERM)  # type: ignore[arg-type]
        affected.append(name)
    if slurm_ids:
        from ptycho_batch.executors.slurm.cluster import scancel

        scancel(slurm_ids)  # the poller records CANCELLED (the request marker says it was asked for)
    return affected
