"""The torch layers against the numpy references (run in the torch environment)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ptycho_batch.workloads import architecture, physics, sim  # noqa: E402
from ptycho_batch.workloads.model_api import ModelConfig  # noqa: E402
from ptycho_batch.workloads.tests import reference  # noqa: E402
from ptycho_batch.workloads.torch_pinn import (  # noqa: E402
    FRAMEWORK,
    TorchPinn,
    merge_neighbours,
    poisson_nll,
    translate,
)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_grid_sample_translation_matches_the_reference(seed):
    images, shifts = reference.random_case(seed)
    moved = translate(torch.from_numpy(images)[:, None], torch.from_numpy(shifts))[:, 0].numpy()
    assert np.abs(moved - reference.translate(images, shifts)).max() < 1e-5


def test_merging_unshifted_neighbours_averages_them():
    patches = torch.polar(torch.rand(2, 4, 16, 16), torch.rand(2, 4, 16, 16))
    expected = patches.mean(dim=1, keepdim=True).expand(-1, 4, -1, -1)
    assert torch.allclose(merge_neighbours(patches, torch.zeros(2, 4, 2)), expected, atol=1e-6)


def test_poisson_nll_matches_numpy():
    rng = np.random.default_rng(0)
    predicted, measured = rng.uniform(0, 5, (2, 3, 8, 8)).astype(np.float32)
    ours = float(poisson_nll(torch.from_numpy(predicted), torch.from_numpy(measured)))
    assert ours == pytest.approx(reference.poisson_nll(predicted, measured), rel=1e-5)


def _model(gridsize: int) -> TorchPinn:
    probe = sim.make_probe(32)
    return TorchPinn(architecture.initial_weights(gridsize, 0), ModelConfig(gridsize, probe, 9.882118, "cpu"))


def test_physics_layer_matches_numpy_fft_scaling():
    model = _model(1)
    patches = sim.make_object(np.random.default_rng(3), 64, 32)[None, None, :32, :32]
    ours = model._amplitude(torch.from_numpy(patches)).numpy()
    assert np.allclose(ours, physics.diffraction_amplitude(model.config.probe, patches, 9.882118), rtol=1e-4, atol=1e-4)


def test_weights_keep_the_shared_layout():
    weights = architecture.initial_weights(2, 0)
    assert all(np.array_equal(_model(2).weights()[k], weights[k]) for k in weights)


def test_prediction_shapes_and_ranges():
    diffraction = np.random.default_rng(0).uniform(0, 3, (2, 4, 32, 32)).astype(np.float32)
    offsets = np.random.default_rng(1).uniform(-3, 3, (2, 4, 2)).astype(np.float32)
    prediction = _model(2).predict(diffraction, offsets)
    assert prediction.patches.shape == (2, 4, 32, 32) and prediction.patches.dtype == np.complex64
    assert prediction.amplitude.shape == (2, 4, 32, 32) and np.abs(prediction.patches).max() <= 1.0 + 1e-6


def test_accelerator_cuda_without_a_gpu_is_refused_not_ignored():
    if torch.cuda.is_available():
        assert FRAMEWORK.select_device("auto")[0] == "cuda:0"
        return
    assert FRAMEWORK.select_device("auto")[0] == "cpu"
    with pytest.raises(RuntimeError, match="sees no CUDA device"):
        FRAMEWORK.select_device("cuda")
