"""Which GPUs this machine (or cluster node) shows: asked once per process."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess


@functools.cache
def visible_gpus() -> list[str]:
    """GPU indices from CUDA_VISIBLE_DEVICES when set, else from `nvidia-smi -L`; empty on CPU machines."""
    pinned = os.environ.get("CUDA_VISIBLE_DEVICES")
    if pinned is not None:
        return [g for g in pinned.split(",") if g.strip() and g.strip() != "-1"]
    if not shutil.which("nvidia-smi"):
        return []
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(listing.splitlines()) if line.startswith("GPU ")]
