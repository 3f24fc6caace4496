"""The `host` runtime: the job's command runs directly on this machine, with the firewalled env."""

from __future__ import annotations

import platform

from ptycho_batch.runtimes.base import Launch, Runtime


class HostRuntime(Runtime):
    name = "host"

    def argv(self, launch: Launch) -> list[str]:
        return list(launch.argv)

    def identity(self) -> str:
        return f"host:{platform.node()}:{platform.python_version()}"
