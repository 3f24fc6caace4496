"""`status` of an array run read from its journal alone (no cluster): a matrix job known from its submission
record and a few records of its own folds into one row per state, `--json` lists every task, and a run whose
plan.json was written the older way (one full record a job) shows exactly the same."""

from __future__ import annotations

import json
import time
from pathlib import Path

from helpers import host_campaign, ptybatch, write_campaign

from ptycho_batch.campaign.plan import CELL_OF, load_plan
from ptycho_batch.engine.session import freeze, prepare
from ptycho_batch.journal.records import JobState, State, Submission
from ptycho_batch.journal.store import create_run

CELLS = 60   # above views.FOLD_CELLS: folded


def test_status_of_an_array_run_folds_lists_everything_and_reads_old_plans_alike(tmp_path: Path) -> None:
    jobs = {"prep": {"backend": "a", "command": ["true"]},
            "sweep": {"backend": "a", "needs": ["prep"], "matrix": {"i": list(range(CELLS))},
                      "command": ["echo", "{i}"]}}
    prepared = prepare(write_campaign(tmp_path, host_campaign(jobs)))
    run = create_run(prepared.campaign_dir, prepared.run_id)
    freeze(prepared, run, "slurm")
    names = [name for name in prepared.plan.jobs if name != "prep"]
    run.write_submission("array", Submission(names=names, job_id="900", array=True, submitted=time.time()))
    plan = prepared.plan
    run.write_state("prep", JobState(name="prep", state=State.COMPLETED, backend="a", stage=plan.jobs["prep"].stage,
                                     attempt=1, started=1.0, ended=2.0))
    for index, state in ((3, State.RUNNING), (5, State.FAILED)):
        job = plan.jobs[names[index]]
        run.write_state(job.slug, JobState(name=job.name, state=state, backend="a", stage=job.stage, attempt=1,
                                           started=1.0, slurm_job_id=f"900_{index}", failure_line="boom"))
    run.update_info(finished=time.time())
    assert CELL_OF in (run.dir / "plan.json").read_text()   # written compact

    def shown() -> tuple[str, dict[str, dict[str, object]]]:
        table = ptybatch("status", str(run.dir), cwd=tmp_path)
        listed = ptybatch("status", str(run.dir), "--json", cwd=tmp_path)
        assert table.returncode == 0 and listed.returncode == 0, table.stderr + listed.stderr
        return table.stdout, json.loads(listed.stdout)["jobs"]

    table, states = shown()
    assert f"sweep [{CELLS - 2} of {CELLS} cells]" in table and f"sweep [1 of {CELLS} cells]" in table
    assert table.count("sweep [") == 3 and "RUNNING" in table and "FAILED" in table and "prep" in table
    assert list(states) == list(plan.jobs) and states["prep"]["state"] == State.COMPLETED
    assert states[names[5]]["state"] == State.FAILED and states[names[3]]["slurm_job_id"] == "900_3"
    assert all(states[name]["state"] == State.PENDING and states[name]["slurm_job_id"] == f"900_{index}"
               for index, name in enumerate(names) if index not in (3, 5))

    (run.dir / "plan.json").write_text(load_plan((run.dir / "plan.json").read_bytes()).model_dump_json(indent=1))
    old_table, old_states = shown()
    assert old_table == table and old_states == states
