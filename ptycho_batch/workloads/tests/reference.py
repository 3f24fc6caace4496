"""Numpy references the framework layers are checked against."""

from __future__ import annotations

import numpy as np

from ptycho_batch.workloads.physics import LOG_EPS


def poisson_nll(predicted_amplitude: np.ndarray, measured_amplitude: np.ndarray) -> float:
    """Mean Poisson negative log-likelihood of counts measured^2 under rates predicted^2 (no log k!)."""
    rate = predicted_amplitude.astype(np.float64) ** 2
    counts = measured_amplitude.astype(np.float64) ** 2
    return float(np.mean(rate - counts * np.log(rate + LOG_EPS)))


def translate(images: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Shift (M, H, W) images by (M, 2) (dy, dx): out(y, x) = bilinear in(y - dy, x - dx), zeros outside."""
    count, height, width = images.shape
    out = np.zeros_like(images, dtype=np.float64)
    for m in range(count):
        for y in range(height):
            for x in range(width):
                sy, sx = y - shifts[m, 0], x - shifts[m, 1]
                y0, x0 = int(np.floor(sy)), int(np.floor(sx))
                for yy, wy in ((y0, 1 - (sy - y0)), (y0 + 1, sy - y0)):
                    for xx, wx in ((x0, 1 - (sx - x0)), (x0 + 1, sx - x0)):
                        if 0 <= yy < height and 0 <= xx < width:
                            out[m, y, x] += wy * wx * images[m, yy, xx]
    return out


def random_case(seed: int, count: int = 6, size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Smooth-ish random images and shifts up to +-5 px with fractional parts."""
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(count, size, size)).astype(np.float32)
    shifts = rng.uniform(-5, 5, size=(count, 2)).astype(np.float32)
    shifts[0] = (0.0, 0.0)
    shifts[1] = (2.0, -3.0)
    return images, shifts
