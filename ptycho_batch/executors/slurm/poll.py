"""The one SLURM poller: one `sacct` call per poll for a whole run, written into the journal.

Everyone who looks at a SLURM run (the following `submit`, `status`, `watch`, `report`) calls `refresh`,
which queries at most once per interval whatever the number of viewers (a lock and a timestamp in the
run's `slurm/` folder). Without accounting, `squeue` plus the job runner's own records decide: a job
that left the queue without a final record is recorded as lost, never waited on forever.
Jobs downstream of a failure are recorded SKIPPED and cancelled in SLURM, so none stay pending as
DependencyNeverSatisfied.
"""

from __future__ import annotations

import time

from ptycho_batch.campaign.plan import Plan
from ptycho_batch.executors.outcomes import propagate_skips, settle, skip_reason
from ptycho_batch.executors.slurm import cluster
from ptycho_batch.journal.records import Attempt, FailureClass, JobState, State
from ptycho_batch.journal.store import JournalStates, Run
from ptycho_batch.util.errors import SlurmCommandError
from ptycho_batch.util.fsio import locked, write_atomic

FAILURE_CLASS = {"TIMEOUT": FailureClass.TIMEOUT, "OUT_OF_MEMORY": FailureClass.OOM,
                 "NODE_FAIL": FailureClass.NODE_FAIL, "FAILED": FailureClass.EXIT,
                 "BOOT_FAIL": FailureClass.NODE_FAIL, "DEADLINE": FailureClass.TIMEOUT}
# a job that ends so is requeued by SLURM (every job is submitted with --requeue): an attempt, not a verdict
REQUEUED_BY_SLURM = frozenset({"NODE_FAIL", "BOOT_FAIL"})
REQUEUE_GRACE_S = 30.0   # how long an interrupted or self-requeued job may look finished in SLURM
PENDING_LIKE = {"PENDING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "RESV_DEL_HOLD", "SUSPENDED", "CONFIGURING",
                "PREEMPTED", "RESIZING", "SIGNALING", "STAGE_OUT"}


JOBS_PER_SECOND = 250   # a poll reads every record: big runs are polled less often (10,000 jobs: every 40 s)


def refresh(run: Run, *, min_interval: float = 2.0) -> None:
    """Refresh the journal from SLURM unless another viewer did within `min_interval` (or is doing it now);
    the interval grows with the run's size so that watching a 10,000-task array stays cheap."""
    min_interval = max(min_interval, len(run.plan.jobs) / JOBS_PER_SECOND)
    folder = run.dir / "slurm"
    folder.mkdir(exist_ok=True)
    with locked(folder / "poll.lock", wait=False) as held:
        if held is None:
            return  # someone else is polling right now
        stamp = folder / "last_poll"
        if not stamp.exists() or time.time() - stamp.stat().st_mtime >= min_interval:
            _refresh(run, run.plan)
            write_atomic(stamp, f"{time.time()}\n")


def accounting(run: Run) -> bool:
    """Whether `sacct` works on this cluster, asked once per run and remembered in run.json."""
    info = run.info()
    if "slurm_accounting" not in info:
        info["slurm_accounting"] = cluster.accounting_available()
        run.update_info(slurm_accounting=info["slurm_accounting"])
    return bool(info["slurm_accounting"])


def _refresh(run: Run, plan: Plan) -> None:
    # one read per poll, kept up to date below; a queued task's record is built only if the poll changes it
    states = run.journal_states()
    skip_downstream(run, plan, states)  # first: SLURM cancels dependents of a failure, they must read SKIPPED
    live = states.live_ids()
    try:
        seen, accounted = _ask(run, list(live.values()))
    except SlurmCommandError as error:
        _unreachable(run, f"{error.argv[0]}: {error.reason}")
        return  # the scheduler did not answer: keep the journal as it is and try again later
    _unreachable(run, None)
    recorded = run.recorded_slugs()  # after sacct: a record the node wrote meanwhile is read below
    for name in (name for name in plan.jobs if name in live):  # upstream first: SLURM cancels a dependent
        slug = plan.jobs.slug(name)                            # of a failure, which must then read SKIPPED
        own = run.read_state(slug) if slug in recorded else None  # the node may have written meanwhile
        slurm = seen.get(live[name])
        if own is None and _still_queued(slurm):
            continue  # its submission record says so already: no file (and no record built) per queued task
        states[name] = current = own or states[name]
        _apply(run, plan, name, current, slurm, accounted, states)
    skip_downstream(run, plan, states)


