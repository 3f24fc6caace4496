"""The backend-side unit tests (ptycho_batch/workloads/tests) pass inside their environments, none skipped."""

from __future__ import annotations

import re

import pytest
from workload_helpers import ROOT, run_backend

TESTS = ROOT / "ptycho_batch" / "workloads" / "tests"
SUITES = {
    "torch": ["test_numpy_parts.py", "test_torch_parts.py"],
    "tf": ["test_tf_parts.py", "test_tf_integration.py"],
}


@pytest.mark.slow
@pytest.mark.parametrize("backend", sorted(SUITES))
def test_backend_suite_passes_in_its_environment(backend, backend_python, tmp_path):
    files = [str(TESTS / name) for name in SUITES[backend]]
    done = run_backend(backend_python(backend), "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                       "--basetemp", str(tmp_path / "pytest"), *files, check=False)
    summary = done.stdout.strip().splitlines()[-1]
    assert done.returncode == 0, done.stdout[-4000:]
    assert re.search(r"\d+ passed", summary) and "skipped" not in summary, summary
