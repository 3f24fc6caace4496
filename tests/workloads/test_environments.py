"""Each backend environment holds its own framework and not the other one."""

from __future__ import annotations

import re

import pytest
from workload_helpers import ROOT, run_backend

FRAMEWORKS = {"torch": "torch", "tf": "tensorflow"}


@pytest.mark.slow
@pytest.mark.parametrize("backend", sorted(FRAMEWORKS))
def test_backend_environment_cannot_import_the_other_framework(backend, backend_python):
    python = backend_python(backend)
    (foreign,) = set(FRAMEWORKS.values()) - {FRAMEWORKS[backend]}
    own = run_backend(python, "-c", f"import {FRAMEWORKS[backend]}, numpy, h5py; print('ok')")
    assert own.stdout.strip() == "ok"
    other = run_backend(python, "-c", f"import {foreign}", check=False)
    assert other.returncode == 1 and f"ModuleNotFoundError: No module named '{foreign}'" in other.stderr


def test_workloads_and_runner_do_not_import_each_other():
    """The runner never imports the workloads (no numpy/torch/TF in its env); they import only themselves
    from ptycho_batch (the backend envs hold no pydantic, rich or yaml)."""
    package = ROOT / "ptycho_batch"
    imports = re.compile(r"^\s*(?:from|import)\s+(ptycho_batch(?:\.\w+)*|pydantic|rich|yaml)\b", re.M)
    assert not imports.findall((package / "__init__.py").read_text()), "the workloads import ptycho_batch/__init__.py"
    for path in package.rglob("*.py"):
        inside = "workloads" in path.relative_to(package).parts
        for name in imports.findall(path.read_text()):
            if inside:
                assert name.startswith("ptycho_batch.workloads"), f"{path} imports {name}"
            else:
                assert not name.startswith("ptycho_batch.workloads"), f"{path} imports {name}"
