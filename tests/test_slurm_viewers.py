"""Viewers of a SLURM run see the scheduler's truth (the one refresh path), and every verb says in one line
when the SLURM client is missing or the controller is down."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import requires
from dev_cluster import dev_cluster_dir, start_dev_cluster, wait_for
from helpers import host_campaign, ptybatch, states, write_campaign
from test_tui_tmux import WAITER, Pane, row

PY = sys.executable




def detached_run(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A detached SLURM run: `slow` (required) waits for flags/slow.go, `victim` (optional) for ever, and
    `after` needs the victim. Returns the campaign, the flags folder and the output folder."""
    flags = tmp_path / "flags"
    flags.mkdir()
    jobs = {"slow": {"backend": "a", "command": [PY, "-c", WAITER, str(flags), "slow"]},
            "victim": {"backend": "b", "command": [PY, "-c", WAITER, str(flags), "victim"]},
            "after": {"backend": "b", "needs": ["victim"], "command": ["true"]}}
    path = write_campaign(tmp_path, host_campaign(jobs))
    assert ptybatch("submit", str(path), "--executor", "slurm", "--detach", cwd=tmp_path).returncode == 0
    return path, flags, tmp_path / "reports"


def scancel_when_running(out: Path, job: str) -> None:
    wait_for(lambda: True if states(out).get(job, {}).get("state") == "RUNNING" else None, 90, f"{job} running")
    subprocess.run(["scancel", states(out)[job]["slurm_job_id"]], check=True, timeout=30)


def test_plain_watch_of_a_detached_run_shows_running_an_outside_scancel_and_exits(slurm: None,
                                                                                  tmp_path: Path) -> None:
    path, flags, out = detached_run(tmp_path)
    watcher = subprocess.Popen([PY, "-m", "ptycho_batch", "watch", str(path), "--interval", "0.5"], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    assert watcher.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(iter(watcher.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        wait_for(lambda: True if "[ptybatch] slow: RUNNING\n" in lines else None, 90, f"slow RUNNING in {lines}")
        scancel_when_running(out, "victim")
        wait_for(lambda: True if any(line.startswith("[ptybatch] victim: CANCELLED") for line in lines) else None,
                 60, f"victim CANCELLED in {lines}")
        wait_for(lambda: True if any(line.startswith("[ptybatch] after: SKIPPED") for line in lines) else None,
                 30, f"after SKIPPED in {lines}")
        assert watcher.poll() is None, "the run is not final yet"
        (flags / "slow.go").touch()
        assert watcher.wait(timeout=90) == 0, lines
    finally:
        (flags / "slow.go").touch()
        if watcher.poll() is None:
            watcher.kill()
    reader.join(timeout=10)
    assert any(line.startswith("[ptybatch] slow: COMPLETED") for line in lines), lines


@pytest.fixture
def pane(tmp_path: Path) -> Iterator[Pane]:
    requires("tmux", shutil.which("tmux") is not None)
    pane = Pane(f"ptybatch-slurm-{os.getpid()}-{tmp_path.name}", tmp_path)
    yield pane
    pane.close()


def test_dashboard_of_a_detached_run_shows_running_an_outside_scancel_and_the_end(slurm: None, tmp_path: Path,
                                                                                  pane: Pane) -> None:
    path, flags, out = detached_run(tmp_path)
    try:
        pane.type_line([PY, "-m", "ptycho_batch", "watch", str(path), "--interval", "0.5"])
        pane.wait_for(lambda s: "▶ RUNNING" in row(s, "slow"), "slow running", timeout=90)
        scancel_when_running(out, "victim")
        pane.wait_for(lambda s: "⊘ CANCELLED" in row(s, "victim") and "SKIPPED" in row(s, "after"),
                      "victim cancelled and after skipped")
        (flags / "slow.go").touch()
        pane.wait_for(lambda s: "✔ COMPLETED" in row(s, "slow"), "slow completed")
        pane.keys("q")
        pane.wait_for_prompt()
    finally:
        (flags / "slow.go").touch()


VERBS = ("plan", "submit", "status", "watch", "logs", "report", "cancel", "compare")


def verb_argv(verb: str, path: Path) -> list[str]:
    return {"plan": ["plan", str(path)], "submit": ["submit", str(path), "--executor", "slurm"],
            "status": ["status", str(path)], "watch": ["watch", str(path)], "logs": ["logs", str(path), "slow"],
            "report": ["report", str(path)], "cancel": ["cancel", str(path)],
            "compare": ["compare", str(path), str(path)]}[verb]


def assert_one_line_each(tmp_path: Path, path: Path, env: dict[str, str] | None, verbs: tuple[str, ...],
                         why: str) -> None:
    """Each of `verbs` fails with one `error:` line containing `why`, exit 4; every other verb works."""
    for verb in VERBS:
        if verb == "watch" and verb not in verbs:
            continue  # it works, and follows the run to its end
        result = ptybatch(*verb_argv(verb, path), cwd=tmp_path, env=env, timeout=120)
        assert "Traceback" not in result.stdout + result.stderr, (verb, result)
        if verb not in verbs:
            assert result.returncode == 0, (verb, result)
            continue
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert result.returncode == 4 and len(errors) == 1 and why in errors[0], (verb, result)


def stop(pid_file: Path) -> None:
    pid = int(pid_file.read_text())
    os.kill(pid, 15)
    wait_for(lambda: True if not Path(f"/proc/{pid}").exists() else None, 30, f"{pid_file.stem} to stop")


def test_every_verb_without_the_slurm_client_or_controller_is_one_line(slurm: None, tmp_path: Path) -> None:
    """plan asks the scheduler nothing; readers need accounting (sacct, served by slurmdbd) or squeue;
    submit and cancel need the controller (slurmctld)."""
    directory = dev_cluster_dir()
    requires("slurm", directory is not None, "the test stops ptybatch's own dev cluster's daemons")
    assert directory is not None
    path, flags, out = detached_run(tmp_path)
    wait_for(lambda: True if states(out).get("slow", {}).get("state") == "RUNNING" else None, 90, "slow running")
    no_client = tmp_path / "bin"
    no_client.mkdir()
    everything = tuple(verb for verb in VERBS if verb != "plan")
    assert_one_line_each(tmp_path, path, {"PATH": str(no_client)}, everything, "command not found")
    try:
        stop(directory / "run" / "slurmctld.pid")
        assert_one_line_each(tmp_path, path, None, ("submit", "cancel"), "")
        stop(directory / "run" / "slurmdbd.pid")
        assert_one_line_each(tmp_path, path, None, everything, "")
    finally:
        start_dev_cluster(directory, "dbd")  # starts the daemons that were stopped
    (flags / "slow.go").touch()
    (flags / "victim.go").touch()
    final = ptybatch("submit", str(path), "--executor", "slurm", cwd=tmp_path, timeout=300)
    assert final.returncode == 0, final.stdout + final.stderr
    assert states(out)["slow"]["state"] == "COMPLETED" and states(out)["victim"]["state"] == "COMPLETED"
