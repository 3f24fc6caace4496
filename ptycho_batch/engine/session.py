"""One `ptybatch plan` / `ptybatch submit`: campaign -> plan -> decisions -> journal -> executor -> report.

Everything that can be wrong with the input is found before anything is written; the journal gets
each state before anyone else learns of it; the report is written at the end of every submit.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ptycho_batch.campaign.plan import Plan, build_plan, slugify
from ptycho_batch.campaign.spec import Campaign, LocatedYaml, Scalar, load_campaign
from ptycho_batch.engine.decisions import Decision, History, decide_all
from ptycho_batch.journal.locate import load_run
from ptycho_batch.journal.store import (
    JobState,
    Run,
    campaign_journal,
    create_run,
    list_runs,
    new_run_id,
    process_alive,
    submit_lock,
    write_atomic,
    write_json,
)
from ptycho_batch.reports.inventory import policy_decision, write_report
from ptycho_batch.runtimes.base import Runtime
from ptycho_batch.runtimes.factory import make_runtime, resolve_name


@dataclass
class Prepared:
    """A validated campaign with its plan and runtimes, before anything is written."""

    campaign: Campaign
    located: LocatedYaml
    plan: Plan
    runtimes: dict[str, Runtime]
    campaign_dir: Path
    run_id: str
    overrides: dict[str, Scalar] = field(default_factory=dict)


def prepare(path: Path, *, out: Path | None = None, overrides: dict[str, Scalar] | None = None,
            only: list[str] | None = None, runtime_override: str | None = None) -> Prepared:
    """Load, validate and plan; raises SpecError or RuntimeUnavailable, writes nothing."""
    campaign, located = load_campaign(path, overrides)
    out_dir = (out if out is not None else located.path.parent / campaign.out).resolve()
    base_dir = located.path.resolve().parent
    names = {b: resolve_name(b, spec, runtime_override, base_dir) for b, spec in campaign.backends.items()}
    runtimes = {b: make_runtime(names[b], b, spec, base_dir) for b, spec in campaign.backends.items()}
    campaign_dir = campaign_journal(out_dir, campaign.campaign)
    run_id = new_run_id()
    plan = build_plan(campaign, located, out=out_dir, run_dir=campaign_dir / run_id, runtimes=names, only=only)
    return Prepared(campaign, located, plan, runtimes, campaign_dir, run_id, dict(overrides or {}))


def decide(prepared: Prepared, *, force: bool = False, rerun_failed: bool = False) -> dict[str, Decision]:
    history = History.load(prepared.campaign_dir, exclude=prepared.run_id)
    return decide_all(prepared.plan, prepared.runtimes, history, force=force, rerun_failed=rerun_failed)


def reap_orphans(campaign_dir: Path, current: str) -> None:
    """Jobs left RUNNING by a local submit that died: stop their process groups and record that.

    Called with the submit lock held, so no live local submit owns them any more.
    """
    for run in list_runs(campaign_dir):
        if run.id == current or run.info().get("executor") != "local":
            continue
        for state in run.read_states().values():
            if state.final:
                continue
            if process_alive(state.pid, state.pid_start):
                try:
                    os.killpg(state.pid, signal.SIGKILL)  # type: ignore[arg-type]
                except ProcessLookupError:
                    pass
            state.state = "CANCELLED"
            state.reason = "interrupted: its submit process died"
            run.write_state(slugify(state.name), state)


def freeze(prepared: Prepared, run: Run, executor: str) -> None:
    """The frozen campaign (validated, with --set applied), the original text, the plan, run.json."""
    write_atomic(run.dir / "campaign.source.yaml", prepared.located.path.read_text())
    frozen = prepared.campaign.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    header = "# frozen by ptybatch" + (f"; --set {prepared.overrides}" if prepared.overrides else "") + "\n"
    write_atomic(run.dir / "campaign.yaml", header + yaml.safe_dump(frozen, sort_keys=False, allow_unicode=True))
    write_atomic(run.dir / "plan.json", prepared.plan.model_dump_json(indent=1))
    write_json(run.dir / "run.json", {"run_id": run.id, "campaign": prepared.plan.campaign, "executor": executor,
                                      "pid": os.getpid(), "overrides": prepared.overrides,
                                      "source": prepared.plan.source})


def initial_states(prepared: Prepared, run: Run, decisions: dict[str, Decision]) -> dict[str, JobState]:
    states: dict[str, JobState] = {}
    for name, job in prepared.plan.jobs.items():
        decision = decisions[name]
        if decision.cached is not None:
            states[name] = decision.cached.model_copy(update={"reason": decision.reason})
            run.write_state(job.slug, states[name])
        else:  # PENDING needs no file: readers derive it from plan.json
            states[name] = JobState(name=name, backend=job.backend, stage=job.stage, reason=decision.reason,
                                    log=job.log)
    return states


def exit_code(plan: Plan, states: dict[str, JobState]) -> int:
    """0 when every job of the required backends completed, else 1."""
    return 0 if policy_decision(plan, states).passed else 1


def run_campaign(prepared: Prepared, executor, *, force: bool = False, rerun_failed: bool = False,
                 on_start=lambda run, states: None, on_change=lambda state: None) -> tuple[Run, dict[str, JobState]]:
    """Submit under the campaign lock; returns the run and the final states (the report is written)."""
    with submit_lock(prepared.campaign_dir, prepared.run_id):
        reap_orphans(prepared.campaign_dir, prepared.run_id)
        decisions = decide(prepared, force=force, rerun_failed=rerun_failed)
        run = create_run(prepared.campaign_dir, prepared.run_id)
        freeze(prepared, run, executor.name)
        states = initial_states(prepared, run, decisions)
        on_start(run, states)
        try:
            states = executor.execute(prepared.plan, run, prepared.runtimes, states, on_change=on_change)
        finally:
            final = load_run(run)[1]
            run.update_info(finished=all(s.final for s in final.values()))
            write_report(prepared.plan, run, final)
    return run, states


def follow_existing(run: Run, executor, on_change=lambda state: None) -> dict[str, JobState]:
    """Reattach to a run whose jobs are still in the scheduler's hands, and follow it to the end."""
    plan, _ = load_run(run)
    states = executor.follow(plan, run, on_change)
    run.update_info(finished=True)
    write_report(plan, run, states)
    return states

