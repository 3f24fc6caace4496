"""Choosing a runtime for a backend: the campaign's `runtime:` key, or `submit --runtime NAME` for all."""

from __future__ import annotations

from pathlib import Path

from ptycho_batch.runtimes.base import Runtime, RuntimeUnavailable
from ptycho_batch.runtimes.host import HostRuntime
from ptycho_batch.runtimes.venv import VenvRuntime
from ptycho_batch.plan import Plan
from ptycho_batch.spec import Backend


def resolve_name(backend: Backend, override: str | None) -> str:
    """The concrete runtime name (`auto` resolved) for a backend."""
    name = override or backend.runtime
    if name == "auto":
        return "venv" if backend.requirements else "host"
    return name


def make_runtime(name: str, backend_name: str, backend: Backend, base_dir: Path) -> Runtime:
    """Build the runtime object; `base_dir` is the campaign file's directory (relative paths start there)."""
    if name == "host":
        return HostRuntime()
    if name == "venv":
        if not backend.requirements:
            raise RuntimeUnavailable(f"backend {backend_name!r}: runtime venv needs 'requirements'")
        return VenvRuntime(_project_path(backend.requirements, base_dir), label=backend_name)
    raise RuntimeUnavailable(f"backend {backend_name!r}: runtime {name!r} is not available in this build")


def _project_path(relative: str, base_dir: Path) -> Path:
    """Campaign paths resolve against the campaign's directory, then the project root above `jobs/`."""
    for root in (base_dir, *base_dir.parents):
        candidate = root / relative
        if candidate.exists():
            return candidate.resolve()
    return (base_dir / relative).resolve()


def runtimes_for_plan(plan: Plan) -> dict[str, Runtime]:
    """Rebuild a plan's runtimes where the plan is executed (e.g. on a cluster node)."""
    base_dir = Path(plan.source).parent
    return {name: make_runtime(plan.runtimes[name], name, spec, base_dir) for name, spec in plan.backends.items()}
