"""PNG plots for reports, drawn with matplotlib when it is installed (the `plots` extra); else nothing.

Reports link a plot only when it was drawn, so they render the same without matplotlib.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


def available() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def loss_curves(curves: dict[str, tuple[list[float], list[float]]], path: Path, title: str,
                xlabel: str) -> Path | None:
    """One line per job, (x, y) each, on a shared axis labelled `xlabel`; None without matplotlib or data."""
    curves = {label: xy for label, xy in curves.items() if xy[1]}
    if not curves or not available():
        return None
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(7, 4), dpi=100)
    for label, (xs, ys) in curves.items():
        axis.plot(xs, ys, marker="o", markersize=3, label=label)
    axis.set_xlabel(xlabel)
    axis.set_ylabel("training loss")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend()
    return _save(plt, figure, path)


def relative_differences(bars: dict[str, float], tolerance: float | None, path: Path, title: str) -> Path | None:
    """Horizontal bars of relative differences, with the tolerance as a line; None without matplotlib."""
    if not bars or not available():
        return None
    plt = _pyplot()
    labels = list(bars)
    figure, axis = plt.subplots(figsize=(7, 0.4 * len(labels) + 1.5), dpi=100)
    colours = ["tab:red" if tolerance is not None and v > tolerance else "tab:blue" for v in bars.values()]
    axis.barh(labels, list(bars.values()), color=colours)
    if tolerance is not None:
        axis.axvline(tolerance, color="black", linestyle="--", label=f"tolerance {tolerance:g}")
        axis.legend()
    axis.set_xlabel("relative difference")
    axis.set_title(title)
    axis.invert_yaxis()
    return _save(plt, figure, path)


def _save(plt, figure, path: Path) -> Path:
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path
