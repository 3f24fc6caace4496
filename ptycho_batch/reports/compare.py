"""`ptybatch compare A B`: the metrics two runs (or two phases' reports) share, side by side.

A side is a run (anything `locate_run` understands) or a report: an `artifact_inventory.json` file or a
report directory holding `analysis/artifact_inventory.json`. Columns are named by run id (and campaign
when the two differ: two runs of one campaign are otherwise indistinguishable), a line lists the params
that differ, and the comparison is written next to B's inventory as `compare_<a>_vs_<b>.md` and `.json`
named with both run ids, so comparing other runs never overwrites it (and a bar chart of relative
differences when matplotlib is installed).
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ptycho_batch.executors.registry import load_run
from ptycho_batch.journal.locate import locate_run
from ptycho_batch.reports import plots
from ptycho_batch.reports.inventory import status_text
from ptycho_batch.reports.parity import Difference, difference, within
from ptycho_batch.util.fsio import write_atomic, write_json


@dataclass(frozen=True)
class Side:
    campaign: str
    run_id: str | None                # None: a report written before inventories named their run
    analysis_dir: Path
    jobs: dict[str, dict[str, Any]]   # job -> {"status": str, "metrics": {...}, "params": {...}}


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
    labels: tuple[str, str]
    param_changes: list[str]          # `gridsize: 1 → 2` for each param whose values differ


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
        return Side(data["campaign"], data.get("run_id"), inventory.parent,
                    {j["name"]: {"status": j["status"], "metrics": j.get("metrics", {}), "params": j.get("params", {})}
                     for j in data["jobs"]})
    run = locate_run(argument, out)
    plan, states = run.plan, load_run(run)
    return Side(plan.campaign, run.id, Path(plan.summary_dir) / "analysis",
                {name: {"status": status_text(states[name]), "metrics": states[name].metrics,
                        "params": plan.jobs[name].params} for name in plan.jobs})


def side_labels(left: Side, right: Side) -> tuple[str, str]:
    """Run ids, with the campaign in front when the campaigns differ (or when a side has no run id)."""
    both = left.campaign != right.campaign or not left.run_id or not right.run_id

    def label(side: Side) -> str:
        return " ".join(([side.campaign] if both else []) + ([side.run_id] if side.run_id else []))

    return label(left), label(right)


def param_changes(left: Side, right: Side) -> list[str]:
    """Each param whose values (over the shared jobs) differ between the two sides."""
    def values(side: Side, shared: list[str]) -> dict[str, str]:
        seen: dict[str, set[str]] = {}
        for job in shared:
            for name, value in side.jobs[job].get("params", {}).items():
                seen.setdefault(name, set()).add(str(value))
        return {name: "/".join(sorted(found)) for name, found in seen.items()}

    shared = [name for name in left.jobs if name in right.jobs]
    a, b = values(left, shared), values(right, shared)
    return [f"{name}: {a.get(name, '(unset)')} → {b.get(name, '(unset)')}"
            for name in sorted(set(a) | set(b)) if a.get(name) != b.get(name)]


TIMING = re.compile(r"(?:^|[._])(?:time|duration|elapsed|seconds|secs?|samples_per_s|throughput)(?:$|[._])|_s$",
                    re.IGNORECASE)
NEGLIGIBLE = 0.01   # a relative difference below this share of the tolerance is not drawn (1e-7 noise)


def is_timing(metric: str) -> bool:
    """Wall-clock figures differ from run to run by nature: compared apart from quality, never flagged."""
    return bool(TIMING.search(metric))


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
                flagged = not is_timing(metric) and not within(diff, rel, None)
                rows.append(Row(job, metric, float(a[metric]), float(b[metric]), diff, flagged))
    return Comparison(left, right, rows, [n for n in left.jobs if n not in right.jobs],
                      [n for n in right.jobs if n not in left.jobs], rel, side_labels(left, right),
                      param_changes(left, right))


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def to_markdown(result: Comparison, chart: Path | None) -> str:
    a, b = result.labels
    lines = [f"# Compare {a} vs {b}", "", f"Campaigns: {result.left.campaign} (run {result.left.run_id or '?'}) vs "
             f"{result.right.campaign} (run {result.right.run_id or '?'}).", "",
             "Params that differ: " + ("; ".join(f"`{c}`" for c in result.param_changes) or "none") + ".", "",
             f"Tolerance: relative difference ≤ {result.rel:g}.", "",
             "## Jobs", "", f"| Job | {a} | {b} |", "|---|---|---|"]
    for job in [n for n in result.left.jobs if n in result.right.jobs]:
        lines.append(f"| `{job}` | {result.left.jobs[job]['status']} | {result.right.jobs[job]['status']} |")
    lines += ["", "## Metrics", "", f"| Job | Metric | {a} | {b} | Abs diff | Rel diff | Flag |",
              "|---|---|---|---|---|---|---|"]
    for row in result.rows:
        flag = "⚠️ beyond tolerance" if row.flagged else "✅"
        lines.append(f"| `{row.job}` | `{row.metric}` | {_fmt(row.left)} | {_fmt(row.right)} | "
                     f"{_fmt(row.diff.absolute)} | {_fmt(row.diff.relative)} | {flag} |")
    for label, names in ((a, result.only_left), (b, result.only_right)):
        if names:
            lines += ["", f"Only in {label}: " + ", ".join(f"`{n}`" for n in names)]
    if chart is not None:
        lines += ["", f"![relative differences]({os.path.relpath(chart, result.right.analysis_dir)})"]
    return "\n".join(lines) + "\n"


def write_comparison(result: Comparison) -> Path:
    """compare_<a>_vs_<b>.md/.json (and .png) in B's analysis directory; returns the markdown path."""
    a, b = result.labels
    stem = "compare_" + re.sub(r"[^A-Za-z0-9._-]+", "_", f"{a}_vs_{b}")
    folder = result.right.analysis_dir
    folder.mkdir(parents=True, exist_ok=True)
    shown = [r for r in result.rows if r.diff.relative is not None and r.diff.relative >= NEGLIGIBLE * result.rel]
    quality = {f"{r.job} {r.metric}": r.diff.relative or 0.0 for r in shown if not is_timing(r.metric)}
    timing = {f"{r.job} {r.metric}": r.diff.relative or 0.0 for r in shown if is_timing(r.metric)}
    title = f"Relative differences, {a} vs {b}" + (f"\n({'; '.join(result.param_changes)})" if result.param_changes
                                                   else "")
    chart = plots.relative_differences(quality, result.rel, folder / f"{stem}.png", title, timing=timing)
    markdown = folder / f"{stem}.md"
    write_atomic(markdown, to_markdown(result, chart))
    write_json(folder / f"{stem}.json", {
        "left": a, "right": b, "left_run": result.left.run_id, "right_run": result.right.run_id,
        "left_campaign": result.left.campaign, "right_campaign": result.right.campaign,
        "param_changes": result.param_changes, "rel": result.rel,
        "rows": [{**asdict(r), "diff": asdict(r.diff)} for r in result.rows],
        "only_left": result.only_left, "only_right": result.only_right})
    return markdown
