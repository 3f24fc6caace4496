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


STYLES = ({"linestyle": "-", "marker": "o"}, {"linestyle": "--", "marker": "s"}, {"linestyle": ":", "marker": "^"})


def loss_curves(curves: dict[str, tuple[list[float], list[float]]], path: Path, title: str,
                xlabel: str) -> Path | None:
    """One line per job, (x, y) each, on a shared axis labelled `xlabel`, each with its own line style and
    marker so that equal curves stay visible; with exactly two curves a second panel shows their relative
    difference at the x both have. None when matplotlib or data is missing."""
    curves = {label: xy for label, xy in curves.items() if xy[1]}
    if not curves or not available():
        return None
    plt = _pyplot()
    pair = len(curves) == 2
    figure, axes = plt.subplots(2 if pair else 1, 1, figsize=(7, 6 if pair else 4), dpi=100, sharex=True,
                                squeeze=False, gridspec_kw={"height_ratios": [3, 1.3] if pair else [1]})
    axis = axes[0][0]
    for (label, (xs, ys)), style in zip(curves.items(), STYLES * len(curves)):
        axis.plot(xs, ys, markersize=4, fillstyle="none", label=label, **style)
    axis.set_ylabel("training loss")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend()
    if pair:
        (xs_a, ys_a), (xs_b, ys_b) = curves.values()
        other = dict(zip(xs_b, ys_b))
        shared = [(x, a, other[x]) for x, a in zip(xs_a, ys_a) if x in other]
        axes[1][0].plot([x for x, _, _ in shared], [abs(a - b) / max(abs(a), abs(b), 1e-30) for _, a, b in shared],
                        color="black", marker=".")
        axes[1][0].set_ylabel("relative difference")
        axes[1][0].grid(alpha=0.3)
    axes[-1][0].set_xlabel(xlabel)
    return _save(plt, figure, path)


def relative_differences(bars: dict[str, float], tolerance: float | None, path: Path, title: str,
                         timing: dict[str, float] | None = None) -> Path | None:
    """Horizontal bars of the quality metrics' relative differences (red beyond the tolerance line) and, in a
    panel of their own, the timing metrics' (grey: run-to-run noise, never a verdict); None without matplotlib."""
    panels = [(name, values) for name, values in (("quality", bars), ("timing", timing or {})) if values]
    if not panels or not available():
        return None
    plt = _pyplot()
    heights = [0.4 * len(values) + 1.0 for _, values in panels]
    figure, axes = plt.subplots(len(panels), 1, figsize=(7, sum(heights) + 0.8), dpi=100, squeeze=False,
                                gridspec_kw={"height_ratios": heights})
    for (name, values), row in zip(panels, axes):
        axis = row[0]
        quality = name == "quality"
        colours = ["tab:red" if quality and tolerance is not None and v > tolerance else
                   ("tab:blue" if quality else "tab:gray") for v in values.values()]
        axis.barh(list(values), list(values.values()), color=colours)
        if quality and tolerance is not None:
            axis.axvline(tolerance, color="black", linestyle="--", label=f"tolerance {tolerance:g}")
            axis.legend()
        axis.set_xlabel(f"relative difference ({name} metrics)")
        axis.invert_yaxis()
    axes[0][0].set_title(title)
    return _save(plt, figure, path)


def _save(plt, figure, path: Path) -> Path:
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path
