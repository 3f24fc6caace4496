"""Nothing a job started outlives it: background, `setsid`, double-forked and TERM-ignoring children are
gone (checked with `ps`) once the job ends, whether it passed, failed, timed out or was cancelled."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
from helpers import ptybatch, write_campaign

# each child sleeps for a marker number of seconds, so `ps` finds exactly this test's processes
SPAWN = ("sleep {m}1 & setsid sleep {m}2 & (setsid sh -c 'sleep {m}3 &' &); "
         "sh -c 'trap \"\" TERM; exec sleep {m}4' & sleep 0.3; echo children started")
ENDINGS = {"success": "true", "failure": "exit 3", "timeout": "sleep 600", "cancel": "sleep 600"}


def alive(marker: str) -> list[int]:
    """Pids of this test's live `sleep` children (zombies are not alive)."""
    rows = [row.split(None, 2) for row in
            subprocess.run(["ps", "-eo", "pid=,stat=,args="], capture_output=True, text=True).stdout.splitlines()]
    return [int(row[0]) for row in rows
            if len(row) == 3 and row[2].startswith(f"sleep {marker}") and not row[1].startswith("Z")]


def wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


@pytest.mark.parametrize("ending", sorted(ENDINGS))
def test_no_process_outlives_its_job(tmp_path: Path, ending: str) -> None:
    marker = str(random.randint(10**6, 10**7))
    command = SPAWN.format(m=marker) + "; " + ENDINGS[ending]
    job = {"backend": "a", "command": command, "shell": True}
    if ending == "timeout":
        job["timeout_min"] = 0.05
    campaign = write_campaign(tmp_path, {"campaign": "t", "backends": {"a": {"runtime": "host"}},
                                         "jobs": {"j": job}})
    try:
        if ending == "cancel":
            assert ptybatch("submit", str(campaign), "--detach", cwd=tmp_path).returncode == 0
            assert wait_for(lambda: len(alive(marker)) == 4, 30), alive(marker)
            assert ptybatch("cancel", str(campaign), cwd=tmp_path).returncode == 0

            def final() -> bool:
                status = ptybatch("status", str(campaign), "--json", cwd=tmp_path)
                return json.loads(status.stdout)["jobs"]["j"]["state"] == "CANCELLED"
            assert wait_for(final, 30)
        else:
            result = ptybatch("submit", str(campaign), cwd=tmp_path, timeout=120)
            assert result.returncode == (0 if ending == "success" else 1), result.stdout + result.stderr
        assert wait_for(lambda: not alive(marker), 3), f"left running after the job ended: {alive(marker)}"
    finally:
        for pid in alive(marker):  # do not leave them behind for the next test
            os.kill(pid, signal.SIGKILL)
