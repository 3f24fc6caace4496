"""`ptybatch compare A B`: the metrics two runs (or two phases' reports) share, side by side.

A side is a run (anything `locate_run` understands) or a report: an `artifact_inventory.json` file or a
report directory holding `analysis/artifact_inventory.json`. Columns are named by run id (and campaign
when the two differ: two runs of one campaign are otherwise indistinguishable), a line lists the params
that differ, and the comparison is written next to B's inventory as `compare_<a>_vs_<b>.md`, `.json` and
`.html` (self-contained) named with both run ids, so comparing other runs never overwrites it, with a bar
chart of relative differences (SVG). A matrix job (one cell per seed) is compared as a sample: the mean of
its cells on each side and the seed-aware verdict of reports/stats.py.
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
from ptycho_batch.reports.html import badge, esc, interval_cells, page, table, verdict_badge, without_icon
from ptycho_batch.reports.inventory import status_text
from ptycho_batch.reports.parity import Difference, cell_key, difference, within
from ptycho_batch.reports.stats import METHOD, Interval, Verdict
from ptycho_batch.reports.stats import compare as compare_samples
from ptycho_batch.util.fsio import write_atomic, write_json


@dataclass(frozen=True)
class Side:
    campaign: str
    run_id: str | None                # None: a report written before inventories named their run
    analysis_dir: Path
    jobs: dict[str, dict[str, Any]]   # job -> {"status": str, "metrics": {...}, "params": {...}, "base": str}

    def cells(self, base: str) -> list[str]:
        """The jobs of one campaign job: itself, or its matrix cells (seeds)."""
        return [name for name, job in self.jobs.items() if job.get("base", name) == base]


@dataclass(frozen=True)
class Row:
    job: str                          # the job, or a matrix job's name for the sample of its cells
    metric: str
    left: float                       # the value, or the mean over the cells
    right: float
    diff: Difference
    flagged: bool
    interval: Interval | None = None  # the seed-aware verdict; "single run" for one cell a side


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
                    {j["name"]: {"status": j["status"], "metrics": j.get("metrics", {}), "params": j.get("params", {}),
                                 "base": j.get("base", j["name"])} for j in data["jobs"]})
    run = locate_run(argument, out)
    plan, states = run.plan, load_run(run)
    return Side(plan.campaign, run.id, Path(plan.summary_dir) / "analysis",
                {name: {"status": status_text(states[name]), "metrics": states[name].metrics,
                        "params": plan.jobs[name].params, "base": plan.jobs[name].base} for name in plan.jobs})


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
    """Per campaign job both sides have and per numeric metric all its cells report: one row, seed-aware."""
    bases = [b for b in dict.fromkeys(j.get("base", n) for n, j in left.jobs.items()) if right.cells(b)]
    rows = []
    for base in bases:
        sides = [{cell_key(base, name): side.jobs[name]["metrics"] for name in side.cells(base)}
                 for side in (left, right)]
        for metric in next(iter(sides[0].values())):
            if metrics and not any(fnmatch.fnmatch(metric, p) for p in metrics):
                continue
            samples = [{cell: m.get(metric) for cell, m in side.items()} for side in sides]
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for s in samples for v in s.values()):
                continue
            floats = [{cell: float(v) for cell, v in sample.items()} for sample in samples]
            interval = compare_samples(floats[0], floats[1], rel)
            diff = difference(interval.left.mean, interval.right.mean)
            beyond = (not within(diff, rel, None) if interval.verdict == Verdict.SINGLE
                      else interval.verdict == Verdict.DIFFERENT)
            rows.append(Row(base, metric, interval.left.mean, interval.right.mean, diff,
                            beyond and not is_timing(metric), interval))
    return Comparison(left, right, rows, [n for n in left.jobs if n not in right.jobs],
                      [n for n in right.jobs if n not in left.jobs], rel, side_labels(left, right),
                      param_changes(left, right))


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def _value(row: Row, index: int) -> str:
    summary = None if row.interval is None else row.interval.right if index else row.interval.left
    if summary is None or summary.n < 2:
        return _fmt(row.right if index else row.left)
    return f"{summary.mean:.6g} ± {summary.sd:.3g} (n={summary.n})"


def _flag(row: Row) -> str:
    if row.interval is not None and row.interval.verdict != Verdict.SINGLE:
        text = row.interval.text()
        return f"{text} (timing: never flagged)" if is_timing(row.metric) else ("⚠️ " if row.flagged else "") + text
    return "⚠️ beyond tolerance" if row.flagged else "✅"


def _interval(row: Row) -> str:
    return row.interval.range_text() if row.interval else ""


def to_markdown(result: Comparison, chart: Path | None) -> str:
    a, b = result.labels
    lines = [f"# Compare {a} vs {b}", "", f"Campaigns: {result.left.campaign} (run {result.left.run_id or '?'}) vs "
             f"{result.right.campaign} (run {result.right.run_id or '?'}).", "",
             "Params that differ: " + ("; ".join(f"`{c}`" for c in result.param_changes) or "none") + ".", "",
             f"Tolerance: relative difference ≤ {result.rel:g}. A job with several runs (seeds) on both sides is "
             f"compared as a sample: mean ± sd, the 95 % interval of the difference ({b} − {a}) by {METHOD}.", "",
             "## Jobs", "", f"| Job | {a} | {b} |", "|---|---|---|"]
    for job in [n for n in result.left.jobs if n in result.right.jobs]:
        lines.append(f"| `{job}` | {result.left.jobs[job]['status']} | {result.right.jobs[job]['status']} |")
    lines += ["", "## Metrics", "", f"| Job | Metric | {a} | {b} | Abs diff | Rel diff | 95 % interval | Flag |",
              "|---|---|---|---|---|---|---|---|"]
    for row in result.rows:
        lines.append(f"| `{row.job}` | `{row.metric}` | {_value(row, 0)} | {_value(row, 1)} | "
                     f"{_fmt(row.diff.absolute)} | {_fmt(row.diff.relative)} | {_interval(row)} | {_flag(row)} |")
    for label, names in ((a, result.only_left), (b, result.only_right)):
        if names:
            lines += ["", f"Only in {label}: " + ", ".join(f"`{n}`" for n in names)]
    if chart is not None:
        lines += ["", f"![relative differences]({os.path.relpath(chart, result.right.analysis_dir)})"]
    return "\n".join(lines) + "\n"


def to_html(result: Comparison, chart: str | None) -> str:
    """The comparison as one self-contained page (same content as the Markdown, the chart inline)."""
    a, b = result.labels
    shared = [n for n in result.left.jobs if n in result.right.jobs]
    rows = [[f"<code>{esc(r.job)}</code>", f"<code>{esc(r.metric)}</code>", *interval_cells(r.interval),
             esc(_fmt(r.diff.relative)), badge("timing: never judged", "muted") if is_timing(r.metric)
             else verdict_badge(r.interval, not r.flagged)]
            for r in result.rows]
    body = [f"<h1>Compare {esc(a)} vs {esc(b)}</h1>",
            f"<p>Campaigns: {esc(result.left.campaign)} (run {esc(result.left.run_id or '?')}) vs "
            f"{esc(result.right.campaign)} (run {esc(result.right.run_id or '?')}). Params that differ: "
            + (esc("; ".join(result.param_changes)) or "none") + ".</p>",
            f"<p>Tolerance: relative difference ≤ {result.rel:g}. Several runs (seeds) per side: mean ± sd and the "
            f"95 % interval of the difference ({esc(b)} − {esc(a)}) by {esc(METHOD)}.</p>",
            "<h2 id=\"parity\">Metrics</h2>", "<div id=\"parity-table\">"
            + table(["Job", "Metric", a, b, "95 % interval", "Rel diff", "Verdict"], rows, numeric=[2, 3, 4, 5])
            + "</div>",
            "<h2>Jobs</h2>", table(["Job", a, b], [[f"<code>{esc(n)}</code>",
                                                    *(esc(without_icon(side.jobs[n]["status"]))
                                                      for side in (result.left, result.right))] for n in shared])]
    for label, names in ((a, result.only_left), (b, result.only_right)):
        if names:
            body.append(f"<p>Only in {esc(label)}: " + ", ".join(f"<code>{esc(n)}</code>" for n in names) + "</p>")
    if chart:
        body.append(f"<div class=\"chart\">{chart}</div>")
    return page(f"Compare {a} vs {b}", body)


def write_comparison(result: Comparison) -> Path:
    """compare_<a>_vs_<b>.md/.json/.html (and .svg) in B's analysis directory; returns the markdown path."""
    a, b = result.labels
    stem = "compare_" + re.sub(r"[^A-Za-z0-9._-]+", "_", f"{a}_vs_{b}")
    folder = result.right.analysis_dir
    folder.mkdir(parents=True, exist_ok=True)
    shown = [r for r in result.rows if r.diff.relative is not None and r.diff.relative >= NEGLIGIBLE * result.rel]
    quality = {f"{r.job} {r.metric}": r.diff.relative or 0.0 for r in shown if not is_timing(r.metric)}
    timing = {f"{r.job} {r.metric}": r.diff.relative or 0.0 for r in shown if is_timing(r.metric)}
    title = f"Relative differences, {a} vs {b}" + (f" ({'; '.join(result.param_changes)})" if result.param_changes
                                                   else "")
    chart = plots.relative_differences(quality, result.rel, title, timing=timing)
    chart_path = folder / f"{stem}.svg" if chart else None
    if chart and chart_path:
        write_atomic(chart_path, chart)
    markdown = folder / f"{stem}.md"
    write_atomic(markdown, to_markdown(result, chart_path))
    write_atomic(markdown.with_suffix(".html"), to_html(result, chart))
    write_json(folder / f"{stem}.json", {
        "left": a, "right": b, "left_run": result.left.run_id, "right_run": result.right.run_id,
        "left_campaign": result.left.campaign, "right_campaign": result.right.campaign,
        "param_changes": result.param_changes, "rel": result.rel, "method": METHOD,
        "rows": [{**asdict(r), "diff": asdict(r.diff), "verdict": str(r.interval.verdict) if r.interval else None}
                 for r in result.rows],
        "only_left": result.only_left, "only_right": result.only_right})
    return markdown
