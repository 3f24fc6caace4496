"""The local refresh: a run whose supervisor is gone reads as settled, never RUNNING forever.

A local run is carried by its supervisor (pid and kernel start time in run.json) and the campaign lock it
holds. When the lock is free and the run is not finished, nobody carries it any more: its unfinished jobs
are recorded LOST (a running one's process group is killed first, so nothing runs unrecorded; it gets a red
note), the run is marked finished, and the next `submit` runs those jobs again.
"""

from __future__ import annotations

import signal

from ptycho_batch.executors.outcomes import settle
from ptycho_batch.journal.records import FailureClass, State
from ptycho_batch.journal.store import Run, planned_state
from ptycho_batch.node.process import signal_group
from ptycho_batch.util.fsio import locked
from ptycho_batch.util.procs import process_alive


def supervisor_alive(run: Run) -> bool:
    supervisor = run.info().get("supervisor") or {}
    return process_alive(supervisor.get("pid"), supervisor.get("start"))


def refresh(run: Run) -> None:
    """Settle the run if nobody carries it (cheap when someone does: one /proc read)."""
    if run.info().get("finished") or supervisor_alive(run):
        return
    with locked(run.campaign_dir / "submit.lock", wait=False) as held:
        if held is not None:  # nobody else holds the campaign: the run has no carrier
            settle_orphan(run)


def settle_orphan(run: Run) -> None:
    """Record LOST for every unfinished job of a run nobody carries; the caller holds the campaign lock."""
    info = run.info()
    if info.get("finished") or supervisor_alive(run):
        return
    states = run.read_states()
    for name, job in run.plan.jobs.items():
        state = states.get(name) or planned_state(job)
        if state.final:
            continue
        started = state.state == State.RUNNING
        if started and process_alive(state.pid, state.pid_start) and state.pid is not None:
            signal_group(state.pid, signal.SIGKILL)
        line = ("its run supervisor died while it ran" if started
                else "never started: its run supervisor died first")
        settle(run, job, state, State.LOST, FailureClass.LOST, line, runtime=run.plan.runtimes[job.backend],
               note=started)
    run.update_info(finished=True, settled_by_reader=True)
