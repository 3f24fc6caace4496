"""Where ptybatch keeps things outside a run's `<out>`: only the cache of environments and images."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the ptycho_batch package


def cache_dir() -> Path:
    """`$PTYBATCH_CACHE`, else `$XDG_CACHE_HOME/ptybatch`, else `~/.cache/ptybatch`."""
    explicit = os.environ.get("PTYBATCH_CACHE")
    if explicit:
        return Path(explicit).expanduser().resolve()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser().resolve() / "ptybatch"
