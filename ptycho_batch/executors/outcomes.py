"""Outcomes decided outside the job runner, in one place for every executor.

The job runner records what it sees of its own job. Some outcomes are seen only from outside: an upstream
failed (the job is SKIPPED), the scheduler killed or lost the job, the run supervisor died (LOST). Each is
recorded here, with a red note for a failure, by whoever notices it first (the local scheduler, the SLURM
poller, any reader that finds a dead supervisor).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, MutableMapping
from pathlib import Path

from ptycho_batch.campaign.plan import Plan, PlannedJob
from ptycho_batch.journal.records import JobState, State
from ptycho_batch.journal.store import JournalStates, Run, planned_state
from ptycho_batch.node.logtail import tail_lines
from ptycho_batch.node.triage import TAIL_LINES, write_red_note


def skip_reason(job: PlannedJob, states: Mapping[str, JobState]) -> str | None:
    """Why `job` cannot run because of its upstream (a need that ended without completing), else None.
    `states` need hold only the jobs that have a record of their own (`JournalStates.recorded`): a job known
    from its submission record or the plan alone has not ended."""
    for need in job.needs:
        upstream = states.get(need)
        if upstream is not None and upstream.final and upstream.state != State.COMPLETED:
            detail = f" ({upstream.failure_class})" if upstream.failure_class else ""
            return f"upstream {need} {upstream.state}{detail}"
    return None


def propagate_skips(run: Run, plan: Plan, states: MutableMapping[str, JobState]) -> list[JobState]:
    """Record SKIPPED for every unfinished job downstream of an unsuccessful one; return those records.

    The plan lists jobs in topological order, so a skip propagates downstream in one pass. A matrix cell's
    needs are its job's (`head`): no cell is built, nor its record (`states` may be a `JournalStates`), unless
    an upstream of it did not complete.
    """
    skipped: list[JobState] = []
    recorded = states.recorded if isinstance(states, JournalStates) else states   # no record built to be read
    for name in plan.jobs:
        head = plan.jobs.head(name)
        reason = skip_reason(head, recorded)
        if reason is None:
            continue
        state = states.get(name) or planned_state(head, name=name)
        if not state.final:
            state.state, state.reason = State.SKIPPED, reason
            run.write_state(plan.jobs.slug(name), state)
            states[name] = state
            skipped.append(state)
    return skipped


def settle_array(run: Run, plan: Plan, names: list[str], states: MutableMapping[str, JobState], final: State,
                 failure_class: str, line: str, *, runtime: str) -> None:
    """`settle` for every task of one array submission that failed as a whole (sbatch refused it), with ONE
    red note naming the campaign job, its task count and `line`, which each task's record points at: a
    refused 10,000-task array is one blocker, not 10,000 copies of one."""
    first = plan.jobs[names[0]]
    when = time.time()
    note = planned_state(first, state=final, failure_class=failure_class, failure_line=line, ended=when)
    write_red_note(first, note, runtime=runtime, argv=first.argv, env_names=sorted(first.env), tail=[], tasks=names)
    for name in names:
        state = states[name]
        state.red_note, state.ended = note.red_note, state.ended or when   # the note's moment, for every task
        states[name] = settle(run, plan.jobs[name], state, final, failure_class, note.failure_line or line,
                              runtime=runtime, note=False)


def settle(run: Run, job: PlannedJob, state: JobState, final: State, failure_class: str, line: str,
           *, runtime: str, note: bool = True) -> JobState:
    """A final record for a job its runner could not finish itself, with a red note (`note`) unless it was
    a cancel someone asked for."""
    state.state = final
    state.failure_class, state.failure_line = failure_class, line
    state.ended = state.ended or time.time()
    if note and (final != State.CANCELLED or not run.cancel_requested(job.slug)):  # an unasked-for cancel too
        tail = tail_lines(Path(state.log or job.log), TAIL_LINES)
        write_red_note(job, state, runtime=runtime, argv=job.argv, env_names=sorted(job.env), tail=tail)
    run.write_state(job.slug, state)
    return state
