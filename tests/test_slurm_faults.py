"""The SLURM executor under faults, on the real dev cluster: each job gets its own settings, a refused or
half-finished submission settles, a cancel of an array settles, time limits are the real ones, OOM is `oom`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import requires
from dev_cluster import accounting_mode, dev_cluster_dir, start_dev_cluster, start_now, wait_for
from helpers import host_campaign, ptybatch, states, write_campaign

PY = sys.executable
SLEEP = [PY, "-c", "import sys, time; time.sleep(float(sys.argv[1]))"]




def sacct_fields(job_ids: list[str], fields: str) -> dict[str, dict[str, str]]:
    """sacct's allocation records of `job_ids`: job id -> field -> value."""
    argv = ["sacct", "--noheader", "--parsable2", "--allocations", f"--jobs={','.join(job_ids)}",
            f"--format=JobID,{fields}"]
    lines = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=30).stdout.splitlines()
    names = fields.split(",")
    return {line.split("|")[0]: dict(zip(names, line.split("|")[1:])) for line in lines if line}


def dependency(job_id: str) -> str:
    shown = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True, timeout=30).stdout
    return next(word.split("=", 1)[1] for word in shown.split() if word.startswith("Dependency="))


def test_each_job_is_submitted_with_its_own_settings_and_no_hidden_limit(slurm: None, tmp_path: Path) -> None:
    requires("slurm", dev_cluster_dir() is not None, "needs the dev cluster's `urgent` partition and accounting")
    jobs = {"big": {"backend": "a", "resources": {"time": 10, "mem_gb": 0.5, "partition": "urgent", "cpus": 2},
                    "command": [*SLEEP, "4"]},
            "plain": {"backend": "a", "command": [*SLEEP, "4"]},
            "child": {"backend": "a", "needs": ["big"], "command": ["true"]},
            "other": {"backend": "a", "command": [*SLEEP, "4"]}}
    path = write_campaign(tmp_path, host_campaign(jobs))
    planned = json.loads(ptybatch("plan", str(path), "--json", cwd=tmp_path).stdout)
    assert planned["big"]["sbatch"]["partition"] == "urgent" and planned["big"]["sbatch"]["mem"] == "512M"
    assert "time" not in planned["plain"]["sbatch"] and "partition" not in planned["other"]["sbatch"]
    assert ptybatch("submit", str(path), "--executor", "slurm", "--detach", cwd=tmp_path).returncode == 0
    out = tmp_path / "reports"
    ids = {name: state["slurm_job_id"] for name, state in states(out).items()}
    assert dependency(ids["child"]).startswith(f"afterok:{ids['big']}")
    assert all(dependency(ids[name]) == "(null)" for name in ("plain", "other"))
    assert ptybatch("submit", str(path), "--executor", "slurm", cwd=tmp_path, timeout=300).returncode == 0
    records = wait_for(lambda: (lambda r: r if len(r) == 4 and all(v["Timelimit"] for v in r.values()) else None)(
        sacct_fields(list(ids.values()), "Partition,ReqMem,ReqCPUS,Timelimit")), 30, "sacct records")
    assert records[ids["big"]] == {"Partition": "urgent", "ReqMem": "512M", "ReqCPUS": "2", "Timelimit": "00:10:00"}
    for name in ("plain", "child", "other"):
        record = records[ids[name]]
        assert record["Partition"] == "debug" and record["ReqCPUS"] == "1" and record["ReqMem"] != "512M", record
        # the dev partitions have no DefaultTime and MaxTime=INFINITE, which sacct shows either way
        assert record["Timelimit"] in ("UNLIMITED", "365-00:00:00"), f"{name}: the partition's limit, not 5 min"


