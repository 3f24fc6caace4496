"""`ptybatch gc`: old runs' workdirs go, journals and report evidence stay; --keep, --older-than, --dry-run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from helpers import ptybatch, write_campaign

PY = sys.executable
BODY = {"campaign": "t", "backends": {"a": {"runtime": "host"}},
        "jobs": {"train": {"backend": "a", "command": [PY, "-c", "import os; os.makedirs('out'); "
                                                                  "open('out/wts.h5.zip','wb').write(b'x' * 300000)"],
                           "artifacts": {"bundle": {"path": "out/wts.h5.zip", "required": True}}}}}


def _runs(tmp_path: Path) -> list[Path]:
    return sorted(p.parent for p in (tmp_path / "reports" / ".ptybatch" / "t").glob("*/run.json"))


def test_gc_dry_run_then_gc_keeps_newest_journals_and_evidence(tmp_path: Path) -> None:
    path = write_campaign(tmp_path, BODY)
    for _ in range(3):
        assert ptybatch("submit", str(path), "--force", cwd=tmp_path).returncode == 0
    runs = _runs(tmp_path)
    assert len(runs) == 3 and all((r / "work" / "train" / "out" / "wts.h5.zip").is_file() for r in runs)

    dry = ptybatch("gc", str(path), "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.count("would free 293.0 KB") == 2 and "would free 585.9 KB in 2 run(s)" in dry.stdout
    assert all((r / "work").is_dir() for r in runs), "--dry-run removes nothing"

    young = ptybatch("gc", str(path), "--older-than", "1d", cwd=tmp_path)
    assert "freed 0 B in 0 run(s)" in young.stdout and all((r / "work").is_dir() for r in runs)

    done = ptybatch("gc", str(path), "--keep", "1", cwd=tmp_path)
    assert done.returncode == 0 and "freed 585.9 KB in 2 run(s)" in done.stdout
    assert [(r / "work").exists() for r in runs] == [False, False, True]
    for run in runs:   # the journal and the report evidence stay
        assert json.loads((run / "jobs" / "train" / "state.json").read_text())["state"] == "COMPLETED"
    assert (tmp_path / "reports" / "t" / "analysis" / "wts.h5.zip").stat().st_size == 300000
    assert ptybatch("status", runs[0].name, cwd=tmp_path).returncode == 0
    plan = json.loads(ptybatch("plan", str(path), "--json", cwd=tmp_path).stdout)
    assert plan["train"]["run"] is False, "cache reuse needs no workdir"
    again = ptybatch("gc", str(path), "--keep", "0", cwd=tmp_path)
    assert "freed 293.0 KB in 1 run(s)" in again.stdout


def test_gc_refuses_a_bad_age(tmp_path: Path) -> None:
    write_campaign(tmp_path, BODY)
    result = ptybatch("gc", "--older-than", "soon", cwd=tmp_path)
    assert result.returncode == 2 and "--older-than 'soon'" in result.stderr


def test_gc_venvs_removes_only_backend_venvs_no_run_used_lately(tmp_path: Path) -> None:
    import os
    import time

    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# the standard library only\n")
    body = {"campaign": "v", "backends": {"lean": {"runtime": "venv", "requirements": str(requirements)}},
            "jobs": {"probe": {"backend": "lean", "command": ["python", "-c", "print('ok')"]}}}
    env = {"PTYBATCH_CACHE": str(tmp_path / "cache")}
    path = write_campaign(tmp_path, body)
    assert ptybatch("submit", str(path), cwd=tmp_path, env=env).returncode == 0
    (venv,) = (ready.parent for ready in (tmp_path / "cache" / "venvs").glob("lean-*/ptybatch-ready"))
    kept = ptybatch("gc", str(path), "--venvs", "--older-than", "1d", cwd=tmp_path, env=env)
    assert kept.returncode == 0 and "in 0 backend venv(s)" in kept.stdout and venv.is_dir(), kept.stdout
    past = time.time() - 40 * 86400
    os.utime(venv / "ptybatch-ready", (past, past))   # as if no run had used it for 40 days
    dry = ptybatch("gc", str(path), "--venvs", "--dry-run", cwd=tmp_path, env=env)
    assert f"backend venv {venv.name}: unused for 40.0 days: would free" in dry.stdout and venv.is_dir()
    done = ptybatch("gc", str(path), "--venvs", cwd=tmp_path, env=env)
    assert "in 1 backend venv(s)" in done.stdout and not venv.exists(), done.stdout
    again = ptybatch("submit", str(path), "--force", cwd=tmp_path, env=env)
    assert again.returncode == 0 and venv.is_dir(), "a removed venv is rebuilt on its next use"
