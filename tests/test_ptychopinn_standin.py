"""The shipped upstream campaigns (jobs/ptychopinn/) end to end against the upstream stand-in, run through
`python:` (an existing environment: this test's own interpreter) and `--set ptychopinn_root=...`, and the
stand-in's failures classified the way a PtychoPINN user needs them quoted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT
from helpers import ptybatch, write_campaign

STANDIN = ROOT / "tests" / "upstream_standin"
SMALL = ["--set", "n_images=64", "--set", "n_test=32", "--set", "max_epochs=2"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("upstream_data")
    subprocess.run([sys.executable, "-m", "ptycho_batch.workloads.sim", "--output_dir", str(folder), "--n_train", "64",
                    "--n_test", "32", "--N", "32"], check=True, capture_output=True)
    return folder


def _states(out: Path, campaign: str) -> dict[str, dict]:
    run = sorted((out / ".ptybatch" / campaign).glob("*/run.json"))[-1].parent
    return {s["name"]: s for s in (json.loads(p.read_text()) for p in run.glob("jobs/*/state.json"))}


def _submit(campaign: str, out: Path, data_dir: Path, *extra: str):
    return ptybatch("submit", str(ROOT / "jobs" / "ptychopinn" / f"{campaign}.yaml"), "--out", str(out),
                    "--set", f"ptychopinn_root={STANDIN}", "--set", f"python={sys.executable}",
                    "--set", f"data_dir={data_dir}", "--set", "accelerator=cpu", *SMALL, *extra, cwd=ROOT)


@pytest.mark.parametrize(("campaign", "gridsize", "groups"), [("phase_c1_gs1", 1, "64"), ("phase_b3_gs2", 2, "32")])
def test_shipped_campaign_runs_against_upstream_standin(campaign: str, gridsize: int, groups: str, data_dir: Path,
                                                        tmp_path: Path) -> None:
    out = tmp_path / "reports"
    result = _submit(campaign, out, data_dir, "--set", f"n_groups={groups}")
    assert result.returncode == 0, result.stdout + result.stderr
    states = _states(out, f"ptychopinn_{campaign}")
    assert {n: s["state"] for n, s in states.items()} == dict.fromkeys(
        ("torch_train", "torch_infer", "tf_integration", "tf_train", "tf_infer"), "COMPLETED")
    assert all(not s["warnings"] for s in states.values())
    train, infer, tf_train = states["torch_train"], states["torch_infer"], states["tf_train"]
    assert 0 < train["metrics"]["patch_stats.mean"] < 1 and train["metrics"]["patch_stats.var_zero_mean"] > 0
    assert 0 < infer["metrics"]["patch_stats.mean"] < 1
    assert tf_train["metrics"]["intensity_scale"] > 0 and tf_train["metrics"]["loss"] < -150
    assert states["tf_integration"]["metrics"]["pytest.passed"] == 2
    model = Path(train["artifacts"]["model"]["path"])   # the training output directory, as a directory artifact
    assert model.name == f"torch_train_out_gs{gridsize}" and (model / "wts.h5.zip").is_file()
    assert str(model) in " ".join(json.loads((out / ".ptybatch" / f"ptychopinn_{campaign}").glob("*/plan.json")
                                             .__next__().read_text())["jobs"]["torch_infer"]["argv"])
    assert train["cache_parts"]["runtime"].startswith(f"python:{sys.executable}:")
    provenance = json.loads((Path(train["log"]).parents[1] / "analysis" / "torch_train.provenance.json").read_text())
    assert provenance["probe"]["python"]["executable"] == sys.executable
    inventory = (out / f"ptychopinn_{campaign}" / "analysis" / "artifact_inventory.md").read_text()
    assert "(SHA-1 `" in inventory.split("## Dataset")[1]
    # Keras' loss is one value per step: the plot's x axis says "match", not "epoch"
    assert "![training loss per match](loss_curves.svg)" in inventory
    again = _submit(campaign, out, data_dir, "--set", f"n_groups={groups}")
    assert again.returncode == 0 and all(s.get("cached_from") for s in _states(out, f"ptychopinn_{campaign}").values())


def test_default_accelerator_needs_a_gpu_and_gs2_needs_few_groups(data_dir: Path, tmp_path: Path) -> None:
    """Without --set accelerator=cpu the torch jobs ask for CUDA (the stand-in refuses as Lightning does);
    gridsize 2 with more groups than test points fails with upstream's ValueError, quoted."""
    out = tmp_path / "reports"
    result = ptybatch("submit", str(ROOT / "jobs" / "ptychopinn" / "phase_b3_gs2.yaml"), "--out", str(out),
                      "--set", f"ptychopinn_root={STANDIN}", "--set", f"python={sys.executable}",
                      "--set", f"data_dir={data_dir}", "--set", "n_groups=64", *SMALL, cwd=ROOT,
                      env={"CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode != 0
    states = _states(out, "ptychopinn_phase_b3_gs2")
    assert states["torch_train"]["failure_class"] == "exception"
    assert "No supported gpu backend found" in states["torch_train"]["failure_line"]
    assert states["tf_train"]["failure_line"].startswith("ValueError: Cannot generate 64 groups from 32")


def _standin_job(tmp_path: Path, command: list[str], **job) -> dict:
    """One host job running a stand-in tool; returns its final state."""
    body = {"campaign": "t", "backends": {"a": {"python": sys.executable, "env": {"PYTHONPATH": str(STANDIN)}}},
            "jobs": {"j": {"backend": "a", "command": command, **job}}}
    ptybatch("submit", str(write_campaign(tmp_path, body)), cwd=tmp_path)
    return _states(tmp_path / "reports", "t")["j"]


def test_usage_error_is_classified_and_quoted(tmp_path: Path) -> None:
    state = _standin_job(tmp_path, ["python", "-m", "ptycho_torch.inference", "--model_path", "m", "--test_data", "t",
                                    "--output_dir", "o", "--debug_dump", "debug"])
    assert state["failure_class"] == "usage" and state["exit_code"] == 2
    assert state["failure_line"] == "inference.py: error: unrecognized arguments: --debug_dump debug"


def test_missing_training_file_is_quoted_not_exit_code(tmp_path: Path) -> None:
    state = _standin_job(tmp_path, ["python", "-m", "ptycho_torch.train", "--train_data_file", "/nonexistent.npz",
                                    "--output_dir", "out"])
    assert state["failure_class"] == "exit"
    assert state["failure_line"] == "ERROR: Training data file not found: /nonexistent.npz"
    state = _standin_job(tmp_path, ["python", "/nonexistent/train.py"])
    assert "can't open file" in state["failure_line"]


def test_pytest_failure_is_classified_with_its_cause(tmp_path: Path) -> None:
    state = _standin_job(tmp_path, ["python", "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                    str(STANDIN / "tests" / "test_integration_workflow.py")])
    assert state["failure_class"] == "test-failure"
    line = state["failure_line"]
    assert line.startswith("FAILED ") and "test_train_save_load_infer_cycle" in line
    assert "| E FileNotFoundError: [Errno 2]" in line and line.endswith("1 failed in " + line.split(" in ")[-1])
