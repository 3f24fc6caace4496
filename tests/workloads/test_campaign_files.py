"""The shipped campaigns: all validate, and phase C1 runs end to end on this machine through `ptybatch submit`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from workload_helpers import ROOT

CAMPAIGNS = ["jobs/phase_c1_gs1.yaml", "jobs/phase_b3_gs2.yaml", "jobs/ptychopinn/phase_c1_gs1.yaml"]


def ptybatch(*argv: str, timeout: int = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ptycho_batch", *argv], capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout)


@pytest.mark.parametrize("campaign", CAMPAIGNS)
def test_campaign_file_validates(campaign):
    done = ptybatch("validate", campaign)
    assert done.returncode == 0 and f"{campaign}: OK" in done.stdout, done.stdout + done.stderr


@pytest.mark.slow
def test_phase_c1_runs_end_to_end(backend_python, tmp_path):
    backend_python("torch"), backend_python("tf")  # both environments ready (or the test skips / fails in CI)
    done = ptybatch("submit", "phase_c1_gs1", "--out", str(tmp_path), "--executor", "local", timeout=900)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    inventory = json.loads((tmp_path / "phase_c1_gs1" / "analysis" / "artifact_inventory.json").read_text())
    jobs = {job["name"]: job for job in inventory["jobs"]}
    assert {name: job["state"] for name, job in jobs.items()} == {name: "COMPLETED" for name in (
        "data", "torch_train", "torch_infer", "tf_integration", "tf_train", "parity_torch", "parity_tf")}
    assert jobs["torch_infer"]["metrics"]["intensity_scale"] == pytest.approx(9.882118, rel=1e-6)
    assert jobs["torch_infer"]["metrics"]["amplitude.psnr"] > 19
    assert jobs["parity_tf"]["metrics"]["parity.max_rel"] < 1e-4
    assert len(jobs["torch_train"]["metrics"]["bundle.sha1"]) == 40
    assert (tmp_path / "scaling_alignment" / "phase_c1_gs1" / "analysis" / "torch_patch_grid_gs1.png").exists()
    assert (tmp_path / "tf_baseline" / "phase_c1_gs1" / "green" / "pytest_tf_integration.log").exists()
