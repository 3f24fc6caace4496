"""Stitch predicted object patches into the full object at their scan positions."""

from __future__ import annotations

import numpy as np


def stitch(patches: np.ndarray, coords: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Average the central N/2 x N/2 of each (M, N, N) patch at its (y, x) centre; (object, covered mask).

    Only the centre is used because the probe barely lights the patch borders, where the model has
    nothing to go on.
    """
    n = patches.shape[-1]
    half, quarter = n // 2, n // 4
    total = np.zeros(shape, np.complex128)
    weight = np.zeros(shape)
    centre = patches[:, half - quarter: half + quarter, half - quarter: half + quarter]
    for patch, (y, x) in zip(centre, np.rint(coords).astype(int), strict=True):
        top, left = y - quarter, x - quarter
        if top < 0 or left < 0 or top + half > shape[0] or left + half > shape[1]:
            continue
        total[top: top + half, left: left + half] += patch
        weight[top: top + half, left: left + half] += 1
    covered = weight > 0
    return np.where(covered, total / np.maximum(weight, 1), 0).astype(np.complex64), covered
