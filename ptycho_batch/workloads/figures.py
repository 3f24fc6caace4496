"""Reconstruction figures a person can judge: the reconstruction, the ground truth the simulation knows and
their difference side by side, each titled and with a colour bar, over the scanned region only.

The uncovered border (no scan position reaches it) is masked out and the colour range comes from the covered
pixels (1st to 99th percentile), so a reconstruction is not washed out by the zeros around it. Phase
differences are wrapped to (-pi, pi]. Drawn with matplotlib's Agg backend (no display needed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ptycho_batch.workloads.metrics import bounding_box


def _masked(image: np.ndarray, covered: np.ndarray) -> np.ndarray:
    rows, columns = bounding_box(covered)
    return np.where(covered, image, np.nan)[rows, columns]


def panels(obj: np.ndarray, truth: np.ndarray, covered: np.ndarray, quantity: str) -> list[tuple[str, np.ndarray]]:
    """(name, image) of the reconstruction, the ground truth and their difference, cropped to the scan."""
    if quantity == "phase":
        recon, reference = np.angle(obj), np.angle(truth)
        difference = np.angle(np.exp(1j * (recon - reference)))
    else:
        recon, reference = np.abs(obj), np.abs(truth)
        difference = recon - reference
    return [("reconstruction", _masked(recon, covered)), ("ground truth", _masked(reference, covered)),
            ("difference", _masked(difference, covered))]


def reconstruction_figure(obj: np.ndarray, truth: np.ndarray, covered: np.ndarray, *, quantity: str,
                          title: str) -> Any:
    """A matplotlib Figure with three titled panels, each with its colour bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = panels(obj, truth, covered, quantity)
    values = np.concatenate([shown[0][1].ravel(), shown[1][1].ravel()])
    low, high = np.nanpercentile(values, [1, 99])
    spread = float(np.nanpercentile(np.abs(shown[2][1]), 99)) or 1e-12
    unit = " (rad)" if quantity == "phase" else ""
    figure, axes = plt.subplots(1, 3, figsize=(13, 4.2), constrained_layout=True)
    for axis, (name, image) in zip(axes, shown):
        diverging = name == "difference"
        drawn = axis.imshow(image, cmap="RdBu_r" if diverging else "gray",
                            vmin=-spread if diverging else low, vmax=spread if diverging else high)
        axis.set_title(f"{quantity} {name}")
        axis.set_xlabel("x (pixels from the scan's corner)")
        axis.set_ylabel("y (pixels)")
        figure.colorbar(drawn, ax=axis, shrink=0.85, label=f"{quantity}{unit}")
    figure.suptitle(title)
    return figure


def save_reconstruction(path: Path, obj: np.ndarray, truth: np.ndarray, covered: np.ndarray, *, quantity: str,
                        title: str) -> None:
    import matplotlib.pyplot as plt

    figure = reconstruction_figure(obj, truth, covered, quantity=quantity, title=title)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
