"""Test helpers for ptybatch's own dev cluster (slurm/start-dev-cluster.sh).

Why: the sacct-less fallback is tested on the same cluster restarted without accounting, so the tests
need to find the cluster's directory and switch its accounting mode, then put it back.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[1]
START_SCRIPT = ROOT / "slurm" / "start-dev-cluster.sh"
T = TypeVar("T")


def dev_cluster_dir() -> Path | None:
    """The dev cluster's DIR when $SLURM_CONF names one start-dev-cluster.sh made, else None."""
    conf = os.environ.get("SLURM_CONF")
    if not conf:
        return None
    directory = Path(conf).resolve().parent
    started_by_us = (directory / "env.sh").exists() and (directory / "run").is_dir()
    return directory if started_by_us else None


def start_dev_cluster(directory: Path, accounting: str) -> None:
    """(Re)start the cluster in `directory` with accounting `dbd` or `none` (a switch restarts it)."""
    env = {**os.environ, "PTYBATCH_SLURM_ACCOUNTING": accounting}
    completed = subprocess.run([str(START_SCRIPT), str(directory)], env=env, capture_output=True, text=True,
                               timeout=300, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"start-dev-cluster.sh failed:\n{completed.stdout}\n{completed.stderr}")


@contextmanager
def accounting_mode(directory: Path, accounting: str) -> Iterator[None]:
    """Run the body with the cluster in `accounting` mode, then return it to `dbd` (the CI default)."""
    start_dev_cluster(directory, accounting)
    try:
        yield
    finally:
        start_dev_cluster(directory, "dbd")


def start_now(job_id: str) -> None:
    """Let a requeued job start at once: SLURM holds one for 120 s (Reason=BeginTime) after a requeue.

    The interrupted run's step may still be winding down (srun waits up to KillWait, 7 s here); a new
    run released before that fails at once, which the 120 s hold prevents on real clusters.
    """
    time.sleep(8)
    subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], check=True, timeout=30)


def wait_for(probe: Callable[[], T | None], timeout_s: float, what: str) -> T:
    """Poll `probe` until it returns something other than None; fail the test after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(0.3)
