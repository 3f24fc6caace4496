"""Cores as a budget in the local executor: a job takes `resources.cpus` (default 1) and waits until they
are free; a job asking more than the machine has is refused before anything runs (exit 2)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import requires
from helpers import write_campaign

PY = sys.executable
STAMP = "import time, sys; start = time.time(); time.sleep(1.5); print('span', start, time.time())"


def _submit_on_two_cores(path: Path) -> subprocess.CompletedProcess[str]:
    """`ptybatch submit` pinned to two cores (the supervisor and its jobs inherit the affinity)."""
    return subprocess.run(["taskset", "-c", "0,1", PY, "-m", "ptycho_batch", "submit", str(path)], cwd=path.parent,
                          capture_output=True, text=True, timeout=120)


def _spans(folder: Path) -> list[tuple[float, float]]:
    run = sorted((folder / "reports" / ".ptybatch" / "t").glob("*/run.json"))[-1].parent
    states = [json.loads(p.read_text()) for p in run.glob("jobs/*/state.json")]
    return sorted((s["metrics"]["span.start"], s["metrics"]["span.end"]) for s in states)


def _campaign(cpus: int | None, count: int = 2) -> dict:
    resources = {"resources": {"cpus": cpus}} if cpus else {}
    return {"campaign": "t", "backends": {"a": {"runtime": "host"}},
            "jobs": {f"j{i}": {"backend": "a", "command": [PY, "-c", STAMP], **resources,
                               "observe": {"span": r"span (?P<start>\S+) (?P<end>\S+)"}} for i in range(count)}}


@pytest.fixture(autouse=True)
def two_cores() -> None:
    import os

    requires("taskset", bool(shutil.which("taskset")) and len(os.sched_getaffinity(0)) >= 2, "needs taskset, 2 cores")


def test_two_jobs_of_two_cpus_on_two_cores_never_overlap(tmp_path: Path) -> None:
    result = _submit_on_two_cores(write_campaign(tmp_path, _campaign(2)))
    assert result.returncode == 0, result.stdout + result.stderr
    (a_start, a_end), (b_start, _) = _spans(tmp_path)
    assert b_start >= a_end, "the second 2-cpu job started while the first held both cores"


def test_two_jobs_of_one_cpu_on_two_cores_run_together(tmp_path: Path) -> None:
    result = _submit_on_two_cores(write_campaign(tmp_path, _campaign(None)))
    assert result.returncode == 0, result.stdout + result.stderr
    (a_start, a_end), (b_start, _) = _spans(tmp_path)
    assert b_start < a_end, "a budget of two cores runs two 1-cpu jobs at once"


def test_a_job_asking_more_cores_than_the_machine_has_is_refused(tmp_path: Path) -> None:
    result = _submit_on_two_cores(write_campaign(tmp_path, _campaign(3, count=1)))
    assert result.returncode == 2
    assert "job j0: asks resources.cpus=3, this machine has 2 cores" in result.stderr
    assert not list((tmp_path / "reports").glob(".ptybatch/t/*/run.json"))
