"""A full disk while recording: one line naming the path and the error, exit 5, no temporary files left,
the unfinished job reads LOST once space is back, and a re-submit recovers. Needs root to mount a small
tmpfs (CI runs as root and names `root-tmpfs` in PTYBATCH_REQUIRE)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import requires
from helpers import ptybatch, write_campaign

CAMPAIGN = {"campaign": "t", "backends": {"a": {"runtime": "host"}}, "defaults": {"params": {"size": 3000000}},
            "jobs": {"small": {"backend": "a", "command": ["echo", "hi"]},
                     "big": {"backend": "a", "needs": ["small"], "shell": True, "observe": {"done": "done"},
                             "command": "head -c {size} /dev/zero | tr '\\0' x; echo; echo done"}}}


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True,
                            text=True)
    requires("root-tmpfs", result.returncode == 0, f"cannot mount a tmpfs: {result.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_full_is_one_line_and_recoverable(tmp_path: Path, small_disk: Path) -> None:
    campaign = write_campaign(tmp_path, CAMPAIGN)
    out = small_disk / "out"
    result = ptybatch("submit", str(campaign), "--out", str(out), cwd=tmp_path, timeout=120)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 5, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert len(errors) == 1 and "No space left on device" in errors[0] and str(out) in errors[0], result.stderr
    assert not [p for p in small_disk.rglob("*") if p.name.endswith(".tmp")], "temporary files left behind"
    for log in (out / "t" / "cli").glob("big*.log"):
        log.unlink()   # space again
    status = ptybatch("status", str(campaign), "--out", str(out), "--json", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert '"state": "LOST"' in status.stdout and '"state": "COMPLETED"' in status.stdout
    again = ptybatch("submit", str(campaign), "--out", str(out), "--set", "size=10", cwd=tmp_path, timeout=120)
    assert again.returncode == 0, (again.stdout, again.stderr)
