"""Evidence is never silently overwritten: what a run with another cache key left is moved to history first.

A job's evidence files (its logs, env/provenance/metrics records, artifact copies and digest files, green
copies) live under fixed names in its report dir, so a later run of the job with other params would
replace them. After each attempt the runner records which run and cache key produced which files: one
JSON line appended to its process's manifest log, `<report_dir>/.evidence/<run-id>.<host>.<pid>.jsonl`,
and `.evidence/<slug>.json` made a hard link to that log (a file per job would cost an inode per job; a
link and an append cost neither; a manifest of one job, as older runs wrote them, reads the same). Before
a run writes a job's evidence, a manifest entry from another run with another cache key sends those files
to `<report_dir>/history/<run-id>/` (same relative paths), and that run's journal record is pointed at the
moved files, so `ptybatch report <that-run>` still shows its own evidence. A rerun with the same cache key
(same inputs) replaces its files in place.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path
from typing import Any

from ptycho_batch.campaign.plan import PlannedJob
from ptycho_batch.journal.layout import ReportDir
from ptycho_batch.journal.records import JobState
from ptycho_batch.util.fsio import ensure_dirs, io_error, link_atomic, write_all, write_atomic, write_json

MANIFEST_DIR = ".evidence"
HISTORY_DIR = "history"


def _manifest(job: PlannedJob) -> Path:
    return Path(job.report_dir) / MANIFEST_DIR / f"{job.slug}.json"


def evidence_files(job: PlannedJob, state: JobState) -> list[str]:
    """Every file in the report dir that this job's run wrote (and a later run would write again)."""
    report = ReportDir(Path(job.report_dir))
    files = [attempt.log for attempt in state.attempts if attempt.log] + ([state.log] if state.log else [])
    files += [str(report.record(job.slug, kind)) for kind in ("env", "provenance", "metrics")]
    for name, record in state.artifacts.items():
        files.append(record.path)
        if record.algorithm and job.artifacts[name].digest:
            files.append(str(Path(record.path).parent / f"{name}_digest_{job.slug}.txt"))
    files += state.green
    return sorted({f for f in files if Path(f).exists()})


_appending = threading.Lock()
_read: dict[tuple[int, int, int], dict[str, dict[str, Any]]] = {}   # (device, inode, size) -> entries by slug


def record_evidence(job: PlannedJob, run_dir: Path, state: JobState) -> None:
    """Record what this run wrote for `job` (after each attempt): append it to this process's manifest log
    and point the job's manifest at the log."""
    folder = Path(job.report_dir) / MANIFEST_DIR
    ensure_dirs(folder)
    entry = {"run_dir": str(run_dir), "run_id": run_dir.name, "job": job.name, "slug": job.slug,
             "cache_key": state.cache_key, "files": evidence_files(job, state)}
    log = folder / f"{run_dir.name}.{socket.gethostname()}.{os.getpid()}.jsonl"
    try:
        with _appending:
            fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                write_all(fd, (json.dumps(entry) + "\n").encode())
            finally:
                os.close(fd)
    except OSError as error:
        raise io_error(log, error) from None
    try:
        link_atomic(log, _manifest(job))
    except OSError:   # a file system without hard links: the manifest of this job alone
        write_json(_manifest(job), entry)


def recorded(job: PlannedJob) -> dict[str, Any] | None:
    """The last manifest entry of `job` in its report dir (a log read once per process), None if none."""
    path = _manifest(job)
    try:
        stat = path.stat()
        key = (stat.st_dev, stat.st_ino, stat.st_size)
        if key not in _read:
            _read[key] = _entries(path.read_text())
    except OSError:
        return None
    return _read[key].get(job.slug)


def _entries(text: str) -> dict[str, dict[str, Any]]:
    try:
        items = [json.loads(text)]   # one job's manifest (written whole, or a log of one line)
    except ValueError:
        items = []
        for line in text.splitlines():
            try:
                items.append(json.loads(line))
            except ValueError:
                continue   # a line cut short (a crash or a full disk while appending)
    return {item["slug"]: item for item in items if isinstance(item, dict) and isinstance(item.get("slug"), str)}


def preserve_evidence(job: PlannedJob, run_dir: Path, cache_key: str | None) -> list[str]:
    """Before this run writes `job`'s evidence: move another run's (with another cache key) to history and
    repoint that run's record. Returns the moved files' new paths."""
    manifest = recorded(job)
    if manifest is None or manifest.get("run_dir") == str(run_dir) or manifest.get("cache_key") == cache_key:
        return []
    root = Path(job.report_dir)
    history = root / HISTORY_DIR / str(manifest.get("run_id", "unknown-run"))
    moved: dict[str, str] = {}
    for name in manifest.get("files", []):
        source = Path(name)
        if not source.is_file() or not source.is_relative_to(root) or source.is_relative_to(root / HISTORY_DIR):
            continue
        target = history / source.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
        moved[str(source)] = str(target)
    _repoint(Path(str(manifest.get("run_dir", ""))) / "jobs" / job.slug / "state.json", moved)
    _manifest(job).unlink(missing_ok=True)
    return list(moved.values())


def _repoint(record: Path, moved: dict[str, str]) -> None:
    """Point the producing run's journal record at the files' new places (exact JSON string values only)."""
    if not moved or not record.is_file():
        return
    text = record.read_text()
    for old, new in moved.items():
        text = text.replace(json.dumps(old, ensure_ascii=False), json.dumps(new, ensure_ascii=False))
    write_atomic(record, text)
