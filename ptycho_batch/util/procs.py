"""Process identity: a pid plus the kernel's start time, so a recycled pid is never taken for a live runner."""

from __future__ import annotations

from pathlib import Path


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first), None when it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of `pid` (field 22 of /proc/<pid>/stat), None when it is gone."""
    fields = _stat_fields(pid)
    return fields[19] if fields and len(fields) > 19 else None


def process_alive(pid: int | None, start: str | None) -> bool:
    """The same process is still running (a zombie, dead but not yet reaped, is not)."""
    if pid is None or start is None:
        return False
    fields = _stat_fields(pid)
    if fields is None or len(fields) <= 19:
        return False
    return fields[0] not in ("Z", "X") and fields[19] == start
