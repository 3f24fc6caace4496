"""The `python` runtime: an environment the user already has (a venv, conda env or module), named by its
interpreter; and the identity of any interpreter, shared with the `host` runtime.

The job runs as in that environment activated: the interpreter's directory first on PATH. Its identity is
the interpreter's path and version plus a digest of its installed distributions (name==version), so
installing or upgrading a package there changes the cache key of the jobs that run in it.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from functools import cache
from pathlib import Path

from ptycho_batch.runtimes.base import Launch, Runtime, on_path
from ptycho_batch.util.errors import RuntimeUnavailable

_DESCRIBE = ("import sys, importlib.metadata as m; print(sys.version.split()[0]); "
             "print('\\n'.join(sorted({(d.metadata['Name'] or '?') + '==' + d.version for d in m.distributions()})))")


@cache
def interpreter_identity(python: str) -> str:
    """`<path>:<version>:<digest of installed distributions>` (asked of the interpreter itself, once)."""
    try:
        result = subprocess.run([python, "-c", _DESCRIBE], capture_output=True, text=True, timeout=120,
                                stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise RuntimeUnavailable(f"python {python}: cannot run it ({error})") from None
    if result.returncode != 0:
        raise RuntimeUnavailable(f"python {python}: exit {result.returncode}: {result.stderr.strip()[-300:]}")
    version, _, distributions = result.stdout.partition("\n")
    digest = hashlib.sha256(distributions.encode()).hexdigest()[:12]
    return f"{python}:{version.strip()}:{digest}"


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
