"""The shipped campaigns end to end with the real torch and TensorFlow workloads (the main job of README).

Phase C1 (gridsize 1) in the venv runtime, phase B3 (gridsize 2) with TF's native translation under XLA
failing for real and its fallback rule rerunning it, `compare` between the two phases, and phase C1 again
inside the podman images.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import time
from pathlib import Path

import pytest
from conftest import ROOT, requires
from helpers import ptybatch

C1 = ROOT / "jobs" / "phase_c1_gs1.yaml"
B3 = ROOT / "jobs" / "phase_b3_gs2.yaml"


@pytest.fixture(scope="module")
def frameworks(backend_python) -> None:
    backend_python("torch")
    backend_python("tf")


@pytest.fixture(scope="module")
def phases(frameworks: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both phases submitted once into one output root (B3 with the failing native translation)."""
    out = tmp_path_factory.mktemp("phases") / "reports"
    started = time.monotonic()
    c1 = ptybatch("submit", str(C1), "--out", str(out), cwd=ROOT, timeout=1800)
    print(f"phase C1 took {time.monotonic() - started:.0f}s")
    assert c1.returncode == 0, c1.stdout[-4000:] + c1.stderr[-4000:]
    b3 = ptybatch("submit", str(B3), "--out", str(out), "--set", "translate=native", cwd=ROOT, timeout=1800)
    assert b3.returncode == 0, b3.stdout[-4000:] + b3.stderr[-4000:]
    return out


def _state(out: Path, campaign: str, job: str) -> dict:
    path = sorted((out / ".ptybatch" / campaign).glob("*/run.json"))[-1].parent / "jobs" / job / "state.json"
    return json.loads(path.read_text())


def test_phase_c1_inventory(phases: Path) -> None:
    inventory = (phases / "phase_c1_gs1" / "analysis" / "artifact_inventory.md").read_text()
    torch_dir, tf_dir = phases / "scaling_alignment" / "phase_c1_gs1", phases / "tf_baseline" / "phase_c1_gs1"
    train = _state(phases, "phase_c1_gs1", "torch_train")
    bundle_sha1 = train["metrics"]["bundle.sha1"]
    for expected in ("# Phase C1 — GS1 Artifact Inventory", "### `torch_train` (train)",
                     "✅ COMPLETED", "`patch_stats.var_zero_mean`", "`intensity_scale` = 9.88212",
                     f"SHA-1 `{bundle_sha1}`", "torch_patch_grid_gs1.png", "Both backends used the same simulated",
                     "POLICY-001", "## Next steps", "## Parity", "train_patch_stats_gs1.log"):
        assert expected in inventory, expected
    assert (torch_dir / "analysis" / "bundle_digest_torch_train.txt").read_text().startswith(bundle_sha1)
    quality = inventory.split("## Reconstruction quality")[1].split("\n## ")[0]
    for metric in ("amplitude.psnr", "amplitude.ssim", "phase.psnr", "phase.ssim"):
        row = next(line for line in quality.splitlines() if line.startswith(f"| `{metric}` |"))
        assert "`torch_infer`" in row and "`tf_train`" in row, row  # torch vs TF, side by side
    assert "| forward pass (`parity_tf`) | `parity.max_rel` |" in inventory
    assert "[provenance](../../tf_baseline/phase_c1_gs1/analysis/tf_train.provenance.json)" in inventory
    assert "**ptybatch:** 0.1.0 (commit `" in inventory
    assert (torch_dir / "analysis" / "torch_patch_grid_gs1.png").read_bytes()[:4] == b"\x89PNG"
    assert "Patch stats: mean=" in (torch_dir / "cli" / "train_patch_stats_gs1.log").read_text()
    twin = json.loads((phases / "phase_c1_gs1" / "analysis" / "artifact_inventory.json").read_text())
    assert {job["name"]: job["state"] for job in twin["jobs"]} == {name: "COMPLETED" for name in (
        "data", "torch_train", "torch_infer", "tf_integration", "tf_train", "parity_torch", "parity_tf")}
    infer = _state(phases, "phase_c1_gs1", "torch_infer")
    assert abs(infer["metrics"]["intensity_scale"] - 9.882118) < 1e-3 and infer["metrics"]["amplitude.psnr"] > 19
    assert "passed" in (tf_dir / "green" / "pytest_tf_integration.log").read_text()
    assert _state(phases, "phase_c1_gs1", "parity_tf")["metrics"]["parity.max_rel"] <= 1e-4
    env = json.loads((tf_dir / "analysis" / "tf_train.env.json").read_text())["env"]
    assert env["USE_XLA_TRANSLATE"] == "1" and "PYTHONPATH" not in env
    provenance = json.loads((tf_dir / "analysis" / "tf_train.provenance.json").read_text())
    assert provenance["runtime"] == "venv" and "tensorflow" in json.dumps(provenance["probe"]).lower()
    figure = torch_dir / "analysis" / "torch_recon_amplitude_gs1.png"
    width, height = struct.unpack(">II", figure.read_bytes()[16:24])
    assert width >= 1200 and height >= 400, "reconstruction, ground truth and difference side by side"


