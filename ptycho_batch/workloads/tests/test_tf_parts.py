"""The TensorFlow layers against the numpy references (run in the TF environment)."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from ptycho_batch.workloads import architecture, physics, sim  # noqa: E402
from ptycho_batch.workloads.model_api import ModelConfig  # noqa: E402
from ptycho_batch.workloads.tests import reference  # noqa: E402
from ptycho_batch.workloads.tf_pinn import FRAMEWORK, TRANSLATIONS, TfPinn, merge_neighbours, poisson_nll  # noqa: E402


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("layer", sorted(TRANSLATIONS))
def test_translation_matches_the_reference(layer, seed):
    images, shifts = reference.random_case(seed)
    moved = TRANSLATIONS[layer](tf.constant(images[..., None]), tf.constant(shifts))[..., 0].numpy()
    assert np.abs(moved - reference.translate(images, shifts)).max() < 1e-5


def test_xla_translation_compiles_and_has_gradients():
    images, shifts = reference.random_case(0)
    compiled = tf.function(TRANSLATIONS["xla"], jit_compile=True)
    variable = tf.Variable(images[..., None])
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(compiled(variable, tf.constant(shifts)))
    assert tape.gradient(total, variable) is not None
    assert np.allclose(compiled(tf.constant(images[..., None]), tf.constant(shifts))[..., 0].numpy(),
                       reference.translate(images, shifts), atol=1e-5)


def test_merging_unshifted_neighbours_averages_them():
    rng = np.random.default_rng(0)
    patches = (rng.uniform(size=(2, 4, 16, 16)) * np.exp(1j * rng.uniform(size=(2, 4, 16, 16)))).astype(np.complex64)
    merged = merge_neighbours(tf.constant(patches), tf.zeros((2, 4, 2)), TRANSLATIONS["xla"])
    expected = np.broadcast_to(patches.mean(axis=1, keepdims=True), patches.shape)
    assert np.allclose(merged.numpy(), expected, atol=1e-6)


def test_poisson_nll_matches_numpy():
    rng = np.random.default_rng(0)
    predicted, measured = rng.uniform(0, 5, (2, 3, 8, 8)).astype(np.float32)
    expected = reference.poisson_nll(predicted, measured)
    assert float(poisson_nll(predicted, measured)) == pytest.approx(expected, rel=1e-5)


def _model(gridsize: int) -> TfPinn:
    config = ModelConfig(gridsize, sim.make_probe(32), 9.882118, "/CPU:0", translate="xla")
    return TfPinn(architecture.initial_weights(gridsize, 0), config)


def test_physics_layer_matches_numpy_fft_scaling():
    model = _model(1)
    patches = sim.make_object(np.random.default_rng(3), 64, 32)[None, None, :32, :32]
    ours = model._amplitude(tf.constant(patches)).numpy()
    assert np.allclose(ours, physics.diffraction_amplitude(model.config.probe, patches, 9.882118), rtol=1e-4, atol=1e-4)


def test_weights_keep_the_shared_layout():
    weights = architecture.initial_weights(2, 0)
    assert all(np.array_equal(_model(2).weights()[k], weights[k]) for k in weights)


def test_accelerator_cuda_without_a_gpu_is_refused_not_ignored():
    if tf.config.list_physical_devices("GPU"):
        assert FRAMEWORK.select_device("auto")[0] == "/GPU:0"
        return
    assert FRAMEWORK.select_device("auto")[0] == "/CPU:0"
    with pytest.raises(RuntimeError, match="sees no GPU"):
        FRAMEWORK.select_device("cuda")


def test_default_translation_follows_use_xla_translate(monkeypatch):
    monkeypatch.setenv("USE_XLA_TRANSLATE", "0")
    assert FRAMEWORK.default_translation() == "native"
    monkeypatch.setenv("USE_XLA_TRANSLATE", "1")
    assert FRAMEWORK.default_translation() == "xla"
