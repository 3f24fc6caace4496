"""Reading the end of a job's log: logs can be gigabytes (Keras progress bars), so tails come from the end.

The text is cleaned as a terminal would show it (carriage returns, backspaces, ANSI codes).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ptycho_batch.node.envfirewall import mask
from ptycho_batch.node.observe import clean_text

TAIL_BYTES = 64 * 1024


def read_tail(path: Path, max_bytes: int = TAIL_BYTES, secrets: Sequence[str] = ()) -> str:
    """The last `max_bytes` of a log as a terminal would show them (empty when there is no log yet), with
    `secrets` and URL passwords masked."""
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - max_bytes))
            data = handle.read(max_bytes)
    except OSError:
        return ""
    if len(data) == max_bytes and size > max_bytes:
        data = data.split(b"\n", 1)[-1]  # drop the cut-off first line
    return mask(clean_text(data.decode(errors="replace")), secrets)


def tail_lines(path: Path, count: int, secrets: Sequence[str] = ()) -> list[str]:
    """The last `count` lines of a log, blank trailing lines removed."""
    lines = read_tail(path, secrets=secrets).rstrip("\n").splitlines()
    return lines[-count:] if count > 0 else []