def _still_queued(slurm: cluster.SlurmState | None) -> bool:
    """Plainly waiting in the queue (no earlier run that ended, nothing for skip_downstream to act on)."""
    return (slurm is not None and slurm.state == "PENDING" and not slurm.earlier_states
            and slurm.reason != "DependencyNeverSatisfied")


def _ask(run: Run, ids: list[str]) -> tuple[dict[str, cluster.SlurmState], bool]:
    """What SLURM says of `ids` in one call, and whether it came from accounting."""
    if not ids:
        return {}, True
    if accounting(run):
        return cluster.sacct_states(ids), True
    return cluster.squeue_states(ids), False


def _apply(run: Run, plan: Plan, name: str, state: JobState, slurm: cluster.SlurmState | None,
           accounted: bool, states: JournalStates) -> None:
    """Fold one SLURM state into the journal record (the node's own final record always wins)."""
    if state.final:
        return
    if slurm is None:
        if not accounted and run.cancel_requested(plan.jobs.slug(name)):
            _finish(run, plan, name, state, State.CANCELLED, FailureClass.CANCELLED, "cancelled in SLURM (requested)")
        elif not accounted:
            _finish(run, plan, name, state, State.FAILED, FailureClass.LOST,
                    "the job left the queue without a final record (no accounting to say why)")
        return  # with accounting: not visible yet
    if slurm.state in ("FAILED", "COMPLETED") and _being_requeued(state):
        return  # SLURM reports the interrupted run's end before the requeued one: give it a moment
    if slurm.state == "TIMEOUT" and _requeue_after_timeout(run, plan, name, state):
        return
    if slurm.state == "RUNNING":
        if state.state == State.PENDING:
            state.state, state.host = State.RUNNING, slurm.node
            run.write_state(plan.jobs.slug(name), state)
        return
    if slurm.state in PENDING_LIKE:
        if state.state in (State.RUNNING, State.PENDING) and _unrecorded_node_failure(state, slurm):
            _record_requeue(run, plan, name, state, _unrecorded_node_failure(state, slurm) or "")
            return
        if slurm.reason == "DependencyNeverSatisfied":
            return  # skip_downstream records why and cancels it
        if slurm.state == "PENDING" and state.state == State.RUNNING:
            return  # the node already runs it: accounting has not caught up (a requeue comes as REQUEUED)
        reason = slurm.state.lower() + (f" ({slurm.reason})" if slurm.reason else "")
        if state.reason != reason and not _being_requeued(state):  # keep why it was requeued while it waits
            state.state, state.reason = State.PENDING, reason
            run.write_state(plan.jobs.slug(name), state)
        return
    if not slurm.terminal:
        return  # COMPLETING and the like: the verdict comes with the next poll
    if slurm.state in REQUEUED_BY_SLURM and _requeued_by_slurm(run, plan, name, state, slurm):
        return
    if slurm.state == "CANCELLED" and _upstream_failed(plan, name, states):
        return  # SLURM dropped it for a failed dependency: skip_downstream records SKIPPED with the reason
    if slurm.state == "CANCELLED":
        requested = " (requested)" if run.cancel_requested(plan.jobs.slug(name)) else ""
        _finish(run, plan, name, state, State.CANCELLED, FailureClass.CANCELLED, f"cancelled in SLURM{requested}")
    elif slurm.state == "COMPLETED":
        _finish(run, plan, name, state, State.FAILED, FailureClass.LOST,
                "SLURM reports COMPLETED but the node left no final record")
    else:
        exit_text = f", exit code {slurm.exit_code}" if slurm.exit_code is not None else ""
        _finish(run, plan, name, state, State.FAILED, FAILURE_CLASS.get(slurm.state, FailureClass.EXIT),
                f"SLURM state {slurm.state}{exit_text}")


