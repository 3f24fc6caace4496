"""Process identity: a pid plus the kernel's start time, so a recycled pid is never taken for a live runner."""

from __future__ import annotations

from pathlib import Path


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of `pid` (field 22 of /proc/<pid>/stat), None when it is gone or a zombie
    (a process that has ended but whose parent has not reaped it yet, e.g. a supervisor that crashed)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return None if fields[0] in ("Z", "X") else fields[19]
    except (OSError, IndexError):
        return None


def process_alive(pid: int | None, start: str | None) -> bool:
    return pid is not None and start is not None and process_start_time(pid) == start
