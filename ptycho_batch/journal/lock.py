"""The campaign lock: one live carrier of a campaign's runs at a time (a local supervisor or a `submit`).

`<campaign>/submit.lock` is an flock held for the life of whoever carries the run; the kernel drops it on
any death. `submit.owner` names the holder; it is written before the lock can be seen as taken by anyone
else (under a second short lock), so a busy message always names who holds it.

A backend's report directory can be shared by campaigns; `report_dir_locks` makes the run writing into it
its only writer (`<report_dir>/.ptybatch-writer.lock`, owner in `.ptybatch-writer.json`), so two campaigns
never interleave one log or replace each other's artifacts. The local supervisor inherits these locks
with the campaign lock and holds them until its run is finished.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from ptycho_batch.util.errors import CampaignBusy
from ptycho_batch.util.fsio import is_locked, locked, write_json


@contextmanager
def campaign_lock(campaign_dir: Path, run_id: str) -> Iterator[IO[str]]:
    """Hold the campaign's lock for the block (and in any process that inherits the yielded handle)."""
    campaign_dir.mkdir(parents=True, exist_ok=True)
    handle = open(campaign_dir / "submit.lock", "a+")
    try:
        with locked(campaign_dir / "owner.lock"):
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise CampaignBusy(busy_message(campaign_dir.name, _owner_file(campaign_dir))) from None
            record_owner(campaign_dir, run_id, os.getpid())
        yield handle
    finally:
        handle.close()


def busy_message(campaign: str, owner: dict[str, Any]) -> str:
    return (f"campaign {campaign!r} is already being run: run {owner.get('run_id', '?')} "
            f"(pid {owner.get('pid', '?')} on {owner.get('host', '?')}, since {owner.get('since', '?')})")


def record_owner(campaign_dir: Path, run_id: str, pid: int) -> None:
    write_json(campaign_dir / "submit.owner", {
        "run_id": run_id, "pid": pid, "host": socket.gethostname(),
        "since": datetime.now(timezone.utc).isoformat(timespec="seconds")})


def read_owner(campaign_dir: Path) -> dict[str, Any]:
    """Who holds the lock (waiting for a holder that is still writing its name)."""
    with locked(campaign_dir / "owner.lock"):
        return _owner_file(campaign_dir)


def _owner_file(campaign_dir: Path) -> dict[str, Any]:
    return _read_json(campaign_dir / "submit.owner")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        owner = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return owner if isinstance(owner, dict) else {}


def lock_held(campaign_dir: Path) -> bool:
    """Whether a live process carries a run of this campaign."""
    return is_locked(campaign_dir / "submit.lock")


WRITER_LOCK = ".ptybatch-writer.lock"
WRITER_OWNER = ".ptybatch-writer.json"


@contextmanager
def report_dir_locks(report_dirs: Iterable[Path], campaign: str, run_id: str) -> Iterator[None]:
    """Hold the writer lock of every report dir a run writes (a process forked inside keeps holding them);
    one held by another run is exit 3 naming that run."""
    handles: list[IO[str]] = []
    try:
        for folder in sorted(set(report_dirs)):
            folder.mkdir(parents=True, exist_ok=True)
            handle = open(folder / WRITER_LOCK, "a+")
            handles.append(handle)
            with locked(folder / f"{WRITER_LOCK}.owner"):
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    owner = _read_json(folder / WRITER_OWNER)
                    raise CampaignBusy(
                        f"report dir {folder} is being written by campaign {owner.get('campaign', '?')!r}, "
                        f"run {owner.get('run_id', '?')} (pid {owner.get('pid', '?')} on {owner.get('host', '?')}, "
                        f"since {owner.get('since', '?')}); wait for it or give this backend another report_dir"
                    ) from None
                write_json(folder / WRITER_OWNER, {
                    "campaign": campaign, "run_id": run_id, "pid": os.getpid(), "host": socket.gethostname(),
                    "since": datetime.now(timezone.utc).isoformat(timespec="seconds")})
        yield
    finally:
        for held in handles:
            held.close()
