"""The SLURM executor on the real dev cluster: the same campaigns as locally, through submitit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import requires
from dev_cluster import accounting_mode, dev_cluster_dir, start_now, wait_for
from helpers import host_campaign, ptybatch, states, write_campaign

from ptycho_batch.executors.slurm.cluster import squeue_states

PY = sys.executable




def test_chain_array_failure_and_notes_on_the_cluster(slurm: None, tmp_path: Path) -> None:
    jobs = {
        "first": {"backend": "a", "command": [PY, "-c", "open('x.txt','w').write('X'); print('first ok')"],
                  "artifacts": {"x": {"path": "x.txt", "digest": "sha1", "required": True}}},
        "check": {"backend": "a", "stage": "test", "needs": ["first"],
                  "command": ["cat", "{jobs.first.artifacts.x}"]},
        "sweep": {"backend": "a", "needs": ["first"], "matrix": {"i": list(range(50))},
                  "command": [PY, "-c", "print('task {i}')"], "array_parallelism": 8},
        "broken": {"backend": "b", "command": [PY, "-c", "import not_installed_anywhere"]},
        "after_broken": {"backend": "b", "needs": ["broken"], "command": ["true"]},
        "after_after": {"backend": "b", "needs": ["after_broken"], "command": ["true"]},
    }
    path = write_campaign(tmp_path, host_campaign(jobs))
    result = ptybatch("submit", str(path), "--executor", "slurm", cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    out = tmp_path / "reports"
    final = states(out)
    assert all(final[f"sweep[i={i}]"]["state"] == "COMPLETED" for i in range(50))
    assert len({final[f"sweep[i={i}]"]["slurm_job_id"].split("_")[0] for i in range(50)}) == 1, "one array"
    assert (out / "t" / "cli" / "sweep_i_49.log").read_text() == "task 49\n"
    assert final["check"]["state"] == "COMPLETED" and (out / "t" / "green" / "check.log").read_text() == "X"
    assert final["broken"]["failure_class"] == "import" and Path(final["broken"]["red_note"]).exists()
    assert final["after_broken"]["state"] == final["after_after"]["state"] == "SKIPPED"
    assert final["after_broken"]["reason"] == "upstream broken FAILED (import)"
    leftovers = squeue_states([final[n]["slurm_job_id"] for n in ("after_broken", "after_after")])
    assert all(s.state != "PENDING" for s in leftovers.values()), f"dependents left pending: {leftovers}"
    run_info = json.loads(next((out / ".ptybatch" / "t").glob("*/run.json")).read_text())
    assert run_info["sbatch_calls"] == 6 and run_info["slurm_job_name"].startswith("ptybatch_t_")
    assert list((next((out / ".ptybatch" / "t").glob("*/run.json")).parent / "slurm").iterdir()), \
        "submitit's files live in the run directory"
    assert not list(tmp_path.glob("*.out")) and not (tmp_path / "submitit").exists()


def test_timeout_requeue_and_scancel(slurm: None, tmp_path: Path) -> None:
    marker = tmp_path / "first-attempt-seen"
    requeue_script = (f"import os, time\nif os.path.exists({str(marker)!r}): print('second attempt ok')\n"
                      f"else:\n    open({str(marker)!r}, 'w').close(); print('sleeping', flush=True); time.sleep(600)")
    jobs = {
        "slow": {"backend": "a", "resources": {"time": 1}, "command": [PY, "-c", "import time; time.sleep(600)"]},
        "requeued": {"backend": "a", "resources": {"time": 1}, "requeue": 1, "command": [PY, "-c", requeue_script]},
        "victim": {"backend": "b", "command": [PY, "-c", "import time; print('up', flush=True); time.sleep(600)"]},
    }
    path = write_campaign(tmp_path, host_campaign(jobs))
    out = tmp_path / "reports"
    detached = ptybatch("submit", str(path), "--executor", "slurm", "--detach", cwd=tmp_path)
    assert detached.returncode == 0 and "sbatch call" in detached.stdout
    victim = wait_for(lambda: states(out).get("victim") if states(out).get("victim", {}).get("state") == "RUNNING"
                      else None, 60, "victim running")
    subprocess.run(["scancel", victim["slurm_job_id"]], check=True, timeout=30)

    def requeued_pending() -> dict | None:
        record = json.loads(ptybatch("status", str(path), "--json", cwd=tmp_path).stdout)["jobs"]["requeued"]
        return record if record["attempt"] == 1 and record["state"] == "PENDING" else None

    record = wait_for(requeued_pending, 150, "the requeued job to be pending again")
    job_id = record["slurm_job_id"]
    wait_for(lambda: True if squeue_states([job_id]).get(job_id, None) is not None and
             squeue_states([job_id])[job_id].state == "PENDING" else None, 60, "SLURM to hold the requeued job")
    start_now(job_id)  # SLURM holds a requeued job for 120 s before it may start again
    follow = ptybatch("submit", str(path), "--executor", "slurm", cwd=tmp_path, timeout=300)
    assert "still in SLURM: following it" in follow.stdout
    final = states(out)
    assert final["slow"]["state"] == "FAILED" and final["slow"]["failure_class"] == "timeout"
    assert Path(final["slow"]["red_note"]).exists()
    assert final["requeued"]["state"] == "COMPLETED"
    assert [(a["state"], a["failure_class"]) for a in final["requeued"]["attempts"]] == [
        ("FAILED", "timeout"), ("COMPLETED", None)]
    assert final["victim"]["state"] == "CANCELLED" and Path(final["victim"]["red_note"]).exists()
    assert len(list((out / ".ptybatch" / "t").glob("*/run.json"))) == 1, "following must not resubmit"


def test_kill_9_of_the_submitter_then_reattach(slurm: None, tmp_path: Path) -> None:
    flag = tmp_path / "go"
    wait_flag = f"import os, time\nwhile not os.path.exists({str(flag)!r}): time.sleep(0.2)\nprint('released')"
    jobs = {"first": {"backend": "a", "command": [PY, "-c", "print('done')"]},
            "held": {"backend": "a", "needs": ["first"], "command": [PY, "-c", wait_flag]},
            "last": {"backend": "a", "needs": ["held"], "command": [PY, "-c", "print('last')"]}}
    path = write_campaign(tmp_path, host_campaign(jobs))
    out = tmp_path / "reports"
    proc = subprocess.Popen([PY, "-m", "ptycho_batch", "submit", str(path), "--executor", "slurm"], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: True if states(out).get("held", {}).get("state") == "RUNNING" else None, 90, "held running")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    shown = json.loads(ptybatch("status", str(path), "--json", cwd=tmp_path).stdout)["jobs"]
    assert shown["first"]["state"] == "COMPLETED" and shown["held"]["state"] == "RUNNING"
    assert shown["last"]["state"] == "PENDING"
    flag.write_text("")
    again = ptybatch("submit", str(path), "--executor", "slurm", cwd=tmp_path, timeout=300)
    assert again.returncode == 0 and "following it" in again.stdout
    final = states(out)
    assert [final[n]["state"] for n in ("first", "held", "last")] == ["COMPLETED"] * 3
    assert final["first"]["attempt"] == 1 and len(list((out / ".ptybatch" / "t").glob("*/run.json"))) == 1


def test_without_accounting_the_poller_never_hangs(slurm: None, tmp_path: Path) -> None:
    directory = dev_cluster_dir()
    requires("slurm", directory is not None, "the sacct-less test restarts ptybatch's own dev cluster")
    jobs = {"ok": {"backend": "a", "command": [PY, "-c", "print('fine')"]},
            "killed": {"backend": "a", "command": [PY, "-c", "import time; print('up', flush=True); time.sleep(600)"]}}
    path = write_campaign(tmp_path, host_campaign(jobs))
    out = tmp_path / "reports"
    with accounting_mode(directory, "none"):
        proc = subprocess.Popen([PY, "-m", "ptycho_batch", "submit", str(path), "--executor", "slurm"],
                                cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        killed = wait_for(lambda: states(out).get("killed") if states(out).get("killed", {}).get("state") ==
                          "RUNNING" else None, 90, "job running")
        subprocess.run(["scancel", killed["slurm_job_id"]], check=True, timeout=30)
        started = time.monotonic()
        output, _ = proc.communicate(timeout=120)
        assert time.monotonic() - started < 60, "the poller must not wait for a result that never comes"
    final = states(out)
    assert final["ok"]["state"] == "COMPLETED", output
    killed = final["killed"]
    # squeue may still show it CANCELLED for a moment; once it has left the queue it is recorded as lost
    assert (killed["state"], killed["failure_class"]) in {("CANCELLED", "cancelled"), ("FAILED", "lost")}, killed
    assert Path(killed["red_note"]).exists()


def test_arrays_split_at_max_array_size(slurm: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dev_cluster import start_dev_cluster

    directory = dev_cluster_dir()
    requires("slurm", directory is not None, "the split test restarts ptybatch's own dev cluster")
    jobs = {"sweep": {"backend": "a", "matrix": {"i": list(range(25))}, "command": [PY, "-c", "print({i})"]}}
    path = write_campaign(tmp_path, host_campaign(jobs))
    monkeypatch.setenv("PTYBATCH_SLURM_MAX_ARRAY_SIZE", "10")
    start_dev_cluster(directory, "dbd")
    try:
        result = ptybatch("submit", str(path), "--executor", "slurm", cwd=tmp_path, timeout=300)
    finally:
        monkeypatch.delenv("PTYBATCH_SLURM_MAX_ARRAY_SIZE")
        start_dev_cluster(directory, "dbd")
    assert result.returncode == 0, result.stdout + result.stderr
    final = states(tmp_path / "reports")
    assert all(final[f"sweep[i={i}]"]["state"] == "COMPLETED" for i in range(25))
    arrays = {final[f"sweep[i={i}]"]["slurm_job_id"].split("_")[0] for i in range(25)}
    assert len(arrays) == 3, f"25 tasks with MaxArraySize=10 make 3 arrays, got {arrays}"


def test_preempted_job_is_requeued_with_both_attempts(slurm: None, tmp_path: Path) -> None:
    """The dev cluster's `urgent` partition preempts `debug`: the job's second attempt completes."""
    marker = tmp_path / "first-attempt-seen"
    script = (f"import os, time\nif os.path.exists({str(marker)!r}): print('second attempt ok')\n"
              f"else:\n    open({str(marker)!r}, 'w').close(); print('working', flush=True); time.sleep(600)")
    jobs = {"victim": {"backend": "a", "resources": {"partition": "debug", "sbatch": {"exclusive": True}},
                       "command": [PY, "-c", script]}}
    path = write_campaign(tmp_path, host_campaign(jobs))
    out = tmp_path / "reports"
    assert ptybatch("submit", str(path), "--executor", "slurm", "--detach", cwd=tmp_path).returncode == 0
    wait_for(lambda: True if marker.exists() else None, 90, "the first attempt to start")
    subprocess.run(["sbatch", "--partition=urgent", "--exclusive", f"--output={tmp_path}/urgent.out", "--wrap",
                    "true"], check=True, timeout=30)

    def requeued() -> dict | None:
        record = json.loads(ptybatch("status", str(path), "--json", cwd=tmp_path).stdout)["jobs"]["victim"]
        return record if record["state"] == "PENDING" and record["attempts"] else None

    record = wait_for(requeued, 90, "the preempted job to be pending again")
    job_id = record["slurm_job_id"]
    wait_for(lambda: True if squeue_states([job_id]).get(job_id) is not None and
             squeue_states([job_id])[job_id].state == "PENDING" else None, 60, "SLURM to hold the requeued job")
    start_now(job_id)
    assert ptybatch("submit", str(path), "--executor", "slurm", cwd=tmp_path, timeout=300).returncode == 0
    final = states(out)["victim"]
    assert final["state"] == "COMPLETED" and final["attempt"] == 2
    assert final["attempts"][0]["state"] == "PENDING" and "preempted" in final["attempts"][0]["reason"]
    assert "second attempt ok" in (out / "t" / "cli" / "victim.attempt2.log").read_text()
