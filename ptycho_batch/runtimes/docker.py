"""The `docker` runtime: a Docker engine; GPUs through the NVIDIA container toolkit's `--gpus`."""

from __future__ import annotations

from ptycho_batch.runtimes.oci import OciEngineRuntime


class DockerRuntime(OciEngineRuntime):
    name = "docker"
    engine = "docker"

    def gpu_args(self) -> list[str]:
        return ["--gpus", "all"]
