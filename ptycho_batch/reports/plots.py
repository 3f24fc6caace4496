"""Charts for reports as inline SVG text, drawn by the runner itself: no plotting library, so the first report
of a plain install has its pictures, the Markdown inventory links them as .svg files and report.html inlines
them. (The workloads' own figures are drawn in the backend environments with their pinned matplotlib.)
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from html import escape

Curve = tuple[Sequence[float], Sequence[float]]

WIDTH = 720
LEFT, RIGHT, TOP = 70, 190, 34          # margins (the legend sits in the right one)
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
DASHES = ("", "6 3", "2 3", "8 3 2 3")
MARKERS = ("circle", "square", "triangle")


def ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (1, 2, 5 x 10^k steps)."""
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    return [first + i * step for i in range(int(math.ceil((high - first) / step)) + 1)]


def _label(value: float) -> str:
    return f"{value:.3g}"


class _Axes:
    """A panel: data coordinates to pixels, with its grid, tick labels and axis titles."""

    def __init__(self, top: float, height: float, xs: Sequence[float], ys: Sequence[float]) -> None:
        self.xt, self.yt = ticks(min(xs), max(xs)), ticks(min(ys), max(ys))
        self.top, self.height, self.width = top, height, WIDTH - LEFT - RIGHT

    def x(self, value: float) -> float:
        return LEFT + (value - self.xt[0]) / (self.xt[-1] - self.xt[0]) * self.width

    def y(self, value: float) -> float:
        return self.top + self.height - (value - self.yt[0]) / (self.yt[-1] - self.yt[0]) * self.height

    def frame(self, ylabel: str, xlabel: str | None) -> list[str]:
        bottom = self.top + self.height
        parts = [f'<rect x="{LEFT}" y="{self.top}" width="{self.width}" height="{self.height}" fill="none" '
                 'stroke="#444"/>']
        for value in self.yt:
            y = self.y(value)
            parts.append(f'<line x1="{LEFT}" x2="{LEFT + self.width}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
                         f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_label(value)}</text>')
        for value in self.xt:
            x = self.x(value)
            parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{self.top}" y2="{bottom}" stroke="#eee"/>'
                         f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle">{_label(value)}</text>')
        parts.append(f'<text transform="translate(16 {self.top + self.height / 2:.1f}) rotate(-90)" '
                     f'text-anchor="middle">{escape(ylabel)}</text>')
        if xlabel:
            parts.append(f'<text x="{LEFT + self.width / 2}" y="{bottom + 34}" text-anchor="middle">'
                         f'{escape(xlabel)}</text>')
        return parts


def _svg(height: float, title: str, body: list[str]) -> str:
    """The chart with its title on top (wrapped, the body shifted down by the extra lines)."""
    lines = textwrap.wrap(title, 80) or [""]
    extra = 16 * (len(lines) - 1)
    heading = "".join(f'<text x="{LEFT}" y="{20 + 16 * i}" font-size="13" font-weight="bold">{escape(line)}</text>'
                      for i, line in enumerate(lines))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height + extra:.0f}" width="{WIDTH}" '
            f'height="{height + extra:.0f}" font-family="sans-serif" font-size="11" role="img">'
            f'<title>{escape(title)}</title><rect width="100%" height="100%" fill="white"/>{heading}'
            f'<g transform="translate(0 {extra})">' + "".join(body) + "</g></svg>\n")


def _marker(kind: str, x: float, y: float, colour: str) -> str:
    if kind == "square":
        return f'<rect x="{x - 3:.1f}" y="{y - 3:.1f}" width="6" height="6" fill="white" stroke="{colour}"/>'
    if kind == "triangle":
        return (f'<path d="M{x:.1f} {y - 4:.1f}L{x + 4:.1f} {y + 3:.1f}L{x - 4:.1f} {y + 3:.1f}Z" fill="white" '
                f'stroke="{colour}"/>')
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="white" stroke="{colour}"/>'


