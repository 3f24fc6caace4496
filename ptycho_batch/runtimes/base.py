"""The runtime interface: how one job's command is launched (host, venv, a container...).

A runtime never decides *what* runs or *which* environment the job sees: the job runner hands it a
`Launch` (resolved argv, the firewalled env, the directories the job touches) and the runtime answers
with the argv and the env of the process to start. Container runtimes pass `launch.env` explicitly
into the container, so the firewall holds inside it too.
"""

from __future__ import annotations

import shutil
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Launch:
    """One job as a runtime sees it."""

    argv: list[str]
    env: dict[str, str]
    workdir: Path
    binds: list[Path] = field(default_factory=list)
    gpus: int = 0


class Runtime(ABC):
    """One way of launching a job; subclasses are small and return argv lists, never shell strings."""

    name: str = ""
    sees_package = True   # ptycho_batch is importable inside (else the probe runs as a file)

    def prepare(self) -> None:
        """Make the runtime usable (build a venv, check an image); idempotent and cached."""

    @abstractmethod
    def argv(self, launch: Launch) -> list[str]:
        """The argv of the process that runs `launch.argv`."""

    def env(self, launch: Launch) -> dict[str, str]:
        """The environment of that process: by default exactly the job's firewalled env."""
        return dict(launch.env)

    @abstractmethod
    def identity(self) -> str:
        """What identifies this runtime in cache keys (a venv hash, an image digest)."""


def on_path(argv: list[str], path: str) -> list[str]:
    """`argv` with a bare program name resolved along `path` (the environment's bin first)."""
    if "/" not in argv[0]:
        found = shutil.which(argv[0], path=path)
        if found:
            return [found, *argv[1:]]
    return list(argv)
