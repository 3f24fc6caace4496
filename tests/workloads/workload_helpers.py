"""Running the workloads with a backend environment's python, and reading their log lines."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_DROPPED = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "XLA_FLAGS", "USE_XLA_TRANSLATE")


def run_backend(python: Path, *argv: str, check: bool = True, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`python -m ...` in the backend venv, without the runner's environment leaking in; stdout and stderr text."""
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED}
    done = subprocess.run([str(python), *argv], capture_output=True, text=True, env=env, cwd=cwd or ROOT, timeout=600)
    if check:
        output = f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        assert done.returncode == 0, f"{argv[:3]} exited {done.returncode}:\n{output}"
    return done


def epoch_losses(stdout: str) -> list[float]:
    return [float(loss) for loss in re.findall(r"^Epoch \d+/\d+ loss=(\S+) time=\S+s$", stdout, re.M)]


def saved_bundle(stdout: str) -> Path:
    """The bundle a train run announced, after checking the announced size is the file's size."""
    match = re.search(r"^Bundle saved: (.+) \((\d+) bytes\)$", stdout, re.M)
    assert match, f"no 'Bundle saved' line in:\n{stdout}"
    path = Path(match[1])
    assert path.stat().st_size == int(match[2])
    return path
