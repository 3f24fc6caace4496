"""Submission records on the real dev cluster: a 1,000-task array leaves a constant number of journal files,
every reader folds them into per-task states, and a task's own record wins over its array's record."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from dev_cluster import wait_for
from helpers import host_campaign, ptybatch, states, write_campaign

from ptycho_batch.executors.slurm import poll
from ptycho_batch.executors.slurm.cluster import sacct_states
from ptycho_batch.journal.reader import JournalCache
from ptycho_batch.journal.store import JournalStates, Run

TASKS = 1000


def journal_files(run_dir: Path) -> list[str]:
    """Every file of the run's journal, less submitit's own folder (a pickle path per task: its baseline)."""
    return sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*")
                  if p.is_file() and "submitit" not in p.relative_to(run_dir).parts)


def test_a_1000_task_array_leaves_one_record_and_readers_fold_it(slurm: None, tmp_path: Path) -> None:
    jobs = {"sweep": {"backend": "a", "matrix": {"i": list(range(TASKS))}, "command": ["true"],
                      "array_parallelism": 4, "resources": {"sbatch": {"hold": True}}}}
    path = write_campaign(tmp_path, host_campaign(jobs))
    submitted = ptybatch("submit", str(path), "--executor", "slurm", "--detach", cwd=tmp_path, timeout=300)
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    out = tmp_path / "reports"
    run = Run(next((out / ".ptybatch" / "t").glob("*/run.json")).parent)
    files = journal_files(run.dir)
    records = [name for name in files if name.startswith("submitted/")]
    assert len(records) == 1 and not any(name.startswith("jobs/") for name in files), files
    assert len(files) <= 6, files  # campaign.yaml, campaign.source.yaml, plan.json, run.json, the record
    array = json.loads((run.dir / records[0]).read_text())["job_id"]
    pickles = list((run.dir / "slurm" / "submitit").glob(f"{array}_*_submitted.pkl"))
    assert len(pickles) == TASKS and len({p.stat().st_ino for p in pickles}) == 1  # one file, a link per task
    try:
        shown = json.loads(ptybatch("status", str(run.dir), "--json", cwd=tmp_path).stdout)["jobs"]
        assert {(s["state"], s["slurm_job_id"]) for s in shown.values()} == \
            {("PENDING", f"{array}_{i}") for i in range(TASKS)}
        assert all(shown[f"sweep[i={i}]"]["slurm_job_id"] == f"{array}_{i}" for i in (0, 7, TASKS - 1))
        table = ptybatch("status", str(run.dir), cwd=tmp_path).stdout
        assert f"sweep [{TASKS} of {TASKS} cells]" in table and "PENDING" in table  # one row, not 1,000
        viewer = JournalCache(run)
        viewer.poll()
        assert all(viewer.states[f"sweep[i={i}]"].slurm_job_id == f"{array}_{i}" for i in range(TASKS))

        # a poll of the held array builds no record a queued task (once sacct lists them all: before that it
        # finds none of them, and looks at each)
        wait_for(lambda: True if len(sacct_states([array])) == TASKS else None, 120, "sacct to list the tasks")
        built: list[str] = []
        lookup = JournalStates.__getitem__
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(JournalStates, "__getitem__", lambda self, name: built.append(name) or lookup(self, name))
            poll._refresh(run, run.plan)
        assert built == [], f"the poll built {len(built)} records of queued tasks"
        assert not (run.dir / "jobs").exists() or not list((run.dir / "jobs").iterdir())

        subprocess.run(["scontrol", "release", f"{array}_7"], check=True, timeout=30)  # only this task runs
        wait_for(lambda: True if states(out)["sweep[i=7]"]["state"] == "COMPLETED" else None, 120, "task 7")
        assert (run.dir / "jobs" / run.plan.jobs["sweep[i=7]"].slug / "state.json").exists()
        viewer.poll()
        assert viewer.states["sweep[i=7]"].state == "COMPLETED"  # its own record wins
        assert viewer.states["sweep[i=8]"].state == "PENDING" and viewer.states["sweep[i=8]"].reason == "submitted"
    finally:
        cancelled = ptybatch("cancel", str(run.dir), cwd=tmp_path, timeout=300)
    assert cancelled.returncode == 0, cancelled.stdout + cancelled.stderr

    def settled() -> dict[str, dict] | None:
        ptybatch("status", str(run.dir), cwd=tmp_path)  # a reader's poll records SLURM's verdicts
        now = states(out)
        return now if all(state["state"] != "PENDING" for state in now.values()) else None

    final = wait_for(settled, 120, "the cancel to settle")
    assert final["sweep[i=7]"]["state"] == "COMPLETED"
    assert all(final[f"sweep[i={i}]"]["state"] == "CANCELLED" for i in range(TASKS) if i != 7)
