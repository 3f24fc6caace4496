"""The local run supervisor: a run outlives its terminal, and a dead supervisor never leaves a run RUNNING.

Real `ptybatch` processes and real jobs (`python -c ...`); the submitter is killed with SIGKILL or SIGHUP at
random moments, the supervisor with SIGKILL.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from helpers import host_campaign, ptybatch, write_campaign

PY = sys.executable
FINAL = {"COMPLETED", "FAILED", "SKIPPED", "CANCELLED", "LOST"}


def _job(needs: list[str], seconds: float) -> dict:
    """A job that records its pid (to check later that nothing runs unrecorded) and sleeps a little."""
    code = ("import os, time\nopen(os.path.join(os.environ['PIDS'], str(os.getpid())), 'w').close()\n"
            f"time.sleep({seconds})\nprint('done')")
    return {"backend": "a", "needs": needs, "command": [PY, "-c", code], "pass_env": ["PIDS"]}


DAG = {"a": _job([], 0.4), "b": _job(["a"], 0.6), "c": _job(["a"], 0.3), "d": _job(["b", "c"], 0.3)}


def runs_of(out: Path) -> list[Path]:
    return sorted(p.parent for p in (out / ".ptybatch" / "t").glob("*/run.json"))


def records(run_dir: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in run_dir.glob("jobs/*/state.json")}


def wait_until(predicate, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def finished(run_dir: Path) -> bool:
    return bool(json.loads((run_dir / "run.json").read_text()).get("finished"))


def test_killing_the_submitter_at_random_moments_loses_nothing(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    env = {**os.environ, "PIDS": str(pids)}
    path = write_campaign(tmp_path, host_campaign(DAG))
    out = tmp_path / "reports"
    rng = random.Random(10)
    for attempt in range(12):
        proc = subprocess.Popen([PY, "-m", "ptycho_batch", "submit", str(path)], cwd=tmp_path, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.2, 2.0))
        proc.send_signal(signal.SIGHUP if attempt % 3 == 2 else signal.SIGKILL)  # SIGHUP: the terminal closed
        proc.wait()
        status = ptybatch("status", str(path), "--json", cwd=tmp_path)  # settles a run nobody carries
        if status.returncode != 0:
            assert "has no runs yet" in status.stderr, status.stderr  # killed before the run existed
            continue
        newest = runs_of(out)[-1]
        wait_until(lambda: finished(newest), 30)  # the supervisor carries the run to its end  # noqa: B023
        for name, record in records(newest).items():
            assert record["state"] in FINAL, (attempt, name, record["state"])
            if record.get("started") and not record.get("cached_from"):
                assert record["state"] == "COMPLETED", (attempt, name, record)  # a started job is finished
        assert not [p for p in os.listdir(pids) if alive(int(p))], "no job may run without its supervisor"
    final = ptybatch("submit", str(path), cwd=tmp_path, env={"PIDS": str(pids)})
    assert final.returncode == 0, final.stdout + final.stderr
    last = records(runs_of(out)[-1])
    assert {r["state"] for r in last.values()} == {"COMPLETED"}
    earlier = [n for n, r in last.items() if r.get("cached_from")]
    assert earlier, "jobs completed by earlier (killed) submits are reused, not rerun"


def test_detached_local_run_is_followed_by_watch(tmp_path: Path) -> None:
    jobs = {"first": {"backend": "a", "command": [PY, "-c", "import time; time.sleep(1.5); print('one')"]},
            "second": {"backend": "a", "needs": ["first"], "command": [PY, "-c", "print('two')"]}}
    path = write_campaign(tmp_path, host_campaign(jobs))
    started = time.monotonic()
    detached = ptybatch("submit", str(path), "--detach", cwd=tmp_path)
    assert detached.returncode == 0, detached.stderr
    assert time.monotonic() - started < 10 and "handed to its supervisor" in detached.stdout
    assert not finished(runs_of(tmp_path / "reports")[-1]), "--detach returns while the run goes on"
    watched = ptybatch("watch", str(path), cwd=tmp_path, timeout=60)
    assert watched.returncode == 0, watched.stdout + watched.stderr
    assert "[ptybatch] first: COMPLETED" in watched.stdout and "[ptybatch] second: COMPLETED" in watched.stdout
    assert (tmp_path / "reports" / "t" / "analysis" / "artifact_inventory.md").exists()


def test_a_killed_supervisor_leaves_lost_jobs_that_the_next_submit_reruns(tmp_path: Path) -> None:
    jobs = {"long": {"backend": "a", "command": [PY, "-c", "import time; print('up', flush=True); time.sleep(300)"]},
            "after": {"backend": "a", "needs": ["long"], "command": [PY, "-c", "print('after')"]}}
    path = write_campaign(tmp_path, host_campaign(jobs))
    out = tmp_path / "reports"
    assert ptybatch("submit", str(path), "--detach", cwd=tmp_path).returncode == 0
    run_dir = runs_of(out)[-1]
    wait_until(lambda: records(run_dir).get("long", {}).get("pid") is not None)
    job_pid = records(run_dir)["long"]["pid"]
    supervisor = json.loads((run_dir / "run.json").read_text())["supervisor"]["pid"]
    os.kill(supervisor, signal.SIGKILL)
    wait_until(lambda: not alive(supervisor), 10)

    status = json.loads(ptybatch("status", str(run_dir), "--json", cwd=tmp_path).stdout)["jobs"]
    assert status["long"]["state"] == "LOST" and status["long"]["failure_class"] == "lost"
    assert Path(status["long"]["red_note"]).exists() and "supervisor died" in status["long"]["failure_line"]
    assert status["after"]["state"] == "LOST" and not status["after"]["red_note"]
    wait_until(lambda: not alive(job_pid), 10)  # nothing runs unrecorded

    quick = write_campaign(tmp_path, host_campaign({**jobs, "long": {**jobs["long"],
                                                                      "command": [PY, "-c", "print('up')"]}}))
    again = ptybatch("submit", str(quick), cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    rerun = records(runs_of(out)[-1])
    assert rerun["long"]["state"] == "COMPLETED" and not rerun["long"].get("cached_from")


def test_follower_wakes_when_its_supervisor_exits(tmp_path: Path) -> None:
    """`pause` (the follower's sleep) ends as soon as the supervisor this process started is gone."""
    from ptycho_batch.executors.local import supervisor
    from ptycho_batch.journal.store import create_run

    run = create_run(tmp_path / "t", "r1")
    with open(tmp_path / "lock", "a+") as lock:
        supervisor.start(run, lock, lambda: time.sleep(0.2))
    started = time.monotonic()
    supervisor.pause(run, 60)
    assert time.monotonic() - started < 30 and run.dir not in supervisor._exits
    supervisor.pause(run, 0.01)  # afterwards a plain sleep
