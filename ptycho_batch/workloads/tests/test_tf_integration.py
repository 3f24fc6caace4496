"""TF integration: simulate, train, save, load and infer in one process tree.

The phase campaigns run this inside the TF environment as a `test`-stage job:
`python -m pytest -q -p no:cacheprovider --basetemp <dir> --pyargs ptycho_batch.workloads.tests.test_tf_integration`.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("tensorflow")


def run(*argv: str) -> str:
    done = subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{argv[:2]} failed ({done.returncode}):\n{done.stdout}\n{done.stderr[-3000:]}"
    return done.stdout


def test_train_save_load_infer(tmp_path: Path):
    run("ptycho_batch.workloads.sim", "--output_dir", str(tmp_path / "data"), "--n_train", "64", "--n_test", "32",
        "--seed", "11")
    trained = run("ptycho_batch.workloads.tf", "train", "--train_data_file", str(tmp_path / "data" / "train.npz"),
                  "--output_dir", str(tmp_path / "model"), "--gridsize", "2", "--n_images", "64", "--max_epochs", "2",
                  "--translate", "xla", "--accelerator", "cpu")
    epochs = re.findall(r"^Epoch (\d+)/2 loss=(\S+) time=(\S+)s$", trained, re.M)
    assert [e[0] for e in epochs] == ["1", "2"] and all(math.isfinite(float(e[1])) for e in epochs)
    assert re.search(r"^Patch stats: mean=\S+, std=\S+, var_zero_mean=\S+$", trained, re.M)
    saved = re.search(r"^Bundle saved: (.+) \((\d+) bytes\)$", trained, re.M)
    assert saved and Path(saved[1]).stat().st_size == int(saved[2])

    inferred = run("ptycho_batch.workloads.tf", "infer", "--model_path", saved[1], "--test_data",
                   str(tmp_path / "data" / "test.npz"), "--output_dir", str(tmp_path / "infer"), "--n_images", "32",
                   "--debug_dump", str(tmp_path / "debug"))
    assert "Loaded intensity_scale from bundle: 9.882118" in inferred
    metrics = json.loads((tmp_path / "infer" / "metrics.json").read_text())
    assert math.isfinite(metrics["amplitude_psnr"]) and 0 < metrics["amplitude_ssim"] <= 1
    assert json.loads((tmp_path / "debug" / "stats.json").read_text())["var_zero_mean"] >= 0
    for name in ("reconstructed_amplitude.png", "reconstructed_phase.png", "reconstructed.npz"):
        assert (tmp_path / "infer" / name).stat().st_size > 0
