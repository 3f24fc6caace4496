"""What every container runtime shares, and the `run` argv that podman and docker have in common.

Inside a container the host's PATH, HOME and TMPDIR make no sense: the image's PATH (its venv first)
and /tmp are kept, and HOME is the job's workdir (bind-mounted, writable, under the run's <out>), so
framework caches land with the job. Every other variable of the job's firewalled env is passed by *name*
(`--env NAME`): the
engine reads the value from its own environment, which is that env, so values never appear in argv
and nothing of the submitter's environment reaches the container.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from abc import abstractmethod
from pathlib import Path

from ptycho_batch.runtimes.base import Launch, Runtime
from ptycho_batch.util.errors import RuntimeUnavailable

CONTAINER_OWN_ENV = frozenset({"PATH", "HOME", "TMPDIR"})


def forwarded_names(env: dict[str, str]) -> list[str]:
    """Names of the job variables passed into a container (all but those the container owns)."""
    return sorted(name for name in env if name not in CONTAINER_OWN_ENV)


def mounted_paths(launch: Launch) -> list[Path]:
    """The workdir then the binds, each once; mounted at the same path inside."""
    seen: dict[str, Path] = {}
    for path in (launch.workdir, *launch.binds):
        if ":" in str(path) or "," in str(path):
            raise RuntimeUnavailable(f"cannot bind-mount {path}: ':' and ',' are separators for the runtimes")
        seen.setdefault(str(path), path)
    return list(seen.values())


def find_executable(program: str, explicit: str | None) -> str:
    """An absolute path, so that the job's PATH never decides which engine runs."""
    found = explicit or shutil.which(program)
    if not found:
        raise RuntimeUnavailable(f"{program} not found on PATH")
    return found


def inspect_image_id(engine: str, image: str) -> str:
    """The image ID (`sha256:` digest of the image config, hence of its content) in the engine's store."""
    result = subprocess.run([engine, "image", "inspect", "--format", "{{.Id}}", image],
                            capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if result.returncode or not result.stdout.strip():
        raise RuntimeUnavailable(f"image {image} is not in the {Path(engine).name} store "
                                 f"(build it: ptybatch containers build): {result.stderr.strip()}")
    digest = result.stdout.strip().splitlines()[0]
    return digest if digest.startswith("sha256:") else f"sha256:{digest}"


def submitter() -> str:
    return f"{os.getuid()}:{os.getgid()}"


class OciEngineRuntime(Runtime):
    """`ENGINE run --rm --init` with explicit env, same-path binds, the submitter's uid:gid, no pulls."""

    engine = ""

    def __init__(self, image: str, *, network: bool = False, user: str | None = None,
                 executable: str | None = None) -> None:
        self.image = image
        self.network = network
        self.user = user or submitter()
        self._executable = executable
        self._identity: str | None = None

    @property
    def executable(self) -> str:
        return find_executable(self.engine, self._executable)

    @abstractmethod
    def gpu_args(self) -> list[str]:
        """How this engine exposes the host's GPUs."""

    def engine_args(self) -> list[str]:
        """Engine-specific `run` options."""
        return []

    def argv(self, launch: Launch) -> list[str]:
        argv = [self.executable, "run", "--rm", "--init", "--pull=never", "--user", self.user]
        if not self.network:
            argv += ["--network", "none"]
        for path in mounted_paths(launch):
            argv += ["-v", f"{path}:{path}"]
        argv += ["-w", str(launch.workdir)]
        for name in forwarded_names(launch.env):
            argv += ["--env", name]
        argv += ["--env", f"HOME={launch.workdir}"]
        if launch.gpus > 0:
            argv += self.gpu_args()
        return [*argv, *self.engine_args(), self.image, *launch.argv]

    def prepare(self) -> None:
        self.identity()

    def identity(self) -> str:
        if self._identity is None:
            self._identity = f"{self.name}:{inspect_image_id(self.executable, self.image)}"
        return self._identity
