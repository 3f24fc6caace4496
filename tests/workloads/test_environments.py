"""Each backend environment holds its own framework and not the other one."""

from __future__ import annotations

import pytest
from workload_helpers import run_backend

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
