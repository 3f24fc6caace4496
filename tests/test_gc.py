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
