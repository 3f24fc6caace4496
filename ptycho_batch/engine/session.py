"""One `ptybatch plan` / `ptybatch submit`: campaign -> plan -> decisions -> journal -> executor -> report.

Everything that can be wrong with the input is found before anything is written; the runtimes the run
needs are made ready (venvs built, images checked) before the run exists; the journal gets each state
before anyone else learns of it; the executor's carrier (a detached supervisor, SLURM) takes the run from
there and whoever sees it end writes the report.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from ptycho_batch import __version__
from ptycho_batch.campaign.plan import Plan, build_plan, plan_json
from ptycho_batch.campaign.spec import Campaign, LocatedYaml, Scalar, load_campaign
from ptycho_batch.campaign.yamlio import SAFE_DUMPER
from ptycho_batch.journal.lock import campaign_lock, report_dir_locks
from ptycho_batch.journal.records import JobState
from ptycho_batch.journal.store import Run, campaign_journal, create_run, list_runs, new_run_id, planned_state
from ptycho_batch.runtimes.factory import make_runtime, resolve_name
from ptycho_batch.runtimes.images import PROJECT_ROOT, git_revision
from ptycho_batch.util.fsio import write_atomic, write_json

if TYPE_CHECKING:  # `validate` only prepares: the cache rules, executors and reports load where they are used
    from ptycho_batch.engine.decisions import Decision
    from ptycho_batch.executors.base import Executor
    from ptycho_batch.runtimes.base import Runtime


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
    from ptycho_batch.engine.decisions import History, decide_all

    history = History.load(prepared.campaign_dir, exclude=prepared.run_id)
    return decide_all(prepared.plan, prepared.runtimes, history, force=force, rerun_failed=rerun_failed)


def settle_orphans(campaign_dir: Path) -> None:
    """Local runs whose supervisor died: their unfinished jobs become LOST. Called with the campaign lock held."""
    from ptycho_batch.executors.local.liveness import settle_orphan

    for run in list_runs(campaign_dir):
        if run.info().get("executor", "local") == "local" and not run.info().get("finished"):
            settle_orphan(run)


def freeze(prepared: Prepared, run: Run, executor: str) -> None:
    """The frozen campaign (validated, with --set applied), the original text, the plan, run.json."""
    write_atomic(run.dir / "campaign.source.yaml", prepared.located.path.read_text())
    frozen = prepared.campaign.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    header = "# frozen by ptybatch" + (f"; --set {prepared.overrides}" if prepared.overrides else "") + "\n"
    write_atomic(run.dir / "campaign.yaml",
                 header + yaml.dump(frozen, Dumper=SAFE_DUMPER, sort_keys=False, allow_unicode=True))
    write_atomic(run.dir / "plan.json", plan_json(prepared.plan))
    run.plan = prepared.plan  # what plan.json now holds: not read back from disk
    write_json(run.dir / "run.json", {"run_id": run.id, "campaign": prepared.plan.campaign, "executor": executor,
                                      "pid": os.getpid(), "overrides": prepared.overrides,
                                      "source": prepared.plan.source,
                                      "ptybatch": {"version": __version__, "commit": git_revision(PROJECT_ROOT)}})


def initial_states(prepared: Prepared, run: Run, decisions: dict[str, Decision]) -> dict[str, JobState]:
    states: dict[str, JobState] = {}
    for name, job in prepared.plan.jobs.items():
        decision = decisions[name]
        if decision.cached is not None:
            states[name] = decision.cached.model_copy(update={"reason": decision.reason})
            run.write_state(job.slug, states[name])
        else:  # PENDING needs no file: readers derive it from plan.json
            states[name] = planned_state(job, reason=decision.reason)
    return states


def finalize(run: Run) -> None:
    """Once every job is final: write the run's report (from the journal alone), then mark it finished
    (followers stop at that mark, so the report is there when they say where it is)."""
    from ptycho_batch.reports.inventory import write_report

    states = run.all_states()
    write_report(run.plan, run, states)
    run.update_info(finished=all(s.final for s in states.values()))


def ready_runtimes(prepared: Prepared, decisions: dict[str, Decision]) -> None:
    """Build venvs and check images for the backends that will run, here where the user sees progress
    and before the run exists (a missing image is one line, with nothing left behind)."""
    from concurrent.futures import ThreadPoolExecutor

    needed = {prepared.plan.jobs[name].backend for name, d in decisions.items() if d.cached is None}
    with ThreadPoolExecutor(thread_name_prefix="ptybatch-prepare") as pool:  # two venv builds at once
        list(pool.map(lambda backend: prepared.runtimes[backend].prepare(), sorted(needed)))


def submit(prepared: Prepared, executor: Executor, *, force: bool = False, rerun_failed: bool = False,
           on_start=lambda run, states: None) -> Run:
    """Journal a new run under the campaign lock and hand it to the executor; returns once it is launched."""
    prepared.plan.jobs = prepared.plan.jobs.built()   # decided, frozen, recorded, launched: each job read often
    executor.check(prepared.plan)
    report_dirs = {Path(job.report_dir) for job in prepared.plan.jobs.values()} | {Path(prepared.plan.summary_dir)}
    with campaign_lock(prepared.campaign_dir, prepared.run_id) as lock, \
            report_dir_locks(report_dirs, prepared.plan.campaign, prepared.run_id):
        settle_orphans(prepared.campaign_dir)
        decisions = decide(prepared, force=force, rerun_failed=rerun_failed)
        ready_runtimes(prepared, decisions)
        run = create_run(prepared.campaign_dir, prepared.run_id)
        freeze(prepared, run, executor.name)
        states = initial_states(prepared, run, decisions)
        on_start(run, states)
        if all(state.final for state in states.values()):
            finalize(run)
        else:
            executor.launch(run, prepared.runtimes, states, lock, finalize)
    return run
