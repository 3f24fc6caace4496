"""Evidence is never silently overwritten: one writer per report dir, and `report RUN` rebuilds a run's
inventory from its journal."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from helpers import ptybatch, write_campaign


def _campaign(name: str, seconds: int) -> dict:
    return {"campaign": name, "backends": {"a": {"runtime": "host", "report_dir": "shared"}},
            "jobs": {"train": {"backend": "a", "command": ["sh", "-c", f"echo {name}; sleep {seconds}"],
                               "log": "train.log"}}}


def test_two_campaigns_on_one_report_dir(tmp_path: Path) -> None:
    first = write_campaign(tmp_path, _campaign("alpha", 30), "alpha.yaml")
    second = write_campaign(tmp_path, _campaign("beta", 0), "beta.yaml")
    assert ptybatch("submit", "--detach", str(first), cwd=tmp_path).returncode == 0
    try:
        busy = ptybatch("submit", str(second), cwd=tmp_path)
        assert busy.returncode == 3, busy.stdout + busy.stderr
        assert "report dir" in busy.stderr and "'alpha'" in busy.stderr and "?" not in busy.stderr, busy.stderr
        assert "beta" not in (tmp_path / "reports" / "shared" / "cli" / "train.log").read_text()
    finally:
        ptybatch("cancel", str(first), cwd=tmp_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:   # the writer lock goes with the run
        done = ptybatch("submit", str(second), cwd=tmp_path)
        if done.returncode != 3:
            break
        time.sleep(0.5)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads((tmp_path / "reports" / "shared" / ".ptybatch-writer.json").read_text())["campaign"] == "beta"


def test_second_run_with_other_params_keeps_first_runs_evidence(tmp_path: Path) -> None:
    script = ("import sys; g = int(sys.argv[1]); [print('loss:', 1.0 / (e + g)) for e in range(3)]; "
              "open('model.txt', 'w').write('model %d' % g); sys.exit(0 if g == 1 else 3)")
    campaign = write_campaign(tmp_path, {
        "campaign": "t", "backends": {"a": {"runtime": "host"}}, "defaults": {"params": {"gridsize": 1}},
        "jobs": {"train": {"backend": "a", "stage": "train", "command": ["python3", "-c", script, "{gridsize}"],
                           "observe": {"loss": r"loss: ([0-9.]+)"},
                           "artifacts": {"model": {"path": "model.txt", "digest": "sha1"}}}}})
    report = tmp_path / "reports" / "t"
    first = ptybatch("submit", str(campaign), cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    run_id = json.loads(ptybatch("status", str(campaign), "--json", cwd=tmp_path).stdout)["run_id"]
    inventory = json.loads((report / "analysis" / "artifact_inventory.json").read_text())
    files = {p.relative_to(report): p.read_bytes() for p in report.rglob("*") if p.is_file()
             and not p.name.startswith(("artifact_inventory", "loss_curves", "report.html", "."))
             and ".evidence" not in p.parts}

    assert {"cli/train.log", "analysis/model.txt", "analysis/train.metrics.json"} <= {str(f) for f in files}

    second = ptybatch("submit", str(campaign), "--set", "gridsize=2", cwd=tmp_path)
    assert second.returncode == 1, second.stdout + second.stderr
    history = report / "history" / run_id
    for relative, content in files.items():   # every file of the first run, intact, under history/<run>/
        assert (history / relative).read_bytes() == content, relative

    again = ptybatch("report", run_id, "--out", str(tmp_path / "reports"), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    rebuilt = json.loads((report / "analysis" / "artifact_inventory.json").read_text())
    moved = json.dumps(rebuilt).replace(f"history/{run_id}/", "")
    assert json.loads(moved) == inventory, "report <first run> rebuilds what it wrote the first time"
    assert "loss_curves" in (report / "analysis" / "artifact_inventory.md").read_text()


def test_jobs_with_the_same_env_and_provenance_share_one_copy_of_each_record(tmp_path: Path) -> None:
    """Records alike are hard links to one copy in the run's records/ (a file costs an inode, a link does not);
    a job whose env differs gets its own. Each reads as a whole record of its job."""
    campaign = write_campaign(tmp_path, {
        "campaign": "t", "backends": {"a": {"runtime": "host"}},
        "jobs": {"same": {"backend": "a", "matrix": {"i": [1, 2, 3]}, "command": ["true"]},
                 "other": {"backend": "a", "command": ["true"], "env": {"MODE": "other"}}}})
    assert ptybatch("submit", str(campaign), cwd=tmp_path).returncode == 0
    analysis = tmp_path / "reports" / "t" / "analysis"
    envs = {p.name: p for p in analysis.glob("*.env.json")}
    same = [envs[f"same_i_{i}.env.json"].stat() for i in (1, 2, 3)]
    assert len({s.st_ino for s in same}) == 1 and same[0].st_nlink == 4   # three jobs + the run's copy
    assert envs["other.env.json"].stat().st_ino != same[0].st_ino
    assert json.loads(envs["other.env.json"].read_text())["env"]["MODE"] == "other"
    assert "MODE" not in json.loads(envs["same_i_1.env.json"].read_text())["env"]
    provenance = [json.loads(p.read_text()) for p in analysis.glob("*.provenance.json")]
    assert len(provenance) == 4 and all(p["runtime"] == "host" and p["probe"]["python"] for p in provenance)
    assert len({p.stat().st_ino for p in analysis.glob("*.provenance.json")}) == 1
    assert not list(analysis.glob(".*.tmp"))


def test_a_record_that_cannot_be_linked_is_written_in_full(tmp_path: Path) -> None:
    from ptycho_batch.util.fsio import write_linked

    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs /dev/shm on another file system than the test's tmp dir")
    store = shm / f"ptybatch-test-{time.time_ns()}"
    try:
        record = tmp_path / "job.env.json"
        write_linked(record, '{"env": {}}\n', store)
        write_linked(record, '{"env": {"A": "1"}}\n', store)
        assert record.read_text() == '{"env": {"A": "1"}}\n' and record.stat().st_nlink == 1
        assert [p.name for p in tmp_path.iterdir()] == ["job.env.json"]
    finally:
        for path in store.glob("*"):
            path.unlink()
        store.rmdir()


def test_manifests_of_one_run_are_links_to_one_log_and_older_manifests_still_count(tmp_path: Path) -> None:
    """A job's manifest is a link to its process's manifest log (no inode per job); a manifest of one job,
    as older runs wrote it, still sends that run's files to history; a line cut short is skipped."""
    from ptycho_batch.campaign.plan import PlannedJob
    from ptycho_batch.node.evidence import recorded

    script = "import sys; open('out.txt', 'w').write(sys.argv[1])"
    body = {"campaign": "t", "backends": {"a": {"runtime": "host"}}, "defaults": {"params": {"v": 1}},
            "jobs": {"j": {"backend": "a", "matrix": {"i": [1, 2]}, "command": ["python3", "-c", script, "{v}{i}"],
                           "artifacts": {"out": {"path": "out.txt", "as": "out_{i}.txt"}}}}}
    campaign = write_campaign(tmp_path, body)
    assert ptybatch("submit", str(campaign), cwd=tmp_path).returncode == 0
    report = tmp_path / "reports" / "t"
    manifests = sorted((report / ".evidence").glob("*.json"))
    assert [m.name for m in manifests] == ["j_i_1.json", "j_i_2.json"]
    assert len({m.stat().st_ino for m in manifests}) == 1 and manifests[0].stat().st_nlink == 3
    log = next((report / ".evidence").glob("*.jsonl"))
    with open(log, "a") as handle:
        handle.write('{"run_dir": "/cut-sh')   # a crash while appending
    jobs = {i: PlannedJob.model_construct(slug=f"j_i_{i}", report_dir=str(report)) for i in (1, 2)}
    first = {i: recorded(jobs[i]) for i in (1, 2)}
    assert all(entry is not None and entry["slug"] == f"j_i_{i}" for i, entry in first.items())
    assert str(report / "analysis" / "out_2.txt") in first[2]["files"]

    older = report / ".evidence" / "j_i_2.json"
    older.unlink()
    older.write_text(json.dumps(first[2], indent=2) + "\n")   # the one-job manifest of earlier versions
    assert ptybatch("submit", str(campaign), "--set", "v=2", cwd=tmp_path).returncode == 0
    history = report / "history" / first[1]["run_id"]
    assert (history / "analysis" / "out_1.txt").read_text() == "11"
    assert (history / "analysis" / "out_2.txt").read_text() == "12"
    assert (report / "analysis" / "out_2.txt").read_text() == "22"
