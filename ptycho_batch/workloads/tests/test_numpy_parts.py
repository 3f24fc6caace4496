"""The framework-neutral pieces: physics constants, npz format, determinism, bundle, images, metrics."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from ptycho_batch.workloads import architecture, bundle, data, physics, sim
from ptycho_batch.workloads.metrics import align, psnr, ssim
from ptycho_batch.workloads.png import write_png
from ptycho_batch.workloads.stats import patch_stats, stats_line
from ptycho_batch.workloads.stitch import stitch
from ptycho_batch.workloads.tests.reference import poisson_nll, translate


def test_intensity_scale_formula():
    assert physics.intensity_scale(1e5, 64) == pytest.approx(9.882118, abs=5e-7)


def test_fft_scaling_unit_object_scatters_nphotons():
    probe = sim.make_probe(64)
    assert np.mean(np.abs(probe) ** 2) == pytest.approx(physics.PROBE_MEAN_INTENSITY, rel=1e-5)
    amplitude = physics.diffraction_amplitude(probe, np.ones((64, 64), np.complex64), physics.intensity_scale(1e5, 64))
    assert np.sum(amplitude.astype(np.float64) ** 2) == pytest.approx(1e5, rel=1e-4)


def test_poisson_nll_is_smallest_at_the_measured_rate():
    measured = np.sqrt(np.random.default_rng(0).poisson(50.0, size=(4, 8, 8))).astype(np.float32)
    at_truth = poisson_nll(measured, measured)
    assert at_truth < poisson_nll(measured * 1.1, measured)
    assert at_truth < poisson_nll(measured * 0.9, measured)
    one = poisson_nll(np.array([2.0]), np.array([3.0]))
    assert one == pytest.approx(4.0 - 9.0 * np.log(4.0 + physics.LOG_EPS))


def test_reference_translation_integer_and_half_pixel():
    image = np.arange(25, dtype=np.float64).reshape(1, 5, 5)
    moved = translate(image, np.array([[1.0, 2.0]]))
    assert np.array_equal(moved[0, 1:, 2:], image[0, :4, :3]) and not moved[0, 0].any() and not moved[0, :, :2].any()
    half = translate(image, np.array([[0.0, 0.5]]))
    assert half[0, 2, 3] == pytest.approx((image[0, 2, 2] + image[0, 2, 3]) / 2)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("sim")
    sim.main(["--output_dir", str(directory), "--n_train", "24", "--n_test", "12", "--N", "32", "--seed", "7"])
    return directory


def test_npz_has_the_upstream_keys_dtypes_and_shapes(simulated):
    for split, count in (("train", 24), ("test", 12)):
        with np.load(simulated / f"{split}.npz") as npz:
            arrays = {k: npz[k] for k in npz.files}
        assert data.format_errors(arrays) == []
        assert arrays["diff3d"].shape == (count, 32, 32) and arrays["diff3d"].dtype == np.float32
        assert arrays["probeGuess"].dtype == np.complex64 and arrays["objectGuess"].shape == (64, 64)
        assert arrays["xcoords"].dtype == np.float64 and arrays["scan_index"].tolist() == list(range(count))
        assert json.loads(str(arrays["_metadata"]))["physics_parameters"]["nphotons"] == 1e5
        counts = arrays["diff3d"].astype(np.float64) ** 2  # sqrt of photon counts
        assert np.allclose(counts, np.round(counts), atol=1e-3) and counts.max() > 1


def test_format_errors_name_what_is_wrong(simulated):
    with np.load(simulated / "train.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["xcoords"] = arrays["xcoords"].astype(np.float32)
    del arrays["probeGuess"]
    errors = data.format_errors(arrays)
    assert "missing key probeGuess" in errors and any(e.startswith("xcoords: expected float64") for e in errors)


def test_simulation_is_deterministic_per_seed(tmp_path):
    def arrays(seed: int, name: str) -> dict[str, np.ndarray]:
        sim.simulate(tmp_path / name, 8, 4, 1e5, 32, seed)
        with np.load(tmp_path / name / "train.npz") as npz:
            return {k: npz[k] for k in npz.files}

    first, again, other = arrays(3, "a"), arrays(3, "b"), arrays(4, "c")
    assert all(np.array_equal(first[k], again[k]) for k in first)
    assert not np.array_equal(first["diffraction"], other["diffraction"])


def test_grouping_offsets_are_centred_on_the_group(simulated):
    groups = data.group(data.load(simulated / "train.npz"), 16, 2)
    assert groups.diffraction.shape == (16, 4, 32, 32)
    assert np.array_equal(groups.members[:, 0], np.arange(16))
    assert np.allclose(groups.offsets.sum(axis=1), 0, atol=1e-5)


def test_bundle_round_trip_and_stable_bytes(tmp_path):
    weights = architecture.initial_weights(2, seed=1)
    params = {"intensity_scale": 9.882118, "gridsize": 2}
    saved = bundle.Bundle(weights=weights, probe=sim.make_probe(32), params=params)
    size = bundle.save(tmp_path / "a" / "wts.h5.zip", saved)
    bundle.save(tmp_path / "b" / "wts.h5.zip", saved)
    assert size == (tmp_path / "a" / "wts.h5.zip").stat().st_size
    assert (tmp_path / "a" / "wts.h5.zip").read_bytes() == (tmp_path / "b" / "wts.h5.zip").read_bytes()
    loaded = bundle.load(tmp_path / "a" / "wts.h5.zip")
    assert loaded.params == saved.params and np.array_equal(loaded.probe, saved.probe)
    assert sorted(loaded.weights) == sorted(weights)
    assert all(np.array_equal(loaded.weights[k], weights[k]) for k in weights)
    assert not list(tmp_path.glob("*/.*partial"))


def test_initial_weights_follow_the_layer_table():
    weights = architecture.initial_weights(2, seed=0)
    for conv in architecture.layers(2):
        assert weights[f"{conv.name}/kernel"].shape == (3, 3, conv.in_channels, conv.out_channels)
    assert weights["out/kernel"].shape[-1] == 8
    assert np.array_equal(weights["enc1/kernel"], architecture.initial_weights(2, seed=0)["enc1/kernel"])


def test_png_is_a_valid_grayscale_image(tmp_path):
    image = np.outer(np.arange(3), np.ones(5))
    write_png(tmp_path / "a.png", image)
    raw = (tmp_path / "a.png").read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", raw[16:24])
    assert (width, height) == (5, 3)
    idat = raw.index(b"IDAT")
    length = struct.unpack(">I", raw[idat - 4: idat])[0]
    rows = zlib.decompress(raw[idat + 4: idat + 4 + length])
    assert rows == b"\x00" + bytes(5) + b"\x00" + bytes([128] * 5) + b"\x00" + bytes([255] * 5)


def test_alignment_removes_global_phase_and_scale():
    truth = sim.make_object(np.random.default_rng(0), 64, 32)
    mask = np.ones(truth.shape, bool)
    aligned = align(truth * 0.5 * np.exp(1j * 0.7), truth, mask)
    assert np.allclose(aligned, truth, atol=1e-5)
    assert psnr(np.abs(aligned), np.abs(truth), mask) > 80
    assert ssim(np.abs(truth), np.abs(truth)) == pytest.approx(1.0)
    noisy = np.abs(truth) + np.random.default_rng(1).normal(0, 0.1, truth.shape)
    assert ssim(noisy, np.abs(truth)) < 0.9 and psnr(noisy, np.abs(truth), mask) == pytest.approx(20, abs=0.5)


def test_stitching_reassembles_the_object():
    obj = sim.make_object(np.random.default_rng(2), 64, 32)
    coords = np.array([(y, x) for y in range(16, 49, 8) for x in range(16, 49, 8)], float)
    patches = np.stack([obj[y - 16: y + 16, x - 16: x + 16] for y, x in coords.astype(int)])
    stitched, covered = stitch(patches, coords, obj.shape)
    assert covered[8:56, 8:56].all() and not covered[:8].any()
    assert np.allclose(stitched[covered], obj[covered], atol=1e-6)


def test_patch_stats_line():
    flat = np.full((2, 1, 4, 4), 0.5)
    stats = patch_stats(flat)
    assert stats == {"mean": 0.5, "std": 0.0, "var_zero_mean": 0.0}
    assert stats_line(stats) == "Patch stats: mean=0.500000, std=0.000000, var_zero_mean=0.000000"
    ramp = np.broadcast_to(np.arange(4.0), (2, 1, 4, 4))
    assert patch_stats(ramp)["var_zero_mean"] == pytest.approx(1.25)


def test_reconstruction_figure_has_truth_difference_and_colour_bars(tmp_path):
    from ptycho_batch.workloads.figures import reconstruction_figure, save_reconstruction

    yy, xx = np.mgrid[:48, :48]
    truth = (0.5 + 0.4 * np.exp(-((yy - 24) ** 2 + (xx - 20) ** 2) / 60)) * np.exp(0.3j * np.sin(xx / 5))
    covered = np.zeros((48, 48), bool)
    covered[6:42, 6:42] = True
    obj = np.where(covered, truth * 1.02, 0)
    figure = reconstruction_figure(obj, truth, covered, quantity="amplitude", title="torch: reconstructed amplitude")
    titles = [axis.get_title() for axis in figure.axes]
    assert titles[:3] == ["amplitude reconstruction", "amplitude ground truth", "amplitude difference"]
    assert sum(1 for axis in figure.axes if axis.get_label() == "<colorbar>") == 3, "a colour bar per panel"
    low, high = figure.axes[0].images[0].get_clim()
    assert low > 0.45, "the amplitude range comes from the covered region, not the zeros around it"
    assert figure.axes[0].images[0].get_array().shape == (36, 36), "cropped to the scan"
    path = tmp_path / "amplitude.png"
    save_reconstruction(path, obj, truth, covered, quantity="phase", title="phase")
    width, height = struct.unpack(">II", path.read_bytes()[16:24])
    assert width >= 1200 and height >= 400, (width, height)
