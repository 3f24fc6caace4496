"""`ptybatch gc`: free the disk that old runs' scratch workdirs hold (a TF bundle is tens of MB per run).

Only `<run>/work/` goes: the journal (plan, states, attempts) and the report evidence (cli/ logs,
analysis/ artifacts and digests, red/ and green/ notes) stay, so reports, `status`, `compare` and cache
reuse keep working (reuse checks the copied artifacts, never a workdir). The newest `keep` runs of each
campaign keep their workdirs, and so does any run with a job not yet final. With `--venvs`, the backend
venvs of the shared cache that no run used for a while go too (they are rebuilt on the next use).
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from ptycho_batch.executors.registry import load_run
from ptycho_batch.journal.store import Run
from ptycho_batch.runtimes.venv import cached_venvs


@dataclass(frozen=True)
class Collectable:
    run: Run
    workdir: Path
    size: int   # bytes, symlinks counted as links, never followed


def tree_size(root: Path) -> int:
    total = 0
    for folder, _, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                continue
    return total


def collectable(runs: list[Run], *, keep: int, older_than_s: float | None, now: float | None = None
                ) -> list[Collectable]:
    """Runs whose workdirs may go: beyond the newest `keep` of their campaign, older than the limit, finished."""
    now = now or time.time()
    by_campaign: dict[Path, list[Run]] = {}
    for run in runs:
        by_campaign.setdefault(run.dir.parent, []).append(run)
    found = []
    for campaign_runs in by_campaign.values():
        ordered = sorted(campaign_runs, key=lambda r: r.id)
        for run in ordered[:max(0, len(ordered) - keep)]:
            workdir = run.dir / "work"
            if not workdir.is_dir():
                continue
            if older_than_s is not None and now - (run.dir / "run.json").stat().st_mtime < older_than_s:
                continue
            if not all(state.final for state in load_run(run).values()):
                continue
            found.append(Collectable(run, workdir, tree_size(workdir)))
    return found


VENV_AGE_S = 30 * 86400   # a backend venv no run used for this long is collectable by default


@dataclass(frozen=True)
class StaleVenv:
    root: Path
    size: int
    idle_s: float


def stale_venvs(older_than_s: float | None, now: float | None = None) -> list[StaleVenv]:
    """Backend venvs (shared by every checkout) that no run has used for `older_than_s` (default 30 days);
    one being built or used right now (its lock held) stays."""
    now = now or time.time()
    limit = VENV_AGE_S if older_than_s is None else older_than_s
    return [StaleVenv(root, tree_size(root), now - used) for root, used, busy in cached_venvs()
            if not busy and now - used >= limit]


def remove_venvs(items: list[StaleVenv]) -> int:
    for item in items:
        shutil.rmtree(item.root, ignore_errors=True)
    return sum(item.size for item in items)


def remove(items: list[Collectable]) -> int:
    """Delete the workdirs; returns the bytes freed."""
    for item in items:
        shutil.rmtree(item.workdir, ignore_errors=True)
    return sum(item.size for item in items)


def parse_age(text: str) -> float:
    """`30m`, `12h`, `7d`, `2w` (or plain seconds) as seconds; ValueError otherwise."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    number, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "s")
    value = float(number)
    if value < 0:
        raise ValueError(text)
    return value * units[unit]
