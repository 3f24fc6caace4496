"""Numpy-level physics shared by the simulator, both frameworks and the tests.

Convention (both frameworks implement exactly this): the predicted diffraction amplitude of an object
patch O under probe P is |fftshift(fft2(P * O))| / N * intensity_scale, and the measured amplitudes are
sqrt(photon counts). With the probe normalised to mean |P|^2 = 1/4 and intensity_scale =
sqrt(nphotons) / (N/2), a unit-amplitude object scatters nphotons photons per pattern (Parseval).
The loss is the mean Poisson negative log-likelihood of the counts (measured^2) under the rates
(predicted^2), rate - counts * log(rate + LOG_EPS), without the constant log(counts!).
"""

from __future__ import annotations

import numpy as np

PROBE_MEAN_INTENSITY = 0.25
LOG_EPS = 1e-6  # keeps log(rate) finite where the model predicts no photons


def intensity_scale(nphotons: float, n: int) -> float:
    """The upstream formula sqrt(nphotons) / (N/2): 1e5 photons at N=64 give 9.882118."""
    return float(np.sqrt(nphotons) / (n / 2))


def normalise_probe(probe: np.ndarray) -> np.ndarray:
    """Scale the probe so that its mean intensity over the frame is PROBE_MEAN_INTENSITY."""
    return (probe * np.sqrt(PROBE_MEAN_INTENSITY / np.mean(np.abs(probe) ** 2))).astype(np.complex64)


def diffraction_amplitude(probe: np.ndarray, patches: np.ndarray, scale: float) -> np.ndarray:
    """Far-field amplitude of `patches` (..., N, N) under `probe`, in units of sqrt(photons)."""
    n = probe.shape[-1]
    field = np.fft.fftshift(np.fft.fft2(probe * patches), axes=(-2, -1))
    return np.abs(field) / n * scale