def loss_curves(curves: Mapping[str, Curve], title: str, xlabel: str,
                groups: dict[str, str] | None = None) -> str | None:
    """One line per job on a shared axis: colour by group (the backend: torch vs TF overlaid), line style and
    marker by position within the group (the seed), so equal curves stay visible. With exactly two curves a
    second panel shows their relative difference at the x both have. None when there is no data."""
    curves = {label: xy for label, xy in curves.items() if len(xy[1])}
    if not curves:
        return None
    groups = groups or {label: label for label in curves}
    colours = {g: PALETTE[i % len(PALETTE)] for i, g in enumerate(dict.fromkeys(groups[k] for k in curves))}
    rank: dict[str, int] = {}
    xs = [x for xy in curves.values() for x in xy[0]]
    ys = [y for xy in curves.values() for y in xy[1]]
    pair = len(curves) == 2
    main = _Axes(TOP, 260, xs, ys)
    body = main.frame("training loss", None if pair else xlabel)
    for index, (label, (cx, cy)) in enumerate(curves.items()):
        group = groups[label]
        order = rank[group] = rank.get(group, -1) + 1
        colour, dash, marker = colours[group], DASHES[order % len(DASHES)], MARKERS[order % len(MARKERS)]
        points = " ".join(f"{main.x(x):.1f},{main.y(y):.1f}" for x, y in zip(cx, cy))
        body.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.6"'
                    + (f' stroke-dasharray="{dash}"' if dash else "") + "/>")
        body += [_marker(marker, main.x(x), main.y(y), colour) for x, y in zip(cx, cy)]
        ly = TOP + 10 + 18 * index
        body.append(f'<line x1="{WIDTH - RIGHT + 12}" x2="{WIDTH - RIGHT + 40}" y1="{ly}" y2="{ly}" '
                    f'stroke="{colour}" stroke-width="1.6"' + (f' stroke-dasharray="{dash}"' if dash else "") + "/>"
                    + _marker(marker, WIDTH - RIGHT + 26, ly, colour)
                    + f'<text x="{WIDTH - RIGHT + 46}" y="{ly + 4}">{escape(label)}</text>')
    height = TOP + 260 + 40
    if pair:
        (xa, ya), (xb, yb) = curves.values()
        other = dict(zip(xb, yb))
        shared = [(x, abs(a - other[x]) / max(abs(a), abs(other[x]), 1e-30)) for x, a in zip(xa, ya) if x in other]
        if shared:
            below = _Axes(TOP + 260 + 30, 90, [x for x, _ in shared], [0.0] + [d for _, d in shared])
            body += below.frame("relative difference", xlabel)
            body.append('<polyline points="' + " ".join(f"{below.x(x):.1f},{below.y(d):.1f}" for x, d in shared)
                        + '" fill="none" stroke="black"/>')
            height = TOP + 260 + 30 + 90 + 44
    return _svg(height, title, body)


def relative_differences(bars: dict[str, float], tolerance: float | None, title: str,
                         timing: dict[str, float] | None = None) -> str | None:
    """Horizontal bars of the quality metrics' relative differences (red beyond the tolerance line) and, in a
    panel of their own, the timing metrics' (grey: run-to-run noise, never a verdict); None when none."""
    panels = [(name, values) for name, values in (("quality", bars), ("timing", timing or {})) if values]
    if not panels:
        return None
    body: list[str] = []
    top, label_width = TOP + 6, 260
    span = WIDTH - label_width - 40
    for name, values in panels:
        quality = name == "quality"
        limit = max([*values.values(), *([tolerance] if quality and tolerance is not None else [])]) or 1.0
        scale = span / limit
        for index, (label, value) in enumerate(values.items()):
            y = top + 20 * index
            colour = ("#d62728" if quality and tolerance is not None and value > tolerance else
                      "#1f77b4" if quality else "#999")
            body.append(f'<text x="{label_width - 6}" y="{y + 12}" text-anchor="end">{escape(label[:45])}</text>'
                        f'<rect x="{label_width}" y="{y + 2}" width="{max(value * scale, 0.5):.1f}" height="14" '
                        f'fill="{colour}"><title>{escape(label)}: {value:.4g}</title></rect>'
                        f'<text x="{label_width + value * scale + 4:.1f}" y="{y + 12}">{value:.3g}</text>')
        bottom = top + 20 * len(values)
        if quality and tolerance is not None:
            x = label_width + tolerance * scale
            body.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top - 4}" y2="{bottom + 2}" stroke="black" '
                        f'stroke-dasharray="5 3"/><text x="{x:.1f}" y="{bottom + 14}" text-anchor="middle">'
                        f'tolerance {tolerance:g}</text>')
        body.append(f'<text x="{label_width}" y="{bottom + 30}">relative difference ({name} metrics)</text>')
        top = bottom + 48
    return _svg(top, title, body)
