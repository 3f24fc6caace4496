"""`ptybatch compare A B`: the metrics two runs (or two phases' reports) share, side by side.

A side is a run (anything `locate_run` understands) or a report: an `artifact_inventory.json` file or a
report directory holding `analysis/artifact_inventory.json`. The comparison is written next to B's
inventory as `compare_<a>_vs_<b>.md` and `.json` (and a bar chart of relative differences when
matplotlib is installed).
"""

from __future__ import annotations

import fnmatch
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ptycho_batch.reports import plots
from ptycho_batch.util.fsio import write_atomic, write_json
from ptycho_batch.reports.parity import Difference, difference, within
from ptycho_batch.reports.inventory import status_text
from ptycho_batch.executors.registry import load_run
from ptycho_batch.journal.locate import locate_run


@dataclass(frozen=True)
class Side:
    label: str
    analysis_dir: Path
    jobs: dict[str, dict[str, Any]]   # job -> {"status": str, "metrics": {...}}


@dataclass(frozen=True)
class Row:
    job: str
    metric: str
    left: float
    right: float
    diff: Difference
    flagged: bool


@dataclass(frozen=True)
class Comparison:
    left: Side
    right: Side
    rows: list[Row]
    only_left: list[str]
    only_right: list[str]
    rel: float


def _inventory_file(argument: str) -> Path | None:
    path = Path(argument)
    for candidate in (path, path / "analysis" / "artifact_inventory.json", path / "artifact_inventory.json"):
        if candidate.is_file() and candidate.name == "artifact_inventory.json":
            return candidate
    return None


def load_side(argument: str, out: Path | None = None) -> Side:
    inventory = _inventory_file(argument)
    if inventory is not None:
        data = json.loads(inventory.read_text())
        return Side(data["campaign"], inventory.parent,
                    {j["name"]: {"status": j["status"], "metrics": j.get("metrics", {})} for j in data["jobs"]})
    run = locate_run(argument, out)
    plan, states = run.plan, load_run(run)
    return Side(plan.campaign, Path(plan.summary_dir) / "analysis",
                {name: {"status": status_text(states[name]), "metrics": states[name].metrics} for name in plan.jobs})


def compare(left: Side, right: Side, metrics: list[str] | None = None, rel: float = 0.05) -> Comparison:
    shared = [name for name in left.jobs if name in right.jobs]
    rows = []
    for job in shared:
        a, b = left.jobs[job]["metrics"], right.jobs[job]["metrics"]
        for metric in a:
            if metric not in b or (metrics and not any(fnmatch.fnmatch(metric, p) for p in metrics)):
                continue
            if isinstance(a[metric], (int, float)) and isinstance(b[metric], (int, float)):
                diff = difference(float(a[metric]), float(b[metric]))
                rows.append(Row(job, metric, float(a[metric]), float(b[metric]), diff, not within(diff, rel, None)))
    return Comparison(left, right, rows, [n for n in left.jobs if n not in right.jobs],
                      [n for n in right.jobs if n not in left.jobs], rel)


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def to_markdown(result: Comparison, chart: Path | None) -> str:
    a, b = result.left.label, result.right.label
    lines = [f"# Compare {a} vs {b}", "", f"Tolerance: relative difference ≤ {result.rel:g}.", "",
             "## Jobs", "", f"| Job | {a} | {b} |", "|---|---|---|"]
    for job in [n for n in result.left.jobs if n in result.right.jobs]:
        lines.append(f"| `{job}` | {result.left.jobs[job]['status']} | {result.right.jobs[job]['status']} |")
    lines += ["", "## Metrics", "", f"| Job | Metric | {a} | {b} | Abs diff | Rel diff | Flag |",
              "|---|---|---|---|---|---|---|"]
    for row in result.rows:
        lines.append(f"| `{row.job}` | `{row.metric}` | {_fmt(row.left)} | {_fmt(row.right)} | "
                     f"{_fmt(row.diff.absolute)} | {_fmt(row.diff.relative)} | {'⚠️ beyond tolerance' if row.flagged else '✅'} |")
    for label, names in ((a, result.only_left), (b, result.only_right)):
        if names:
            lines += ["", f"Only in {label}: " + ", ".join(f"`{n}`" for n in names)]
    if chart is not None:
        lines += ["", f"![relative differences]({os.path.relpath(chart, result.right.analysis_dir)})"]
    return "\n".join(lines) + "\n"


def write_comparison(result: Comparison) -> Path:
    """compare_<a>_vs_<b>.md/.json (and .png) in B's analysis directory; returns the markdown path."""
    stem = f"compare_{result.left.label}_vs_{result.right.label}"
    folder = result.right.analysis_dir
    folder.mkdir(parents=True, exist_ok=True)
    bars = {f"{r.job} {r.metric}": r.diff.relative for r in result.rows if r.diff.relative is not None}
    chart = plots.relative_differences(bars, result.rel, folder / f"{stem}.png", f"{result.left.label} vs "
                                       f"{result.right.label}")
    markdown = folder / f"{stem}.md"
    write_atomic(markdown, to_markdown(result, chart))
    write_json(folder / f"{stem}.json", {
        "left": result.left.label, "right": result.right.label, "rel": result.rel,
        "rows": [{**asdict(r), "diff": asdict(r.diff)} for r in result.rows],
        "only_left": result.only_left, "only_right": result.only_right})
    return markdown
