"""The shipped campaigns: all validate, (phase C1 and B3 run end to end in tests/test_campaigns.py)."""

from __future__ import annotations

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