def test_a_job_sbatch_refuses_fails_as_submit_and_its_dependents_are_skipped(slurm: None, tmp_path: Path) -> None:
    jobs = {"bad": {"backend": "a", "resources": {"partition": "no_such_partition"}, "command": ["true"]},
            "after_bad": {"backend": "a", "needs": ["bad"], "command": ["true"]},
            "huge": {"backend": "b", "resources": {"mem_gb": 100000}, "command": ["true"]},
            "fine": {"backend": "a", "command": ["true"]}}
    path = write_campaign(tmp_path, host_campaign(jobs))
    first = ptybatch("submit", str(path), "--executor", "slurm", cwd=tmp_path, timeout=120)
    assert first.returncode == 1 and "Traceback" not in first.stderr + first.stdout, first.stderr
    final = states(tmp_path / "reports")
    assert (final["bad"]["state"], final["bad"]["failure_class"]) == ("FAILED", "submit")
    assert "Invalid partition" in final["bad"]["failure_line"] and Path(final["bad"]["red_note"]).exists()
    assert (final["huge"]["state"], final["huge"]["failure_class"]) == ("FAILED", "submit")
    assert final["after_bad"]["state"] == "SKIPPED" and final["fine"]["state"] == "COMPLETED"
    again = ptybatch("submit", str(path), "--executor", "slurm", cwd=tmp_path, timeout=120)
    assert again.returncode == 1 and "still in SLURM" not in again.stdout, again.stdout


