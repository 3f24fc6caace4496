"""The one SLURM poller: one `sacct` call per poll for a whole run, written into the journal.

Everyone who looks at a SLURM run (the following `submit`, `status`, `watch`, `report`) calls `poll`,
which queries at most once per interval whatever the number of viewers (a lock and a timestamp in the
run's `slurm/` folder). Without accounting, `squeue` plus the job runner's own records decide: a job
that left the queue without a final record is recorded as lost, never waited on forever.
Jobs downstream of a failure are recorded SKIPPED and cancelled in SLURM, so none stay pending as
DependencyNeverSatisfied.
"""

from __future__ import annotations

import fcntl
import time
from pathlib import Path

from ptycho_batch.campaign.plan import Plan
from ptycho_batch.executors.slurm import cluster
from ptycho_batch.journal.store import Attempt, JobState, Run, write_atomic
from ptycho_batch.node.triage import TAIL_LINES, red_note_path, write_red_note
from ptycho_batch.util.errors import SlurmCommandError

FAILURE_CLASS = {"TIMEOUT": "timeout", "OUT_OF_MEMORY": "oom", "NODE_FAIL": "node-fail", "FAILED": "exit",
                 "BOOT_FAIL": "node-fail", "DEADLINE": "timeout"}
REQUEUE_GRACE_S = 30.0   # how long an interrupted or self-requeued job may look finished in SLURM
PENDING_LIKE = {"PENDING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "RESV_DEL_HOLD", "SUSPENDED", "CONFIGURING",
                "PREEMPTED", "RESIZING", "SIGNALING", "STAGE_OUT"}


