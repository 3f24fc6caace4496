"""The `venv` runtime: one virtual environment per backend, built from its requirements file.

Environments are cached under `<cache>/venvs/<backend>-<key>` (the cache is $PTYBATCH_CACHE, else
~/.cache/ptybatch), keyed by a hash of the requirements text and the Python version only, so every
checkout with the same requirements shares them (a framework venv is gigabytes), and they are rebuilt
when the file changes. The package itself reaches a job through PYTHONPATH set to a directory holding a
single symlink to this checkout's `ptycho_batch/` (`<cache>/src/<checkout hash>/`): the workloads import
from the live source and nothing else of the runner's site-packages leaks into the backend's environment.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from ptycho_batch.runtimes.base import Launch, Runtime, on_path
from ptycho_batch.util.errors import RuntimeUnavailable
from ptycho_batch.util.fsio import is_locked, locked
from ptycho_batch.util.paths import PACKAGE_DIR, cache_dir
from ptycho_batch.util.progress import spinner

_READY = "ptybatch-ready"


def venv_key(requirements: Path) -> str:
    """Hash of what determines the environment's content."""
    digest = hashlib.sha256()
    digest.update(requirements.read_bytes())
    digest.update(sys.version.encode())
    return digest.hexdigest()[:16]


def package_path() -> Path:
    """A directory holding only a `ptycho_batch` symlink to this checkout's package (one per checkout)."""
    folder = cache_dir() / "src" / hashlib.sha256(str(PACKAGE_DIR).encode()).hexdigest()[:16]
    link = folder / PACKAGE_DIR.name
    if not (link.is_symlink() and link.resolve() == PACKAGE_DIR):
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{PACKAGE_DIR.name}.{os.getpid()}.tmp"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(PACKAGE_DIR, target_is_directory=True)
        tmp.replace(link)
    return folder


def ensure_venv(requirements: Path, label: str = "") -> Path:
    """Return the root of a ready environment for `requirements`, building it once under a lock."""
    requirements = requirements.resolve()
    if not requirements.is_file():
        raise RuntimeUnavailable(f"requirements file not found: {requirements}")
    name = f"{label or requirements.parent.name}-{venv_key(requirements)}"
    root = cache_dir() / "venvs" / name
    root.parent.mkdir(parents=True, exist_ok=True)
    with locked(root.parent / f"{name}.lock"):
        if not (root / _READY).exists():
            _build(root, requirements)
        os.utime(root / _READY)  # its time says when a run last used it (`ptybatch gc --venvs`)
    return root


def cached_venvs() -> list[tuple[Path, float, bool]]:
    """Every backend venv in the cache: (root, last used, being built right now)."""
    folder = cache_dir() / "venvs"
    found = []
    for ready in sorted(folder.glob(f"*/{_READY}")) if folder.is_dir() else ():
        root = ready.parent
        found.append((root, ready.stat().st_mtime, is_locked(folder / f"{root.name}.lock")))
    return found


def _build(root: Path, requirements: Path) -> None:
    shutil.rmtree(root, ignore_errors=True)
    log = root.with_suffix(".build.log")
    steps = [
        [sys.executable, "-m", "venv", str(root)],
        [str(root / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check",
         "-r", str(requirements)],
    ]
    with open(log, "w") as out, spinner(f"building venv {root.name} from {requirements.name}"):
        for step in steps:
            out.write(f"$ {' '.join(step)}\n")
            out.flush()
            if subprocess.run(step, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL).returncode:
                tail = log.read_text(errors="replace").splitlines()[-15:]
                raise RuntimeUnavailable(f"building venv {root} failed (log: {log}):\n" + "\n".join(tail))
    (root / _READY).write_text(requirements.read_text())


class VenvRuntime(Runtime):
    """Runs the job with the backend's venv first on PATH, like an activated environment."""

    name = "venv"

    def __init__(self, requirements: Path, label: str = "") -> None:
        self.requirements = requirements
        self.label = label
        self._root: Path | None = None

    @property
    def root(self) -> Path:
        if self._root is None:
            self._root = ensure_venv(self.requirements, self.label)
        return self._root

    def prepare(self) -> None:
        _ = self.root

    def env(self, launch: Launch) -> dict[str, str]:
        env = dict(launch.env)
        bindir = str(self.root / "bin")
        env["PATH"] = bindir + (":" + env["PATH"] if env.get("PATH") else "")
        env["VIRTUAL_ENV"] = str(self.root)
        env["PYTHONPATH"] = str(package_path())
        return env

    def argv(self, launch: Launch) -> list[str]:
        return on_path(launch.argv, self.env(launch)["PATH"])

    def identity(self) -> str:
        return f"venv:{venv_key(self.requirements.resolve())}"
