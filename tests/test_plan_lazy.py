"""The lazy plan (PlanJobs) and the lazy journal states (JournalStates): each must read exactly as the eager
data it replaces, job for job, while building a job or a record only when it is read."""

from __future__ import annotations

import io
import json
import time
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from helpers import host_campaign, write_campaign

from ptycho_batch.campaign.plan import Plan, load_plan, plan_json
from ptycho_batch.engine.session import freeze, prepare
from ptycho_batch.journal.records import JobState, State, Submission
from ptycho_batch.journal.store import SUBMITTED_REASON, create_run

JOBS = {"prep": {"backend": "a", "command": ["echo", "prep"], "artifacts": {"model": {"path": "m.txt"}}},
        "train": {"backend": "a", "needs": ["prep"], "matrix": {"seed": [1, 2, 3], "lr": [0.1, 1]},
                  "command": "echo {seed} {lr} {jobs.prep.artifacts.model} > o.txt", "shell": True,
                  "log": "train/{seed}_{lr}.log", "env": {"SEED": "{seed}"},
                  "artifacts": {"out": {"path": "o.txt", "as": "o_{seed}_{lr}.txt"}},
                  "fallback": [{"when": {"exit_code": 3}, "params": {"lr": 0.01}, "note": "smaller lr"}]},
        "after": {"backend": "b", "needs": ["train"], "command": ["echo", "{workdir}"]}}


def test_a_lazy_plan_reads_as_the_eager_one_job_for_job(tmp_path: Path) -> None:
    plan = prepare(write_campaign(tmp_path, host_campaign(JOBS))).plan
    eager = Plan.model_validate_json(plan.model_dump_json())   # every job a full record (an older plan.json)
    loaded = load_plan(b"".join(plan_json(plan)))               # cells as their own fields
    assert list(plan.jobs) == list(eager.jobs) == list(loaded.jobs) and len(plan.jobs) == 8
    for jobs in (plan.jobs, loaded.jobs):
        kept = {members[0] for members in jobs.groups().values()}   # a matrix job's first cell, whole
        for name in eager.jobs:
            job = jobs[name]
            assert job == eager.jobs[name] and (job is jobs[name]) == (name in kept)   # the others: built on access
            assert jobs.slug(name) == job.slug and jobs.head(name).base == job.base
            assert (jobs.head(name).backend, jobs.head(name).stage) == (job.backend, job.stage)
        assert jobs.groups() == {"prep": ("prep",), "train": tuple(n for n in eager.jobs if n.startswith("train[")),
                                 "after": ("after",)}
    cell = plan.jobs["train[seed=2,lr=1]"]
    assert cell.argv[-1] == f"echo 2 1 {plan.jobs['prep'].artifacts['model'].dest} > o.txt"
    assert cell.env == {"SEED": "2"} and cell.fallbacks[0].params == {"seed": 2, "lr": 0.01}
    assert cell.log.endswith("/cli/train/2_1.log") and cell.artifacts["out"].dest.endswith("/analysis/o_2_1.txt")
    assert loaded == plan == eager and "train[seed=9,lr=1]" not in plan.jobs


def test_journal_states_fold_records_without_building_them(tmp_path: Path) -> None:
    """What `status` reads: an array's tasks from its submission record, a task's own record winning, jobs
    nobody submitted as planned; state_of agrees with the records, and the whole equals all_states."""
    prepared = prepare(write_campaign(tmp_path, host_campaign(JOBS)))
    run = create_run(prepared.campaign_dir, prepared.run_id)
    freeze(prepared, run, "slurm")
    cells = [name for name in prepared.plan.jobs if name.startswith("train[")]
    run.write_submission("array", Submission(names=cells, job_id="77", array=True, submitted=5.0))
    own = prepared.plan.jobs[cells[1]]
    run.write_state(own.slug, JobState(name=own.name, state=State.RUNNING, backend="a", stage=own.stage,
                                       attempt=1, started=time.time(), slurm_job_id="77_1"))
    states = run.journal_states()
    assert list(states) == list(prepared.plan.jobs) and len(states) == 8
    assert states[cells[0]] == JobState(name=cells[0], backend="a", stage=own.stage, slurm_job_id="77_0",
                                        reason=SUBMITTED_REASON, updated=5.0)
    assert states[cells[1]].state == State.RUNNING and states[cells[1]].slurm_job_id == "77_1"
    assert states["after"] == JobState(name="after", backend="b", stage=prepared.plan.jobs["after"].stage)
    assert all(states.state_of(name) == states[name].state for name in states)
    assert dict(states) == run.all_states()
    assert set(run.read_states()) == set(cells) and run.submitted_states()[cells[2]].slurm_job_id == "77_2"
    eager = {name: s.slurm_job_id for name, s in run.read_states().items() if not s.final and s.slurm_job_id}
    assert states.live_ids() == eager and len(eager) == len(cells)   # what the SLURM poll asks about
    states[cells[2]] = done = JobState(name=cells[2], state=State.COMPLETED, backend="a", stage=own.stage)
    assert states[cells[2]] is done and states.state_of(cells[2]) == State.COMPLETED and cells[2] not in states.live_ids()


def test_plan_json_streams_the_same_document() -> None:
    """`plan --json` is written a job at a time: the same text json.dumps(indent=2) makes of the whole."""
    from ptycho_batch.cli.main import _print_json_object

    for items in ({}, {"a": {"run": True, "argv": ["x", "y"], "env": {}}, "b[i=1]": {"n": [1, {"k": None}]}}):
        out = io.StringIO()
        with redirect_stdout(out):
            _print_json_object(iter(items.items()))
        assert out.getvalue() == json.dumps(items, indent=2) + "\n"


def test_skips_over_lazy_states_build_only_the_records_they_change(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """What the SLURM poll does twice a poll: with nothing failed, no record of a queued job is built (a fan-in
    of a 10,000-task array reads no task's); with an upstream failed, exactly the jobs it skips are."""
    from ptycho_batch.executors.outcomes import propagate_skips
    from ptycho_batch.journal.store import JournalStates

    prepared = prepare(write_campaign(tmp_path, host_campaign(JOBS)))
    run = create_run(prepared.campaign_dir, prepared.run_id)
    freeze(prepared, run, "slurm")
    plan = prepared.plan
    cells = [name for name in plan.jobs if name.startswith("train[")]
    run.write_submission("array", Submission(names=cells, job_id="77", array=True, submitted=5.0))
    built: list[str] = []
    lookup = JournalStates.__getitem__
    monkeypatch.setattr(JournalStates, "__getitem__", lambda self, name: built.append(name) or lookup(self, name))
    prep = plan.jobs["prep"]
    run.write_state(prep.slug, JobState(name="prep", state=State.RUNNING, backend="a", stage=prep.stage))
    assert propagate_skips(run, plan, run.journal_states()) == [] and built == []
    run.write_state(prep.slug, JobState(name="prep", state=State.FAILED, backend="a", stage=prep.stage))
    skipped = propagate_skips(run, plan, run.journal_states())
    assert [s.name for s in skipped] == [*cells, "after"] and sorted(built) == sorted([*cells, "after"])
    assert {s.slurm_job_id for s in skipped[:-1]} == {f"77_{i}" for i in range(len(cells))}   # for the scancel
    assert all(run.journal_states().state_of(name) == State.SKIPPED for name in [*cells, "after"])
