"""Existing environments: the `python` a host job would run is its identity (PATH changes rerun it), and
host and `python:` jobs write provenance.json with the probe run in that interpreter."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from helpers import ptybatch, write_campaign

BODY = {"campaign": "t", "backends": {"a": {"runtime": "host"}},
        "jobs": {"j": {"backend": "a", "command": ["python", "-c", "import sys; print(sys.executable)"]}}}


def test_host_identity_follows_the_python_on_path_and_provenance_is_written(tmp_path: Path) -> None:
    first = tmp_path / "env1" / "bin"
    first.mkdir(parents=True)
    (first / "python").symlink_to(sys.executable)
    env = {"PATH": f"{first}:{os.environ['PATH']}"}
    path = write_campaign(tmp_path, BODY)
    assert ptybatch("submit", str(path), cwd=tmp_path, env=env).returncode == 0
    provenance = json.loads((tmp_path / "reports" / "t" / "analysis" / "j.provenance.json").read_text())
    assert provenance["runtime"] == "host" and str(first / "python") in provenance["identity"]
    assert provenance["probe"]["python"]["executable"] == str(first / "python")
    plan = json.loads(ptybatch("plan", str(path), "--json", cwd=tmp_path, env=env).stdout)
    assert plan["j"]["run"] is False
    second = tmp_path / "env2" / "bin"
    second.mkdir(parents=True)
    (second / "python").symlink_to(sys.executable)
    moved = json.loads(ptybatch("plan", str(path), "--json", cwd=tmp_path,
                                env={"PATH": f"{second}:{os.environ['PATH']}"}).stdout)
    assert moved["j"]["run"] is True and "runtime changed" in moved["j"]["reason"]


def test_python_backend_missing_interpreter_is_one_line(tmp_path: Path) -> None:
    body = {**BODY, "backends": {"a": {"python": str(tmp_path / "nowhere" / "bin" / "python")}}}
    result = ptybatch("submit", str(write_campaign(tmp_path, body)), cwd=tmp_path)
    assert result.returncode == 4 and "nowhere/bin/python: not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_first_job_asks_identity_and_provenance_of_its_python_side_by_side(tmp_path: Path) -> None:
    """Both probes start the backend's interpreter (a third of a second through a pyenv shim): the local
    scheduler starts the provenance probe while the identity is asked, and the record is still whole."""
    bindir = tmp_path / "shim"
    bindir.mkdir()
    starts = tmp_path / "starts"
    shim = bindir / "python"
    shim.write_text(f"#!/bin/sh\necho start >> {starts}\nsleep 1\necho end >> {starts}\nexec {sys.executable} \"$@\"\n")
    shim.chmod(0o755)
    body = {**BODY, "jobs": {"j": {"backend": "a", "matrix": {"i": [1, 2, 3]}, "command": ["true"]}}}
    path = write_campaign(tmp_path, body)
    result = ptybatch("submit", str(path), cwd=tmp_path, env={"PATH": f"{bindir}:{os.environ['PATH']}"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert starts.read_text().split() == ["start", "start", "end", "end"]   # overlapping, not one after the other
    for i in (1, 2, 3):
        provenance = json.loads((tmp_path / "reports" / "t" / "analysis" / f"j_i_{i}.provenance.json").read_text())
        assert provenance["identity"].startswith("host:") and str(shim) in provenance["identity"]
        assert provenance["probe_exit_code"] == 0 and provenance["probe"]["python"]["executable"]
        assert "PTYBATCH_JOB_TOKEN" in provenance["probe"]["env_names"]


def test_a_slow_provenance_probe_does_not_hold_the_first_jobs_back(tmp_path: Path) -> None:
    """The probe (seconds for TensorFlow) runs beside the backend's first jobs, and each job's record still
    carries its whole answer."""
    bindir = tmp_path / "shim"
    bindir.mkdir()
    shim = bindir / "python"   # slow only for the provenance probe (the identity is asked quickly)
    shim.write_text(f"#!/bin/sh\ncase \"$1\" in *probe.py) sleep 3;; esac\nexec {sys.executable} \"$@\"\n")
    shim.chmod(0o755)
    stamp = ("import os, sys, time\nopen(os.path.join(sys.argv[1], sys.argv[2]), 'w').write(repr(time.time()))")
    body = {**BODY, "jobs": {"j": {"backend": "a", "matrix": {"i": [1, 2]},
                                   "command": [sys.executable, "-c", stamp, str(tmp_path), "{i}"]}}}
    path = write_campaign(tmp_path, body)
    begun = time.time()
    result = ptybatch("submit", str(path), cwd=tmp_path, env={"PATH": f"{bindir}:{os.environ['PATH']}"})
    assert result.returncode == 0, result.stdout + result.stderr
    started = [float((tmp_path / str(i)).read_text()) - begun for i in (1, 2)]
    assert time.time() - begun > 3 and max(started) < 2.5, started   # the jobs ran while the probe slept
    for i in (1, 2):
        provenance = json.loads((tmp_path / "reports" / "t" / "analysis" / f"j_i_{i}.provenance.json").read_text())
        assert provenance["probe_exit_code"] == 0 and provenance["probe"]["python"]["executable"]


def test_provenance_is_recorded_before_a_job_unless_its_probe_is_still_running(tmp_path: Path) -> None:
    """The backend's first job starts beside the probe and gets its record after it ran; a later job (as any
    job on a SLURM node, where no probe is started ahead) has its record before it starts."""
    analysis = tmp_path / "reports" / "t" / "analysis"
    check = "import os, sys\nsys.exit(0 if os.path.exists(sys.argv[1]) == (sys.argv[2] == 'yes') else 3)"
    body = {**BODY, "jobs": {
        "first": {"backend": "a", "command": [sys.executable, "-c", check, str(analysis / "first.provenance.json"), "no"]},
        "later": {"backend": "a", "needs": ["first"],
                  "command": [sys.executable, "-c", check, str(analysis / "later.provenance.json"), "yes"]}}}
    path = write_campaign(tmp_path, body)
    result = ptybatch("submit", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("first", "later"):
        assert json.loads((analysis / f"{name}.provenance.json").read_text())["probe_exit_code"] == 0
