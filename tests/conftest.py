"""Shared test fixtures.

Tests that need a real capability (slurm, podman, charliecloud, torch, tf, tmux, browser) use `requires(...)`:
they skip when the capability is absent, unless `PTYBATCH_REQUIRE` names it, in which case its absence
is a failure (CI sets PTYBATCH_REQUIRE so that nothing silently skips there).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ptycho_batch.runtimes.venv import ensure_venv

ROOT = Path(__file__).resolve().parents[1]


def required_capabilities() -> set[str]:
    return {c.strip() for c in os.environ.get("PTYBATCH_REQUIRE", "").split(",") if c.strip()}


def requires(capability: str, available: bool, why: str = "") -> None:
    """Skip the calling test when `capability` is unavailable, or fail when PTYBATCH_REQUIRE names it."""
    if available:
        return
    message = f"{capability} unavailable{': ' + why if why else ''}"
    if capability in required_capabilities():
        pytest.fail(f"{message} (PTYBATCH_REQUIRE names it)")
    pytest.skip(message)


def _framework_wanted(backend: str) -> bool:
    return backend in required_capabilities() or os.environ.get("PTYBATCH_BUILD_VENVS") == "1"


@pytest.fixture(scope="session")
def backend_python():
    """`backend_python("torch")` -> the python of that backend's venv (built once, cached).

    Building a framework venv takes minutes, so outside CI it happens only when PTYBATCH_REQUIRE names
    the backend or PTYBATCH_BUILD_VENVS=1, or when the venv is already in the cache.
    """

    def get(backend: str) -> Path:
        from ptycho_batch.runtimes.venv import venv_key
        from ptycho_batch.util.paths import cache_dir

        requirements = ROOT / "containers" / backend / "requirements.txt"
        cached = cache_dir() / "venvs" / f"{backend}-{venv_key(requirements)}" / "ptybatch-ready"
        requires(backend, cached.exists() or _framework_wanted(backend),
                 "set PTYBATCH_BUILD_VENVS=1 to build its venv")
        return ensure_venv(requirements, backend) / "bin" / "python"

    return get

# the upstream stand-in's own tests are run by campaigns under test, never collected here
collect_ignore = ["upstream_standin"]


@pytest.fixture
def slurm() -> None:
    """A test on the SLURM dev cluster: skips without one (fails in CI, where PTYBATCH_REQUIRE names slurm)."""
    from ptycho_batch.executors.slurm.cluster import sbatch_available

    requires("slurm", sbatch_available(), "start slurm/start-dev-cluster.sh DIR, then `source DIR/env.sh`")
