"""The function submitit runs on a SLURM node: the same job runner as the local executor.

It reads the plan and the upstream states from the run's journal (on the shared file system), runs
the job with its env firewall, logs, metrics, artifacts and red/green notes, and journals the result.
SLURM's warning signal (USR2, sent 20 to 80 s before the time limit: SLURM may send it up to 60 s early)
is only a warning: the node asks SLURM how much time is really left and stops the job cleanly as a timeout
`STOP_BEFORE_LIMIT_S` before the limit, so every attempt gets its full time. With attempts left under
`requeue: N` the node requeues itself and the next attempt starts from the same journal record.
SIGTERM (preemption, scancel) stops the job's process group, which
lives in its own session and would otherwise escape the scheduler, and leaves the verdict to the poller.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from pathlib import Path

import submitit

from ptycho_batch.executors.slurm.cluster import time_left
from ptycho_batch.journal.records import FailureClass, State
from ptycho_batch.journal.store import Run, planned_state
from ptycho_batch.node.process import ProcessRegistry
from ptycho_batch.node.runner import run_job
from ptycho_batch.runtimes.factory import runtimes_for_plan
from ptycho_batch.util.errors import SlurmCommandError

STOP_BEFORE_LIMIT_S = 5   # enough to stop the job's processes and record it before SLURM kills the step


class JobDidNotComplete(RuntimeError):
    """Raised on the node so that SLURM marks the job FAILED and `afterok` dependents never start."""


def run_on_node(run_dir: str, job_name: str) -> str:
    """Run one planned job on this node; returns "COMPLETED" (or "PENDING" when requeued), else raises."""
    run = Run(Path(run_dir))
    job = run.plan.jobs[job_name]
    runtime = runtimes_for_plan(run.plan)[job.backend]
    states = run.read_states()
    state = states.get(job_name) or planned_state(job)
    state.slurm_job_id = submitit.JobEnvironment().job_id  # `123_4` for an array task, the form sacct reports
    if run.cancel_requested(job.slug):
        state.state, state.reason = State.CANCELLED, "cancelled before it started"
        run.write_state(job.slug, state)
        raise JobDidNotComplete(f"{job_name}: cancelled before it started")
    registry = ProcessRegistry()
    warned = threading.Thread(target=_stop_at_limit, args=(registry, os.environ.get("SLURM_JOB_ID", "")), daemon=True)
    signal.signal(signal.SIGUSR2, lambda signum, frame: None if warned.is_alive() else warned.start())
    signal.signal(signal.SIGTERM, lambda signum, frame: registry.interrupt())
    final = run_job(job, run, runtime, state, states, registry=registry)
    timeouts = sum(1 for a in final.attempts if a.failure_class == FailureClass.TIMEOUT)
    if final.state == State.FAILED and final.failure_class == FailureClass.TIMEOUT and timeouts <= job.requeue:
        final.state = State.PENDING
        final.reason = f"requeued after timeout ({timeouts}/{job.requeue})"
        run.write_state(job.slug, final)
        subprocess.run(["scontrol", "requeue", os.environ["SLURM_JOB_ID"]], check=False, timeout=60)
        return final.state
    if final.state not in (State.COMPLETED, State.PENDING):
        raise JobDidNotComplete(f"{job_name}: {final.state} ({final.failure_class}: {final.failure_line})")
    return final.state


def _stop_at_limit(registry: ProcessRegistry, job_id: str) -> None:
    """After SLURM's warning: time the job out just before the real limit (at once if SLURM cannot say when)."""
    try:
        left = time_left(job_id)
    except SlurmCommandError:
        left = None
    threading.Event().wait(max(0, (left or 0) - STOP_BEFORE_LIMIT_S))
    registry.time_out()
