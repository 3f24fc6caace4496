"""Real training at small sizes in each environment: loss, PSNR gain, XLA behaviour, parity, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from workload_helpers import epoch_losses, run_backend, saved_bundle

pytestmark = pytest.mark.slow
BACKENDS = ("torch", "tf")
TRAIN = ("--n_images", "128", "--batch_size", "16", "--seed", "2")
TRAINED, UNTRAINED = ("--max_epochs", "6"), ("--max_epochs", "0")


@pytest.fixture(scope="module")
def dataset(backend_python, tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("data")
    run_backend(backend_python("torch"), "-m", "ptycho_batch.workloads.sim", "--output_dir", str(directory),
                "--n_train", "128", "--n_test", "64", "--seed", "5")
    return directory


@pytest.fixture(scope="module")
def train(backend_python, dataset, tmp_path_factory):
    """train(backend, *flags) -> (stdout, output dir), each distinct run made once per module."""
    done: dict[tuple, tuple[str, Path]] = {}

    def run(backend: str, *flags: str) -> tuple[str, Path]:
        if (backend, flags) not in done:
            out = tmp_path_factory.mktemp(f"{backend}-train")
            result = run_backend(backend_python(backend), "-m", f"ptycho_batch.workloads.{backend}", "train",
                                 "--train_data_file", str(dataset / "train.npz"), "--output_dir", str(out), *flags)
            done[(backend, flags)] = (result.stdout, out)
        return done[(backend, flags)]

    return run


def infer_psnr(backend: str, python: Path, bundle: Path, dataset: Path, out: Path) -> float:
    done = run_backend(python, "-m", f"ptycho_batch.workloads.{backend}", "infer", "--model_path", str(bundle),
                       "--test_data", str(dataset / "test.npz"), "--output_dir", str(out), "--n_images", "64")
    assert "Loaded intensity_scale from bundle: 9.882118" in done.stdout
    return json.loads((out / "metrics.json").read_text())["amplitude_psnr"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_training_lowers_the_loss_and_writes_its_outputs(backend, train):
    stdout, out = train(backend, *TRAIN, *TRAINED)
    losses = epoch_losses(stdout)
    assert len(losses) == 6 and losses[-1] < losses[0]
    assert saved_bundle(stdout) == (out / "wts.h5.zip").resolve()
    assert "Using device: cpu" in stdout or "Using device: /CPU:0" in stdout
    stats = json.loads((out / "patch_stats.json").read_text())
    line = f"Patch stats: mean={stats['mean']:.6f}, std={stats['std']:.6f}, var_zero_mean={stats['var_zero_mean']:.6f}"
    assert line in stdout
    assert (out / "patch_grid.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("backend", BACKENDS)
def test_trained_model_beats_the_untrained_one_by_3_db(backend, train, backend_python, dataset, tmp_path):
    python = backend_python(backend)
    trained_bundle = saved_bundle(train(backend, *TRAIN, *TRAINED)[0])
    untrained_bundle = saved_bundle(train(backend, *TRAIN, *UNTRAINED)[0])
    trained = infer_psnr(backend, python, trained_bundle, dataset, tmp_path / "trained")
    untrained = infer_psnr(backend, python, untrained_bundle, dataset, tmp_path / "untrained")
    assert trained >= untrained + 3.0, f"trained {trained:.2f} dB vs untrained {untrained:.2f} dB"


GS2 = ("--gridsize", "2", "--n_images", "16", "--max_epochs", "1", "--seed", "3")
GS2_UNTRAINED = (*GS2, "--max_epochs", "0")  # the last --max_epochs wins


def test_tf_native_translation_fails_under_jit_with_the_xla_error(backend_python, dataset, tmp_path):
    done = run_backend(backend_python("tf"), "-m", "ptycho_batch.workloads.tf", "train", "--train_data_file",
                       str(dataset / "train.npz"), "--output_dir", str(tmp_path), *GS2,
                       "--translate", "native", "--jit", check=False)
    assert done.returncode == 1
    assert "Detected unsupported operations when trying to compile graph" in done.stderr
    assert "ImageProjectiveTransformV3" in done.stderr and "XLA_CPU_JIT" in done.stderr
    assert not (tmp_path / "wts.h5.zip").exists() and "Bundle saved" not in done.stdout


def test_tf_xla_translation_compiles_under_jit(train):
    stdout, out = train("tf", *GS2, "--translate", "xla", "--jit")
    assert "translate=xla (jit)" in stdout and saved_bundle(stdout).exists()


def test_forward_parity_between_frameworks_on_the_same_weights(train, backend_python, dataset, tmp_path):
    torch_bundle = saved_bundle(train("torch", *GS2)[0])
    tf_bundle = saved_bundle(train("tf", *GS2, "--translate", "xla", "--jit")[0])
    common = ("-m", "ptycho_batch.workloads.parity", "--torch_bundle", str(torch_bundle), "--tf_bundle",
              str(tf_bundle), "--data", str(dataset / "test.npz"), "--n_images", "8")
    run_backend(backend_python("torch"), *common, "--output_dir", str(tmp_path / "torch"))
    done = run_backend(backend_python("tf"), *common, "--output_dir", str(tmp_path / "tf"),
                       "--reference", str(tmp_path / "torch" / "forward_torch.npz"))
    report = json.loads((tmp_path / "tf" / "parity.json").read_text())
    assert report["passed"] and report["max_rel"] < 1e-4 and set(report["bundles"]) == {"torch_bundle", "tf_bundle"}
    assert "Parity PASSED" in done.stdout


def test_parity_fails_on_different_outputs(train, backend_python, dataset, tmp_path):
    trained, untrained = saved_bundle(train("torch", *GS2)[0]), saved_bundle(train("torch", *GS2_UNTRAINED)[0])
    common = ("-m", "ptycho_batch.workloads.parity", "--data", str(dataset / "test.npz"), "--n_images", "4")
    run_backend(backend_python("torch"), *common, "--torch_bundle", str(trained), "--tf_bundle", str(untrained),
                "--output_dir", str(tmp_path / "a"))
    swapped = run_backend(backend_python("tf"), *common, "--torch_bundle", str(untrained), "--tf_bundle", str(trained),
                          "--output_dir", str(tmp_path / "b"), "--reference", str(tmp_path / "a" / "forward_torch.npz"),
                          check=False)
    assert swapped.returncode == 1 and "Parity FAILED" in swapped.stdout


def test_torch_training_is_deterministic_for_a_seed(backend_python, dataset, tmp_path):
    def bundle_bytes(name: str) -> bytes:
        done = run_backend(backend_python("torch"), "-m", "ptycho_batch.workloads.torch", "train", "--train_data_file",
                           str(dataset / "train.npz"), "--output_dir", str(tmp_path / name), *GS2)
        return saved_bundle(done.stdout).read_bytes()

    assert bundle_bytes("a") == bundle_bytes("b")
