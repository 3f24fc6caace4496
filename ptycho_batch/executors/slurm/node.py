"""The function submitit runs on a SLURM node: the same job runner as the local executor.

It reads the plan and the upstream states from the run's journal (on the shared file system), runs
the job with its env firewall, logs, metrics, artifacts and red/green notes, and journals the result.
The job runs to its real time limit: at start the node asks SLURM how much time is left (for a job whose
campaign sets a limit) and stops the job cleanly as a timeout `STOP_BEFORE_LIMIT_S` before it, so every
attempt gets its full time. SLURM's warning
signal (USR2, which submitit asks for and SLURM may send up to 60 s early to every process of the step) is
ignored, by the job's processes too (they inherit the disposition), so it can end nothing early. With
attempts left under `requeue: N` the node requeues itself and the next attempt starts from the same record.
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

from ptycho_batch.campaign.plan import PlannedJob
from ptycho_batch.executors.outcomes import settle
from ptycho_batch.executors.slurm.cluster import time_left
from ptycho_batch.journal.records import FailureClass, JobState, State
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
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    if job.resources.time is not None or job.timeout_min:  # else no limit of ours: no squeue per job start
        _stop_at_limit(registry, os.environ.get("SLURM_JOB_ID", ""))
    signal.signal(signal.SIGTERM, lambda signum, frame: registry.interrupt())
    final = run_job(job, run, runtime, state, states, registry=registry)
    if final.state == State.FAILED and final.signal == signal.SIGKILL and oom_kills() > 0:
        final = _as_oom(run, job, final)
    timeouts = final.timeouts
    if final.state == State.FAILED and final.failure_class == FailureClass.TIMEOUT and timeouts <= job.requeue:
        final.state = State.PENDING
        final.reason = f"requeued after timeout ({timeouts}/{job.requeue})"
        run.write_state(job.slug, final)
        subprocess.run(["scontrol", "requeue", os.environ["SLURM_JOB_ID"]], check=False, timeout=60)
        return final.state
    if final.state not in (State.COMPLETED, State.PENDING):
        raise JobDidNotComplete(f"{job_name}: {final.state} ({final.failure_class}: {final.failure_line})")
    return final.state


def run_array_task(run_dir: str, job_names: list[str]) -> str:
    """An array task: the job at this task's index (an array's tasks share one pickle, and so its arguments)."""
    return run_on_node(run_dir, job_names[int(os.environ["SLURM_ARRAY_TASK_ID"])])


def _stop_at_limit(registry: ProcessRegistry, job_id: str) -> None:
    """Time the job out just before SLURM's limit (nothing to do when it has none or SLURM cannot say)."""
    try:
        left = time_left(job_id)
    except SlurmCommandError:
        left = None
    if left is not None:
        timer = threading.Timer(max(0, left - STOP_BEFORE_LIMIT_S), registry.time_out)
        timer.daemon = True
        timer.start()


def oom_kills() -> int:
    """How many processes the kernel's OOM killer ended in this step's memory cgroup (SLURM's task/cgroup
    puts the step there, so a job killed by SIGKILL is known to have run out of its --mem)."""
    total = 0
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for candidate in ([Path(f"/sys/fs/cgroup/memory{path}/memory.oom_control")] if "memory" in controllers
                          else [Path(f"/sys/fs/cgroup{path}/memory.events"),
                                Path(f"/sys/fs/cgroup/unified{path}/memory.events")] if not controllers else []):
            try:
                counts = dict(entry.split() for entry in candidate.read_text().splitlines() if " " in entry)
            except OSError:
                continue
            total += int(counts.get("oom_kill", 0))
    return total


def _as_oom(run: Run, job: PlannedJob, state: JobState) -> JobState:
    """The runner saw SIGKILL; the cgroup says it was the OOM killer: record `oom` (and its red note) instead."""
    line = f"killed by the out-of-memory killer: the job used more than its memory request ({job.resources.mem_gb} GB)"
    for attempt in state.attempts[-1:]:
        attempt.failure_class, attempt.failure_line = FailureClass.OOM, line
    if state.red_note:
        Path(state.red_note).unlink(missing_ok=True)
    return settle(run, job, state, State.FAILED, FailureClass.OOM, line, runtime=run.plan.runtimes[job.backend])
