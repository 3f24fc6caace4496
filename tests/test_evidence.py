"""Evidence is never silently overwritten: one writer per report dir, and `report RUN` rebuilds a run's
inventory from its journal."""

from __future__ import annotations

import json
import time
from pathlib import Path

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