def test_phase_b3_native_translation_falls_back(phases: Path) -> None:
    tf_train = _state(phases, "phase_b3_gs2", "tf_train")
    assert tf_train["state"] == "COMPLETED" and tf_train["fallback"]
    assert [(a["state"], a["failure_class"]) for a in tf_train["attempts"]] == [("FAILED", "xla"), ("COMPLETED", None)]
    note = Path(tf_train["attempts"][0]["red_note"]).read_text()
    assert "ImageProjectiveTransformV3" in note
    inventory = (phases / "phase_b3_gs2" / "analysis" / "artifact_inventory.md").read_text()
    assert "COMPLETED via fallback (ImageProjectiveTransformV3 has no XLA kernel" in inventory
    assert "## Parity" in inventory and "**Overrides:** `--set translate=native`" in inventory
    section = inventory.split("### `tf_train`")[1].split("\n### ")[0]
    command = section.split("- **Command:** `")[1].split("`")[0]
    assert "--translate xla" in command, "the command shown is the one that produced the result"
    failed = next(line for line in section.splitlines() if line.startswith("  - #1 FAILED (xla)"))
    assert "--translate native" in failed, "the failed attempt is listed with its own command"
    assert "## Resolved by a fallback" in note and "tf_train_gs2.attempt2.log" in note
    assert (phases / "tf_baseline" / "phase_b3_gs2" / "cli" / "tf_train_gs2.attempt2.log").exists()


def test_compare_gs1_with_gs2(phases: Path) -> None:
    result = ptybatch("compare", str(phases / "phase_c1_gs1"), str(phases / "phase_b3_gs2"),
                      "--metrics", "patch_stats.*", "loss", cwd=ROOT)
    assert result.returncode == 0, result.stderr
    written = next((phases / "phase_b3_gs2" / "analysis").glob("compare_phase_c1_gs1_*_vs_phase_b3_gs2_*.md"))
    text = written.read_text()
    assert "| `torch_train` | `patch_stats.mean` |" in text and "| `tf_train` | `loss` |" in text


def _podman_images() -> bool:
    if not shutil.which("podman"):
        return False
    return all(subprocess.run(["podman", "image", "exists", f"localhost/ptybatch-{b}:latest"]).returncode == 0
               for b in ("torch", "tf"))


def test_phase_c1_in_podman_and_rebuild_invalidates_one_backend(tmp_path: Path) -> None:
    requires("podman", _podman_images(), "build the images: ptybatch containers build (see .ci/run)")
    out = tmp_path / "reports"
    run = ptybatch("submit", str(C1), "--out", str(out), "--runtime", "podman", cwd=ROOT, timeout=1800,
                   env={"PODMAN_LEAK_CHECK": "must-not-appear"})
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    tf_dir = out / "tf_baseline" / "phase_c1_gs1"
    provenance = json.loads((tf_dir / "analysis" / "tf_train.provenance.json").read_text())
    assert provenance["runtime"] == "podman" and provenance["identity"].startswith("podman:sha256:")
    assert "PODMAN_LEAK_CHECK" not in provenance["probe"]["env_names"]
    assert "must-not-appear" not in (tf_dir / "analysis" / "tf_train.env.json").read_text()

    rebuilt = ptybatch("containers", "build", "tf", "--build-arg", "BASE=localhost/ptybatch-base:bookworm",
                       "--build-arg", "ACCELERATOR=cpu", "--build-arg", "TORCH_CPU_INDEX=",
                       "--build-arg", f"REVISION=rebuild-{time.time():.0f}", cwd=ROOT, timeout=1200)
    assert rebuilt.returncode == 0, rebuilt.stderr[-3000:]
    plan = json.loads(ptybatch("plan", str(C1), "--out", str(out), "--runtime", "podman", "--json",
                               cwd=ROOT).stdout)
    rerun = {name for name, decision in plan.items() if decision["run"]}
    assert rerun == {name for name, job in plan.items() if job["backend"] == "tf"}, rerun
    assert plan["tf_train"]["reason"].startswith("runtime changed (podman:sha256:")