def test_a_refused_array_is_one_red_note_its_tasks_each_failed_and_one_blocker(slurm: None, tmp_path: Path) -> None:
    """sbatch refusing an array of 50 tasks writes ONE red note (the campaign job, the task count, sbatch's
    message) that every task's FAILED (`submit`) record points at; the report lists it as one blocker."""
    jobs = {"sweep": {"backend": "a", "matrix": {"i": list(range(50))}, "resources": {"partition": "no_such_partition"},
                      "command": ["true"]},
            "after": {"backend": "a", "needs": ["sweep"], "command": ["true"]}}
    path = write_campaign(tmp_path, host_campaign(jobs))
    result = ptybatch("submit", str(path), "--executor", "slurm", cwd=tmp_path, timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr + result.stdout, result.stderr
    out = tmp_path / "reports"
    notes = list((out / "t" / "red").glob("blocked_*.md"))
    assert len(notes) == 1, notes
    text = notes[0].read_text()
    assert "`sweep`" in text and "50" in text and "Invalid partition" in text, text
    final = states(out)
    cells = [final[f"sweep[i={i}]"] for i in range(50)]
    assert {(c["state"], c["failure_class"], c["red_note"]) for c in cells} == {("FAILED", "submit", str(notes[0]))}
    assert final["after"]["state"] == "SKIPPED"
    assert ptybatch("report", str(path), cwd=tmp_path).returncode in (0, 1)
    inventory = (out / "t" / "analysis" / "artifact_inventory.md").read_text()
    blockers = inventory.split("## Blockers", 1)[1].split("\n## ", 1)[0]
    assert sum(notes[0].name in line for line in blockers.splitlines()) == 1 and "**submit** (1 occurrence)" in blockers, blockers
    assert "(50 jobs)" in blockers, blockers


def test_kill_9_while_submitting_then_the_next_submit_sends_only_the_missing_jobs(slurm: None,
                                                                                 tmp_path: Path) -> None:
    jobs = {f"j{index:02d}": {"backend": "a", "command": ["true"]} for index in range(40)}
    path = write_campaign(tmp_path, host_campaign(jobs))
    out = tmp_path / "reports"
    proc = subprocess.Popen([PY, "-m", "ptycho_batch", "submit", str(path), "--executor", "slurm"], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: True if sum(1 for s in states(out).values() if s.get("slurm_job_id")) >= 6 else None, 120,
             "six jobs submitted")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    submitted_before = sum(1 for s in states(out).values() if s.get("slurm_job_id"))
    assert submitted_before < 40, "the submitter was killed too late to test anything"
    again = ptybatch("submit", str(path), "--executor", "slurm", cwd=tmp_path, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    final = states(out)
    assert all(final[name]["state"] == "COMPLETED" and final[name]["attempt"] == 1 for name in jobs)
    run_info = json.loads(next((out / ".ptybatch" / "t").glob("*/run.json")).read_text())
    listed = subprocess.run(["sacct", "--noheader", "--parsable2", "--allocations", f"--name={run_info['slurm_job_name']}",
                             "--format=JobID"], capture_output=True, text=True, check=True, timeout=30).stdout.split()
    assert len(listed) == 40 and set(listed) == {s["slurm_job_id"] for s in final.values()}, listed
    assert len(list((out / ".ptybatch" / "t").glob("*/run.json"))) == 1


@pytest.mark.parametrize("accounting", ["dbd", "none"])
def test_cancel_of_an_array_with_queued_tasks_settles(slurm: None, tmp_path: Path, accounting: str) -> None:
    directory = dev_cluster_dir()
    requires("slurm", directory is not None, "switching accounting restarts ptybatch's own dev cluster")
    assert directory is not None
    jobs = {"sweep": {"backend": "a", "matrix": {"i": list(range(20))}, "array_parallelism": 4,
                      "command": [*SLEEP, "120"]},
            "after": {"backend": "a", "needs": ["sweep"], "command": ["true"]}}
    path = write_campaign(tmp_path, host_campaign(jobs))
    out = tmp_path / "reports"
    with accounting_mode(directory, accounting):
        follower = subprocess.Popen([PY, "-m", "ptycho_batch", "submit", str(path), "--executor", "slurm"],
                                    cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        wait_for(lambda: True if sum(1 for s in states(out).values() if s["state"] == "RUNNING") >= 4 else None,
                 120, "four tasks running")
        cancelled = ptybatch("cancel", str(path), cwd=tmp_path)
        assert cancelled.returncode == 0 and "21 job(s)" in cancelled.stdout, cancelled.stdout + cancelled.stderr
        output, _ = follower.communicate(timeout=120)
        watched = ptybatch("watch", str(path), cwd=tmp_path, timeout=60)
    final = states(out)
    assert follower.returncode == 1, output
    assert all(final[f"sweep[i={i}]"]["state"] == "CANCELLED" for i in range(20)), \
        {name: (s["state"], s.get("failure_class")) for name, s in final.items()}
    assert final["after"]["state"] in ("CANCELLED", "SKIPPED")
    assert watched.returncode == 1 and "[ptybatch]" in watched.stdout


def test_time_limit_warning_does_not_end_a_job_early(slurm: None, tmp_path: Path) -> None:
    jobs = {"fits": {"backend": "a", "resources": {"time": "00:01:00"}, "command": [*SLEEP, "40"]},
            "too_long": {"backend": "b", "resources": {"time": "00:01:00"}, "command": [*SLEEP, "120"]}}
    path = write_campaign(tmp_path, host_campaign(jobs))
    result = ptybatch("submit", str(path), "--executor", "slurm", cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    final = states(tmp_path / "reports")
    assert final["fits"]["state"] == "COMPLETED", final["fits"]
    too_long = final["too_long"]
    assert (too_long["state"], too_long["failure_class"]) == ("FAILED", "timeout")
    ran = too_long["ended"] - too_long["started"]
    assert 45 <= ran <= 70, f"stopped after {ran:.1f} s of a 60 s limit"


def test_a_job_over_its_memory_request_fails_as_oom(slurm: None, tmp_path: Path) -> None:
    requires("slurm", dev_cluster_dir() is not None, "memory enforcement is configured by start-dev-cluster.sh")
    hog = "x = bytearray(600 * 2**20)\nfor i in range(0, len(x), 4096): x[i] = 1\nimport time; time.sleep(60)"
    jobs = {"hog": {"backend": "a", "resources": {"mem_gb": 0.2}, "command": [PY, "-c", hog]}}
    path = write_campaign(tmp_path, host_campaign(jobs))
    result = ptybatch("submit", str(path), "--executor", "slurm", cwd=tmp_path, timeout=300)
    final = states(tmp_path / "reports")["hog"]
    assert result.returncode == 1 and (final["state"], final["failure_class"]) == ("FAILED", "oom"), final
    assert Path(final["red_note"]).exists() and "oom" in Path(final["red_note"]).read_text()
    argv = ["sacct", "--noheader", "--parsable2", f"--jobs={final['slurm_job_id']}.0", "--format=State"]
    wait_for(lambda: True if subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.split() ==
             ["OUT_OF_MEMORY"] else None, 30, "sacct to record the step OUT_OF_MEMORY")


def test_node_failure_is_an_attempt_and_the_requeued_job_completes(slurm: None, tmp_path: Path) -> None:
    """slurmd killed and the node set DOWN under a running job: SLURM requeues it (NODE_FAIL), then
    start-dev-cluster.sh brings slurmd back; the second attempt completes and the dependent runs."""
    directory = dev_cluster_dir()
    requires("slurm", directory is not None, "the test kills and restarts ptybatch's own dev cluster's slurmd")
    assert directory is not None
    marker = tmp_path / "first-attempt-seen"
    script = (f"import os, time\nif os.path.exists({str(marker)!r}): print('second attempt ok')\n"
              f"else:\n    open({str(marker)!r}, 'w').close(); print('working', flush=True); time.sleep(600)")
    jobs = {"victim": {"backend": "a", "command": [PY, "-c", script]},
            "after": {"backend": "a", "needs": ["victim"], "command": ["true"]}}
    path = write_campaign(tmp_path, host_campaign(jobs))
    out = tmp_path / "reports"
    assert ptybatch("submit", str(path), "--executor", "slurm", "--detach", cwd=tmp_path).returncode == 0
    wait_for(lambda: True if marker.exists() else None, 90, "the first attempt to start")
    job_id = states(out)["victim"]["slurm_job_id"]
    node = subprocess.run(["sinfo", "--noheader", "--format=%N"], capture_output=True, text=True, check=True,
                          timeout=30).stdout.strip()
    slurmd_pid = int((directory / "run" / "slurmd.pid").read_text())
    try:
        os.kill(slurmd_pid, signal.SIGKILL)
        subprocess.run(["scontrol", "update", f"NodeName={node}", "State=DOWN", "Reason=ptybatch-test"],
                       check=True, timeout=30)

        def requeued() -> dict | None:
            record = json.loads(ptybatch("status", str(path), "--json", cwd=tmp_path).stdout)["jobs"]
            return record if record["victim"]["state"] == "PENDING" and record["victim"]["attempts"] else None

        shown = wait_for(requeued, 90, "the node failure recorded as an attempt")
        assert shown["after"]["state"] == "PENDING", "a dependent waits while SLURM requeues"
    finally:
        start_dev_cluster(directory, "dbd")  # restarts the slurmd that was killed
    wait_for(lambda: True if subprocess.run(["sinfo", "--noheader", "--format=%T"], capture_output=True, text=True,
                                            timeout=30).stdout.strip() in ("idle", "mixed") else None, 60, "node up")
    start_now(job_id)
    result = ptybatch("submit", str(path), "--executor", "slurm", cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    final = states(out)
    assert final["victim"]["state"] == "COMPLETED" and final["after"]["state"] == "COMPLETED"
    attempts = final["victim"]["attempts"]
    assert len(attempts) == 2 and attempts[0]["failure_class"] == "node-fail", attempts
    assert attempts[1]["state"] == "COMPLETED"


def test_the_follow_says_when_slurm_stops_answering_and_when_it_answers_again(slurm: None, tmp_path: Path) -> None:
    directory = dev_cluster_dir()
    requires("slurm", directory is not None, "the test stops ptybatch's own dev cluster's slurmdbd")
    assert directory is not None
    flag = tmp_path / "go"
    waiter = f"import os, time\nwhile not os.path.exists({str(flag)!r}): time.sleep(0.2)\nprint('released')"
    path = write_campaign(tmp_path, host_campaign({"held": {"backend": "a", "command": [PY, "-c", waiter]}}))
    out = tmp_path / "reports"
    follower = subprocess.Popen([PY, "-m", "ptycho_batch", "submit", str(path), "--executor", "slurm"], cwd=tmp_path,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    assert follower.stderr is not None
    reader = threading.Thread(target=lambda: lines.extend(iter(follower.stderr.readline, "")), daemon=True)
    reader.start()
    try:
        wait_for(lambda: True if states(out).get("held", {}).get("state") == "RUNNING" else None, 90, "held running")
        pid = int((directory / "run" / "slurmdbd.pid").read_text())
        os.kill(pid, signal.SIGTERM)  # sacct, the poll's source, stops answering
        wait_for(lambda: True if any("unreachable, still following" in line for line in lines) else None, 90,
                 f"the follow to say SLURM is unreachable: {lines}")
        start_dev_cluster(directory, "dbd")
        wait_for(lambda: True if any("answers again" in line for line in lines) else None, 90,
                 f"the follow to say SLURM answers again: {lines}")
        flag.write_text("")
        assert follower.wait(timeout=120) == 0, lines
    finally:
        flag.write_text("")
        start_dev_cluster(directory, "dbd")
        if follower.poll() is None:
            follower.kill()
    assert states(out)["held"]["state"] == "COMPLETED"
