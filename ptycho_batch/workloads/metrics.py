"""Reconstruction quality against the ground-truth object: global alignment, PSNR and SSIM."""

from __future__ import annotations

import numpy as np


def align(reconstruction: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Remove the global phase offset and amplitude scale that ptychography cannot determine.

    The phase offset is the angle of sum(truth * conj(recon)) over the mask; the scale is the
    least-squares factor between the amplitudes over the mask.
    """
    recon, ref = reconstruction[mask], truth[mask]
    phase = np.angle(np.sum(ref * np.conj(recon)))
    amplitude = np.abs(recon)
    scale = float(np.sum(amplitude * np.abs(ref)) / max(float(np.sum(amplitude**2)), 1e-12))
    return (reconstruction * scale * np.exp(1j * phase)).astype(np.complex64)


def psnr(estimate: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB over the mask, the peak being the truth's maximum there."""
    error = np.mean((estimate[mask].astype(np.float64) - truth[mask]) ** 2)
    peak = float(np.max(truth[mask]))
    return float(10 * np.log10(peak**2 / max(error, 1e-20)))


def _box_mean(image: np.ndarray, size: int) -> np.ndarray:
    """Mean over each `size` x `size` window fully inside the image (valid region)."""
    summed = np.cumsum(np.cumsum(np.pad(image, ((1, 0), (1, 0))), axis=0), axis=1)
    return (summed[size:, size:] - summed[:-size, size:] - summed[size:, :-size] + summed[:-size, :-size]) / size**2


def ssim(estimate: np.ndarray, truth: np.ndarray, window: int = 7) -> float:
    """Mean structural similarity over 7x7 windows (uniform, as skimage's default), data range of truth."""
    x, y = estimate.astype(np.float64), truth.astype(np.float64)
    data_range = float(y.max() - y.min()) or 1.0
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    correction = window**2 / (window**2 - 1)
    mx, my = _box_mean(x, window), _box_mean(y, window)
    vx = (_box_mean(x * x, window) - mx * mx) * correction
    vy = (_box_mean(y * y, window) - my * my) * correction
    cxy = (_box_mean(x * y, window) - mx * my) * correction
    index = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return float(np.mean(index))


def bounding_box(mask: np.ndarray) -> tuple[slice, slice]:
    """The smallest rectangle holding the mask (SSIM needs a rectangle)."""
    rows, columns = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return slice(rows[0], rows[-1] + 1), slice(columns[0], columns[-1] + 1)
