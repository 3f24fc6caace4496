"""The shipped seeds campaign end to end with the real torch and TensorFlow workloads: three seeds per backend,
a seed-aware verdict for every parity metric, report.html in a real browser (with PTYBATCH_UPDATE_DOCS=1 its
screenshot replaces README's docs/report.png; otherwise it stays in the test's folder), and `compare` of the GS1 and GS2 runs (phase C2) over the seeds."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import browser
import pytest
from conftest import ROOT, requires
from helpers import ptybatch

SEEDS = ROOT / "jobs" / "phase_c1_gs1_seeds.yaml"
VERDICTS = {"equivalent", "different", "inconclusive"}


def _submit(out: Path, *extra: str) -> str:
    started = time.monotonic()
    result = ptybatch("submit", str(SEEDS), "--out", str(out), *extra, cwd=ROOT, timeout=1800)
    print(f"seeds campaign {' '.join(extra) or 'gridsize 1'} took {time.monotonic() - started:.0f}s")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return json.loads(ptybatch("status", str(SEEDS), "--out", str(out), "--json", cwd=ROOT).stdout)["run_id"]


@pytest.fixture(scope="module")
def gs1(backend_python, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    backend_python("torch")
    backend_python("tf")
    out = tmp_path_factory.mktemp("seeds") / "reports"
    return out, _submit(out)


@pytest.fixture(scope="module")
def gs2(gs1: tuple[Path, str]) -> str:
    return _submit(gs1[0], "--set", "gridsize=2")


def test_every_parity_metric_has_a_seed_aware_verdict(gs1: tuple[Path, str]) -> None:
    out, _ = gs1
    analysis = out / "phase_c1_seeds" / "analysis"
    data = json.loads((analysis / "artifact_inventory.json").read_text())
    metrics = {"intensity_scale", "loss", "test_loss", "amplitude.psnr", "amplitude.ssim"}
    assert {row["metric"] for row in data["parity"]} == metrics
    for row in data["parity"]:
        assert row["verdict"] in VERDICTS, row
        assert row["interval"]["left"]["n"] == row["interval"]["right"]["n"] == 3, row
    assert next(r for r in data["parity"] if r["metric"] == "intensity_scale")["verdict"] == "equivalent"
    markdown = (analysis / "artifact_inventory.md").read_text()
    assert "Welch's t interval" in markdown and "(n=3)" in markdown.split("## Parity")[1]
    html = (analysis / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 12, "patch grid and amplitude of 3 seeds x 2 backends"
    assert (analysis / "report.html").stat().st_size < 5 * 1024 * 1024, "a few MB at most"
    svg = (analysis / "loss_curves.svg").read_text()
    assert all(f"{job}[seed={seed}]" in svg for job in ("torch_train", "tf_train") for seed in (1, 2, 3))


def test_seeds_report_in_a_real_browser(gs1: tuple[Path, str]) -> None:
    requires("browser", browser.available(), "apt-get install chromium chromium-driver; pip install selenium")
    shot = ROOT / "docs" / "report.png" if os.environ.get("PTYBATCH_UPDATE_DOCS") else gs1[0] / "report.png"
    seen = browser.check_report(gs1[0] / "phase_c1_seeds" / "analysis" / "report.html", shot)
    assert shot.read_bytes()[:4] == b"\x89PNG"
    assert len(seen["images"]) == 12 and "POLICY-001" in str(seen["verdict"])


def test_compare_gs1_with_gs2_over_seeds(gs1: tuple[Path, str], gs2: str) -> None:
    out, first = gs1
    runs = out / ".ptybatch" / "phase_c1_gs1_seeds"
    result = ptybatch("compare", str(runs / first), str(runs / gs2), "--metrics", "amplitude.*", "loss", cwd=ROOT)
    assert result.returncode == 0, result.stderr
    written = out / "phase_c1_seeds" / "analysis" / f"compare_{first}_vs_{gs2}.md"
    data = json.loads((written.parent / f"compare_{first}_vs_{gs2}.json").read_text())
    assert data["param_changes"] == ["gridsize: 1 → 2"]
    rows = {(r["job"], r["metric"]): r for r in data["rows"]}
    for job in ("torch_train", "tf_train"):
        for metric in ("amplitude.psnr", "amplitude.ssim", "loss"):
            row = rows[(job, metric)]
            assert row["verdict"] in VERDICTS and row["interval"]["left"]["n"] == 3, row
    assert "Welch's t interval" in written.read_text()
    assert (written.parent / f"compare_{first}_vs_{gs2}.html").read_text().count("<tr>") >= 6
