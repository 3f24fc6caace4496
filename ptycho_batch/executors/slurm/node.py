"""The function submitit runs on a SLURM node: the same job runner as the local executor.

It reads the plan and the upstream states from the run's journal (on the shared file system), runs
the job with its env firewall, logs, metrics, artifacts and red/green notes, and journals the result.
SLURM's warning signal (USR2, `signal_delay_s` before the time limit) stops the job cleanly as a
timeout; with attempts left under `requeue: N` the node requeues itself and the next attempt starts
from the same journal record. SIGTERM (preemption, scancel) stops the job's process group, which
lives in its own session and would otherwise escape the scheduler, and leaves the verdict to the poller.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from ptycho_batch.campaign.plan import Plan, cache_key, cache_parts
from ptycho_batch.engine.decisions import upstream_digests
from ptycho_batch.journal.store import JobState, Run
from ptycho_batch.node.runner import ProcessRegistry, run_job
from ptycho_batch.runtimes.factory import runtimes_for_plan


class JobDidNotComplete(RuntimeError):
    """Raised on the node so that SLURM marks the job FAILED and `afterok` dependents never start."""


def slurm_job_id() -> str | None:
    """`123_4` for an array task, `123` otherwise (the form sacct reports)."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    return f"{array}_{task}" if array and task else os.environ.get("SLURM_JOB_ID")


def run_on_node(run_dir: str, job_name: str) -> str:
    """Run one planned job on this node; returns "COMPLETED" (or "PENDING" when requeued), else raises."""
    run = Run(Path(run_dir))
    plan = Plan.model_validate_json((run.dir / "plan.json").read_text())
    job = plan.jobs[job_name]
    runtime = runtimes_for_plan(plan)[job.backend]
    states = run.read_states()
    state = states.get(job_name) or JobState(name=job_name, backend=job.backend, stage=job.stage)
    state.slurm_job_id = slurm_job_id() or state.slurm_job_id
    if run.cancel_requested(job.slug):
        state.state, state.reason = "CANCELLED", "cancelled before it started"
        run.write_state(job.slug, state)
        raise JobDidNotComplete(f"{job_name}: cancelled before it started")
    state.cache_parts = cache_parts(job, runtime.identity(), upstream_digests(job, states))
    state.cache_key = cache_key(state.cache_parts)
    registry = ProcessRegistry()
    signal.signal(signal.SIGUSR2, lambda signum, frame: registry.time_out())
    signal.signal(signal.SIGTERM, lambda signum, frame: registry.interrupt())
    final = run_job(job, run, runtime, state, registry=registry)
    timeouts = sum(1 for a in final.attempts if a.failure_class == "timeout")
    if final.state == "FAILED" and final.failure_class == "timeout" and timeouts <= job.requeue:
        final.state = "PENDING"
        final.reason = f"requeued after timeout ({timeouts}/{job.requeue})"
        run.write_state(job.slug, final)
        subprocess.run(["scontrol", "requeue", os.environ["SLURM_JOB_ID"]], check=False, timeout=60)
        return final.state
    if final.state not in ("COMPLETED", "PENDING"):
        raise JobDidNotComplete(f"{job_name}: {final.state} ({final.failure_class}: {final.failure_line})")
    return final.state
