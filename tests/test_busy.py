"""Simultaneous submits: exactly one runs, and every other is told who holds the campaign (never `?`)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from helpers import write_campaign


def test_ten_simultaneous_submits_name_the_holder(tmp_path: Path) -> None:
    campaign = write_campaign(tmp_path, {"campaign": "t", "backends": {"a": {"runtime": "host"}},
                                         "jobs": {"j": {"backend": "a", "command": ["sleep", "60"]}}})
    procs = [subprocess.Popen([sys.executable, "-m", "ptycho_batch", "submit", "--detach", str(campaign)], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
             for _ in range(10)]
    results = [(proc.wait(120), proc.communicate()) for proc in procs]
    codes = sorted(code for code, _ in results)
    subprocess.run([sys.executable, "-m", "ptycho_batch", "cancel", str(campaign)], cwd=tmp_path, check=True,
                   capture_output=True)
    assert codes == [0] + [3] * 9, results
    for code, (_, err) in results:
        if code == 3:
            assert "?" not in err and re.search(r"run \d{8}T\d{6}\.\d{3}Z-\w+ \(pid \d+ on \S+, since \S+\)", err), err
