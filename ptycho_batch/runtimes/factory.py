"""Choosing a runtime for a backend: the campaign's `runtime:` key, or `submit --runtime NAME` for all."""

from __future__ import annotations

from pathlib import Path

from ptycho_batch.campaign.plan import Plan
from ptycho_batch.campaign.spec import Backend, project_path
from ptycho_batch.runtimes.base import Runtime
from ptycho_batch.runtimes.existing import PythonRuntime
from ptycho_batch.runtimes.host import HostRuntime
from ptycho_batch.runtimes.venv import VenvRuntime
from ptycho_batch.util.errors import RuntimeUnavailable

CONTAINER_ORDER = ("apptainer", "podman", "docker", "charliecloud")


def resolve_name(backend_name: str, backend: Backend, override: str | None, base_dir: Path) -> str:
    """The concrete runtime for a backend; `auto` takes the first container runtime whose tool and
    image are usable here (apptainer, podman, docker, charliecloud), else venv (or host)."""
    name = override or backend.runtime
    if name != "auto":
        return name
    if backend.python:  # an environment the user named wins over building one
        return "python"
    for candidate in CONTAINER_ORDER:
        try:
            make_runtime(candidate, backend_name, backend, base_dir).prepare()
        except RuntimeUnavailable:
            continue
        return candidate
    return "venv" if backend.requirements else "host"


def make_runtime(name: str, backend_name: str, backend: Backend, base_dir: Path) -> Runtime:
    """Build the runtime object; `base_dir` is the campaign file's directory (relative paths start there)."""
    if name == "host":
        return HostRuntime()
    if name == "python":
        if not backend.python:
            raise RuntimeUnavailable(f"backend {backend_name!r}: runtime python needs 'python' (an interpreter)")
        return PythonRuntime(backend.python)
    if name == "venv":
        if not backend.requirements:
            raise RuntimeUnavailable(f"backend {backend_name!r}: runtime venv needs 'requirements'")
        return VenvRuntime(project_path(backend.requirements, base_dir), label=backend_name)
    from ptycho_batch.runtimes import images as containers

    reference = backend.image or containers.default_reference(backend_name)
    if name in ("podman", "docker"):
        from ptycho_batch.runtimes.docker import DockerRuntime
        from ptycho_batch.runtimes.podman import PodmanRuntime

        engine = PodmanRuntime if name == "podman" else DockerRuntime
        return engine(reference, network=backend.network)
    if name == "apptainer":
        from ptycho_batch.runtimes.apptainer import ApptainerRuntime

        sif = Path(reference) if reference.endswith(".sif") else containers.sif_path(reference)
        return ApptainerRuntime(project_path(str(sif), base_dir), network=backend.network)
    if name == "charliecloud":
        from ptycho_batch.runtimes.charliecloud import CharliecloudRuntime

        return CharliecloudRuntime(containers.charliecloud_dir(reference))
    raise RuntimeUnavailable(f"backend {backend_name!r}: unknown runtime {name!r}")



def runtimes_for_plan(plan: Plan) -> dict[str, Runtime]:
    """Rebuild a plan's runtimes where the plan is executed (e.g. on a cluster node)."""
    base_dir = Path(plan.source).parent
    return {name: make_runtime(plan.runtimes[name], name, spec, base_dir) for name, spec in plan.backends.items()}
