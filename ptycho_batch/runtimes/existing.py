"""The `python` runtime: an environment the user already has (a venv, conda env or module), named by its
interpreter; and the identity of any interpreter, shared with the `host` runtime.

The job runs as in that environment activated: the interpreter's directory first on PATH. Its identity is
the interpreter's path and version plus a digest of its installed distributions (name==version), so
installing or upgrading a package there changes the cache key of the jobs that run in it.

Asking an interpreter costs a start of it (a third of a second through a pyenv shim), so the answer is
kept in `<cache>/interpreters/`, stamped with what it depends on: the interpreter file, its pyvenv.cfg and
every directory on its sys.path (installing or removing a distribution changes its directory), keyed by the
path and the variables that move sys.path. A stamp that differs asks again. A script standing in for the
interpreter (a pyenv shim picks one per directory) is asked once per process, never remembered on disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

from ptycho_batch.runtimes.base import Launch, Runtime, on_path
from ptycho_batch.util.errors import RecordError, RuntimeUnavailable
from ptycho_batch.util.fsio import write_json
from ptycho_batch.util.paths import cache_dir

_DESCRIBE = ("import sys, os, site, json, importlib.metadata as m; print(sys.version.split()[0]); "
             "print(json.dumps([os.path.realpath(sys.executable), os.path.join(sys.prefix, 'pyvenv.cfg'), "
             "site.getusersitepackages(), *sys.path])); "
             "print('\\n'.join(sorted({(d.metadata['Name'] or '?') + '==' + d.version for d in m.distributions()})))")
KEY_VARIABLES = ("HOME", "PYTHONPATH", "PYTHONHOME", "PYTHONNOUSERSITE", "PYTHONUSERBASE", "PYTHONSAFEPATH")

_known: dict[str, str] = {}
_asking = threading.Lock()


def interpreter_identity(python: str) -> str:
    """`<path>:<version>:<digest of installed distributions>`: remembered, else asked of the interpreter
    (once per process even when jobs start together)."""
    with _asking:
        if python not in _known:
            _known[python] = _remembered(python) or _ask(python)
        return _known[python]


def _record_path(python: str) -> Path:
    key = json.dumps([python, *(os.environ.get(name) for name in KEY_VARIABLES)])
    return cache_dir() / "interpreters" / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"


def _stamp(path: str) -> list[int] | None:
    """What changes when the file or directory is replaced, rewritten or gains/loses an entry."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino]


def _stamps(python: str, watched: list[str]) -> dict[str, list[int] | None]:
    return {path: _stamp(path) for path in dict.fromkeys([python, *watched])}


def _is_script(python: str) -> bool:
    try:
        with open(python, "rb") as handle:
            return handle.read(2) == b"#!"
    except OSError:
        return True


def _remembered(python: str) -> str | None:
    try:
        record = json.loads(_record_path(python).read_text())
        identity, stamps = record["identity"], record["stamps"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(identity, str) or not isinstance(stamps, dict) or _stamps(python, list(stamps)) != stamps:
        return None
    return identity


def _ask(python: str) -> str:
    """Run the interpreter once; remember its answer unless it is a script (whose choice may change)."""
    try:
        result = subprocess.run([python, "-c", _DESCRIBE], capture_output=True, text=True, timeout=120,
                                stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise RuntimeUnavailable(f"python {python}: cannot run it ({error})") from None
    if result.returncode != 0:
        raise RuntimeUnavailable(f"python {python}: exit {result.returncode}: {result.stderr.strip()[-300:]}")
    version, _, rest = result.stdout.partition("\n")
    watched, _, distributions = rest.partition("\n")
    digest = hashlib.sha256(distributions.encode()).hexdigest()[:12]
    identity = f"{python}:{version.strip()}:{digest}"
    if not _is_script(python):
        try:
            stamps = _stamps(python, [p for p in json.loads(watched) if isinstance(p, str)])
            _record_path(python).parent.mkdir(parents=True, exist_ok=True)
            write_json(_record_path(python), {"python": python, "identity": identity, "stamps": stamps})
        except (ValueError, OSError, RecordError):
            pass  # not remembered: asked again next time
    return identity


def find_python(name: str, path: str | None = None) -> str | None:
    """An interpreter named by path or looked up on PATH, as an absolute path (symlinks kept: a venv's
    python is a link to the base interpreter, but it is the venv that counts)."""
    found = shutil.which(name, path=path)
    return str(Path(found).absolute()) if found else None


class PythonRuntime(Runtime):
    """Runs the job with an existing interpreter's directory first on PATH."""

    name = "python"
    sees_package = False

    def __init__(self, python: str) -> None:
        self.python = python

    @property
    def bindir(self) -> str:
        return str(Path(self.interpreter).parent)

    @property
    def interpreter(self) -> str:
        found = find_python(self.python)
        if found is None:
            raise RuntimeUnavailable(f"python {self.python}: not found (give a path to an environment's "
                                     "bin/python, or activate it)")
        return found

    def prepare(self) -> None:
        interpreter_identity(self.interpreter)

    def env(self, launch: Launch) -> dict[str, str]:
        env = dict(launch.env)
        env["PATH"] = self.bindir + (":" + env["PATH"] if env.get("PATH") else "")
        if (Path(self.bindir).parent / "pyvenv.cfg").is_file():
            env["VIRTUAL_ENV"] = str(Path(self.bindir).parent)
        return env

    def argv(self, launch: Launch) -> list[str]:
        return on_path(launch.argv, self.env(launch)["PATH"])

    def identity(self) -> str:
        return f"python:{interpreter_identity(self.interpreter)}"
