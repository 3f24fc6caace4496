"""An interpreter's identity is asked of it once and remembered in the cache, until what it depends on changes:
a distribution installed into its environment, or another interpreter at the same path. A script standing in
for an interpreter (a pyenv shim) is asked once per process and never remembered on disk."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ptycho_batch.runtimes import existing
from ptycho_batch.runtimes.existing import interpreter_identity


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PTYBATCH_CACHE", str(tmp_path / "cache"))
    existing._known.clear()   # this process's memory: each step below starts as a new process would
    yield tmp_path / "cache"
    existing._known.clear()


def fresh(python: str) -> str:
    existing._known.clear()
    return interpreter_identity(python)


def test_identity_is_remembered_until_the_environment_or_the_interpreter_changes(tmp_path: Path, cache: Path) -> None:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "env")], check=True)
    python = str(tmp_path / "env" / "bin" / "python")
    first = interpreter_identity(python)
    assert first.startswith(f"{python}:{sys.version.split()[0]}:")
    record = next((cache / "interpreters").iterdir())
    record.write_text(record.read_text().replace(first, "remembered"))
    assert fresh(python) == "remembered"   # not asked again: read from the cache

    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    dist = site / "fake_dist-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-dist\nVersion: 1.0\n")
    installed = fresh(python)
    assert installed not in (first, "remembered")   # asked again: a distribution appeared
    assert fresh(python) == installed

    link = Path(python)
    record = next((cache / "interpreters").iterdir())
    record.write_text(record.read_text().replace(installed, "stale"))
    link.unlink()
    link.symlink_to(tmp_path / "copied-python")
    (tmp_path / "copied-python").write_bytes(Path(os.path.realpath(sys.executable)).read_bytes())
    (tmp_path / "copied-python").chmod(0o755)
    assert fresh(python) != "stale"   # another interpreter file at the same path: asked again


def test_a_script_interpreter_is_asked_once_per_process_and_not_remembered(tmp_path: Path, cache: Path) -> None:
    calls = tmp_path / "calls"
    shim = tmp_path / "python"
    shim.write_text(f"#!/bin/sh\necho run >> {calls}\nexec {sys.executable} \"$@\"\n")
    shim.chmod(0o755)
    answers: list[str] = []
    threads = [threading.Thread(target=lambda: answers.append(interpreter_identity(str(shim)))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(answers)) == 1 and answers[0].startswith(f"{shim}:")
    assert calls.read_text().splitlines() == ["run"]   # four jobs starting together asked once
    assert not (cache / "interpreters").exists()
    fresh(str(shim))
    assert calls.read_text().splitlines() == ["run", "run"]   # a new process asks a script again
