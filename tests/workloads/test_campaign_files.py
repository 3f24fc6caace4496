"""The shipped campaigns: all validate, (phase C1 and B3 run end to end in tests/test_campaigns.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from workload_helpers import ROOT

CAMPAIGNS = ["jobs/phase_c1_gs1.yaml", "jobs/phase_b3_gs2.yaml", "jobs/ptychopinn/phase_c1_gs1.yaml",
             "jobs/ptychopinn/phase_b3_gs2.yaml"]


def ptybatch(*argv: str, timeout: int = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ptycho_batch", *argv], capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout)


@pytest.mark.parametrize("campaign", CAMPAIGNS)
def test_campaign_file_validates(campaign, tmp_path):
    # the upstream campaigns read their data from {data_dir}: checked before anything runs, so give them some
    for name in ("train.npz", "test.npz"):
        (tmp_path / name).write_bytes(b"stand-in data")
    done = ptybatch("validate", campaign, "--set", f"data_dir={tmp_path}") if "ptychopinn" in campaign else \
        ptybatch("validate", campaign)
    assert done.returncode == 0 and f"{campaign}: OK" in done.stdout, done.stdout + done.stderr
