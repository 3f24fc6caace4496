"""The `host` runtime: the job's command runs directly on this machine, with the firewalled env.

Its identity names the `python` a job would find on this PATH (path, version, installed distributions),
not ptybatch's own interpreter: activating another environment changes the cache key.
"""

from __future__ import annotations

import os
import platform

from ptycho_batch.runtimes.base import Launch, Runtime
from ptycho_batch.runtimes.existing import find_python, interpreter_identity


class HostRuntime(Runtime):
    name = "host"
    sees_package = False

    def argv(self, launch: Launch) -> list[str]:
        return list(launch.argv)

    def identity(self) -> str:
        python = find_python("python", os.environ.get("PATH")) or find_python("python3", os.environ.get("PATH"))
        return f"host:{platform.node()}:{interpreter_identity(python) if python else 'no-python'}"
