"""A job's provenance: its runtime's identity plus the probe, run through that same runtime and env.

Meant for `analysis/<job>.provenance.json`: each result then says which image (digest) or venv and
which framework, CUDA/cuDNN/XLA build and devices produced it. A probe costs one interpreter start
plus a framework import (about 1 s for torch, 5 s for TensorFlow on 2 cores), so a run can probe once
per runtime identity and share the record between that backend's jobs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

from ptycho_batch.runtimes.base import Launch, Runtime
from ptycho_batch.util.fsio import locked, write_json

PROBE_ARGV = ["python", "-m", "ptycho_batch.node.probe"]
PROBE_FILE = str(Path(__file__).with_name("probe.py"))   # for environments without ptycho_batch (host, python:)


_collected: dict[Path, dict[str, Any]] = {}   # by record path: this process's jobs share one read


_ahead: dict[Runtime, subprocess.Popen[str]] = {}   # probes started before their first job asked


def _start(runtime: Runtime, launch: Launch) -> subprocess.Popen[str]:
    argv = list(PROBE_ARGV) if runtime.sees_package else ["python", PROBE_FILE]
    probe_launch = dataclasses.replace(launch, argv=argv)
    return subprocess.Popen(runtime.argv(probe_launch), env=runtime.env(probe_launch), cwd=launch.workdir,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)


def start_ahead(runtime: Runtime, launch: Launch) -> None:
    """Start `runtime`'s probe now (the local scheduler, while the runtime's identity is asked); the next
    `collect` for it takes this probe's answer."""
    if runtime not in _ahead:
        _ahead[runtime] = _start(runtime, launch)


def pending(runtime: Runtime) -> bool:
    """Whether `runtime`'s probe was started ahead and has not been collected yet."""
    return runtime in _ahead


def collect(runtime: Runtime, launch: Launch, timeout_s: float = 300, identity: str | None = None) -> dict[str, Any]:
    """Probe inside `runtime` with `launch`'s env, workdir and binds; never raises for a failed probe."""
    record: dict[str, Any] = {"runtime": runtime.name, "identity": identity or runtime.identity()}
    try:
        probe = _ahead.pop(runtime, None) or _start(runtime, launch)
    except OSError as error:
        return {**record, "probe_error": f"{type(error).__name__}: {error}"}
    try:
        stdout, stderr = probe.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired as error:
        probe.kill()
        probe.communicate()
        return {**record, "probe_error": f"{type(error).__name__}: {error}"}
    record["probe_exit_code"] = probe.returncode
    try:
        record["probe"] = json.loads(stdout)
    except json.JSONDecodeError:
        record["probe_error"] = (stderr or stdout)[-2000:]
    return record


def collect_once(cache_dir: Path, runtime: Runtime, launch: Launch, identity: str) -> dict[str, Any]:
    """`collect`, run once per runtime identity and shared (through `cache_dir`) by that backend's jobs
    (remembered in this process too, so the supervisor's hundreds of jobs neither lock nor read it)."""
    record_path = cache_dir / f"{hashlib.sha1(identity.encode()).hexdigest()[:16]}.json"
    if record_path in _collected:
        return _collected[record_path]
    cache_dir.mkdir(parents=True, exist_ok=True)
    with locked(record_path.with_suffix(".lock")):
        if record_path.exists():
            record = json.loads(record_path.read_text())
        else:
            record = collect(runtime, launch, identity=identity)
            write_json(record_path, record)
    _collected[record_path] = record
    return record
