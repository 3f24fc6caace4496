"""Patch statistics, the quick health check of a trained model (flat patches mean it learnt nothing)."""

from __future__ import annotations

import numpy as np


def patch_stats(amplitudes: np.ndarray) -> dict[str, float]:
    """mean and std over all pixels of (K, ..., N, N) patch amplitudes; var_zero_mean is the mean
    within-patch variance after subtracting each patch's own mean (0 for constant patches)."""
    values = amplitudes.reshape(-1, *amplitudes.shape[-2:]).astype(np.float64)
    centred = values - values.mean(axis=(1, 2), keepdims=True)
    return {"mean": float(values.mean()), "std": float(values.std()), "var_zero_mean": float(np.mean(centred**2))}


def stats_line(stats: dict[str, float]) -> str:
    return f"Patch stats: mean={stats['mean']:.6f}, std={stats['std']:.6f}, var_zero_mean={stats['var_zero_mean']:.6f}"