def poll(run: Run, plan: Plan, *, min_interval: float = 2.0, force: bool = False) -> dict[str, JobState]:
    """Refresh the journal from SLURM (unless another viewer just did) and return the states."""
    folder = run.dir / "slurm"
    folder.mkdir(exist_ok=True)
    with open(folder / "poll.lock", "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return run.read_states()  # someone else is polling right now
        stamp = folder / "last_poll"
        if force or not stamp.exists() or time.time() - stamp.stat().st_mtime >= min_interval:
            _refresh(run, plan)
            write_atomic(stamp, f"{time.time()}\n")
    return run.read_states()


def accounting(run: Run) -> bool:
    """Whether `sacct` works on this cluster, asked once per run and remembered in run.json."""
    info = run.info()
    if "slurm_accounting" not in info:
        info["slurm_accounting"] = cluster.accounting_available()
        run.update_info(slurm_accounting=info["slurm_accounting"])
    return bool(info["slurm_accounting"])


def _refresh(run: Run, plan: Plan) -> None:
    skip_downstream(run, plan)  # first: SLURM cancels dependents of a failure, they must read SKIPPED
    states = run.read_states()
    live = {name: s for name, s in states.items() if not s.final and s.slurm_job_id}
    if live:
        accounted = accounting(run)
        ids = [s.slurm_job_id for s in live.values() if s.slurm_job_id]
        try:
            seen = cluster.sacct_states(ids) if accounted else cluster.squeue_states(ids)
        except SlurmCommandError:
            return  # the scheduler did not answer: keep the journal as it is and try again later
        for name, state in live.items():
            current = run.read_state(plan.jobs[name].slug) or state  # the node may have written meanwhile
            _apply(run, plan, name, current, seen.get(state.slurm_job_id or ""), accounted)
    skip_downstream(run, plan)


def _apply(run: Run, plan: Plan, name: str, state: JobState, slurm: cluster.SlurmState | None,
           accounted: bool) -> None:
    """Fold one SLURM state into the journal record (the node's own final record always wins)."""
    if state.final:
        return
    if slurm is None:
        if not accounted:
            _finish(run, plan, name, state, "FAILED", "lost",
                    "the job left the queue without a final record (no accounting to say why)")
        return  # with accounting: not visible yet
    if slurm.state in ("FAILED", "COMPLETED") and _being_requeued(state):
        return  # SLURM reports the interrupted run's end before the requeued one: give it a moment
    if slurm.state == "TIMEOUT" and _requeue_after_timeout(run, plan, name, state):
        return
    if slurm.state == "RUNNING":
        if state.state == "PENDING":
            state.state, state.host = "RUNNING", slurm.node
            run.write_state(plan.jobs[name].slug, state)
        return
    if slurm.state in PENDING_LIKE:
        if slurm.reason == "DependencyNeverSatisfied":
            return  # skip_downstream records why and cancels it
        reason = slurm.state.lower() + (f" ({slurm.reason})" if slurm.reason else "")
        if state.reason != reason and not _being_requeued(state):  # keep why it was requeued while it waits
            state.state, state.reason = "PENDING", reason
            run.write_state(plan.jobs[name].slug, state)
        return
    if slurm.state == "CANCELLED" and _upstream_failed(plan, name, run.read_states()):
        return  # SLURM dropped it for a failed dependency: skip_downstream records SKIPPED with the reason
    if slurm.state == "CANCELLED":
        requested = " (requested)" if run.cancel_requested(plan.jobs[name].slug) else ""
        _finish(run, plan, name, state, "CANCELLED", "cancelled", f"cancelled in SLURM{requested}")
    elif slurm.state == "COMPLETED":
        _finish(run, plan, name, state, "FAILED", "lost", "SLURM reports COMPLETED but the node left no final record")
    else:
        exit_text = f", exit code {slurm.exit_code}" if slurm.exit_code is not None else ""
        _finish(run, plan, name, state, "FAILED", FAILURE_CLASS.get(slurm.state, "exit"),
                f"SLURM state {slurm.state}{exit_text}")


def _being_requeued(state: JobState) -> bool:
    """The node said it was interrupted or requeued itself a moment ago (accounting may lag behind)."""
    recent = time.time() - state.updated < REQUEUE_GRACE_S
    return recent and state.state == "PENDING" and (state.reason or "").startswith(("interrupted", "requeued"))


def _requeue_after_timeout(run: Run, plan: Plan, name: str, state: JobState) -> bool:
    """SLURM killed the job at its limit before the node could requeue it: requeue it from here."""
    job = plan.jobs[name]
    timeouts = sum(1 for a in state.attempts if a.failure_class == "timeout") + 1
    if timeouts > job.requeue or not state.slurm_job_id:
        return False
    state.attempts.append(Attempt(number=max(state.attempt, 1), state="FAILED", log=state.log or job.log,
                                  failure_class="timeout", failure_line="SLURM state TIMEOUT", ended=time.time()))
    state.state, state.reason = "PENDING", f"requeued after timeout ({timeouts}/{job.requeue})"
    run.write_state(job.slug, state)
    try:
        cluster.run_slurm_command(["scontrol", "requeue", state.slurm_job_id])
    except SlurmCommandError:
        pass  # the next poll sees the job still TIMEOUT past the grace period and records the failure
    return True


def _upstream_failed(plan: Plan, name: str, states: dict[str, JobState]) -> bool:
    return any(need in states and states[need].final and states[need].state != "COMPLETED"
               for need in plan.jobs[name].needs)


def _finish(run: Run, plan: Plan, name: str, state: JobState, final: str, klass: str, line: str) -> None:
    """A final record for a job the node could not finish itself (killed by SLURM, lost, cancelled)."""
    job = plan.jobs[name]
    state.state = final  # type: ignore[assignment]
    state.failure_class, state.failure_line = klass, line
    state.ended = state.ended or time.time()
    if final == "FAILED" or not run.cancel_requested(job.slug):  # an unexpected scancel is a blocker too
        log = Path(state.log or job.log)
        tail = log.read_text(errors="replace").splitlines()[-TAIL_LINES:] if log.exists() else []
        note = red_note_path(Path(job.report_dir), job.slug, state.ended)
        write_red_note(note, state=state, runtime=plan.runtimes[job.backend], argv=job.argv,
                       env_names=sorted(job.env), tail=tail)
        state.red_note = str(note)
    run.write_state(job.slug, state)


def skip_downstream(run: Run, plan: Plan) -> list[str]:
    """Record SKIPPED for jobs whose upstream did not complete, and cancel them in SLURM."""
    states = run.read_states()
    skipped: dict[str, str] = {}
    for name, job in plan.jobs.items():  # topological order: a skip propagates downstream in one pass
        state = states.get(name)
        if state is not None and state.final:
            continue
        for need in job.needs:
            upstream = states.get(need)
            failed = upstream is not None and upstream.final and upstream.state != "COMPLETED"
            if failed or need in skipped:
                detail = f" ({upstream.failure_class})" if upstream and upstream.failure_class else ""
                reason = f"upstream {need} {upstream.state if upstream else 'SKIPPED'}{detail}"
                record = state or JobState(name=name, backend=job.backend, stage=job.stage)
                record.state, record.reason = "SKIPPED", reason
                run.write_state(job.slug, record)
                states[name] = record
                skipped[name] = record.slurm_job_id or ""
                break
    ids = [i for i in skipped.values() if i]
    if ids:
        try:
            cluster.scancel(ids)
        except SlurmCommandError:
            pass  # already gone
    return list(skipped)