def _unreachable(run: Run, reason: str | None) -> None:
    """Tell followers (run.json `scheduler_unreachable`) when the controller stops or starts answering again."""
    if run.info().get("scheduler_unreachable") != reason:
        run.update_info(scheduler_unreachable=reason)


def _being_requeued(state: JobState) -> bool:
    """The node said it was interrupted or requeued itself a moment ago (accounting may lag behind)."""
    recent = time.time() - state.updated < REQUEUE_GRACE_S
    return recent and state.state == State.PENDING and (state.reason or "").startswith(("interrupted", "requeued"))


def _requeued_by_slurm(run: Run, plan: Plan, name: str, state: JobState, slurm: cluster.SlurmState) -> bool:
    """NODE_FAIL: record the attempt and wait for SLURM's requeue; False (a verdict) once the grace has passed
    and SLURM still reports the failure as the job's latest state (it did not requeue it)."""
    if state.reason == f"requeued by SLURM after {slurm.state}":
        return _being_requeued(state)
    _record_requeue(run, plan, name, state, slurm.state)
    return True


def _unrecorded_node_failure(state: JobState, slurm: cluster.SlurmState) -> str | None:
    """The earlier run's NODE_FAIL (SLURM already requeued the job) when the journal has no attempt for it."""
    failures = [earlier for earlier in slurm.earlier_states if earlier in REQUEUED_BY_SLURM]
    recorded = sum(1 for attempt in state.attempts if attempt.failure_class == FailureClass.NODE_FAIL)
    return failures[-1] if len(failures) > recorded else None


def _record_requeue(run: Run, plan: Plan, name: str, state: JobState, slurm_state: str) -> None:
    """The attempt that ended in `slurm_state`, and PENDING while SLURM requeues the job (dependents wait)."""
    reason = f"requeued by SLURM after {slurm_state}"
    job = plan.jobs[name]
    number = max(state.attempt, 1)
    if not state.attempts or state.attempts[-1].number != number:  # else the node recorded it (interrupted)
        state.attempts.append(Attempt(number=number, state=State.FAILED, log=state.log or job.log,
                                      ended=time.time()))
    state.attempts[-1].failure_class = FAILURE_CLASS[slurm_state]
    state.attempts[-1].failure_line, state.attempts[-1].reason = f"SLURM state {slurm_state}", reason
    state.state, state.reason = State.PENDING, reason
    run.write_state(job.slug, state)


def _requeue_after_timeout(run: Run, plan: Plan, name: str, state: JobState) -> bool:
    """SLURM killed the job at its limit before the node could requeue it: requeue it from here."""
    job = plan.jobs[name]
    timeouts = state.timeouts + 1
    if timeouts > job.requeue or not state.slurm_job_id:
        return False
    state.attempts.append(Attempt(number=max(state.attempt, 1), state=State.FAILED, log=state.log or job.log,
                                  failure_class=FailureClass.TIMEOUT, failure_line="SLURM state TIMEOUT",
                                  ended=time.time()))
    state.state, state.reason = State.PENDING, f"requeued after timeout ({timeouts}/{job.requeue})"
    run.write_state(job.slug, state)
    try:
        cluster.run_slurm_command(["scontrol", "requeue", state.slurm_job_id])
    except SlurmCommandError:
        pass  # the next poll sees the job still TIMEOUT past the grace period and records the failure
    return True


def _upstream_failed(plan: Plan, name: str, states: JournalStates) -> bool:
    return skip_reason(plan.jobs.head(name), states.recorded) is not None


def _finish(run: Run, plan: Plan, name: str, state: JobState, final: State, klass: str, line: str) -> None:
    """A final record for a job the node could not finish itself (killed by SLURM, lost, cancelled)."""
    settle(run, plan.jobs[name], state, final, klass, line, runtime=plan.runtimes[plan.jobs[name].backend])


def skip_downstream(run: Run, plan: Plan, states: JournalStates) -> list[str]:
    """Record SKIPPED for jobs whose upstream did not complete (in `states` too), and cancel them in SLURM."""
    skipped = propagate_skips(run, plan, states)
    ids = [s.slurm_job_id for s in skipped if s.slurm_job_id]
    if ids:
        try:
            cluster.scancel(ids)
        except SlurmCommandError:
            pass  # already gone
    return [s.name for s in skipped]
