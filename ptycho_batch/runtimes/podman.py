"""The `podman` runtime: rootful or rootless podman; GPUs through CDI (nvidia-container-toolkit)."""

from __future__ import annotations

from ptycho_batch.runtimes.oci import OciEngineRuntime


class PodmanRuntime(OciEngineRuntime):
    name = "podman"
    engine = "podman"

    def gpu_args(self) -> list[str]:
        return ["--device", "nvidia.com/gpu=all"]

    def engine_args(self) -> list[str]:
        # podman copies the host's http(s)_proxy variables into containers unless told not to
        return ["--http-proxy=false"]
