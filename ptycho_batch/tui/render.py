"""The dashboard's pieces, each its own renderable: header, job table, blockers panel, policy line, log view.

Pure functions of what the viewer knows (JournalCache, LogDigests) and of the rows on screen, so render
tests can print them to a recording Console without a terminal.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from ptycho_batch.campaign.plan import Plan
from ptycho_batch.journal.reader import JournalCache
from ptycho_batch.journal.records import UNSUCCESSFUL, JobState, State
from ptycho_batch.reports.detail import STATE_STYLE
from ptycho_batch.reports.inventory import policy_decision
from ptycho_batch.tui.cache import LogDigests
from ptycho_batch.tui.rows import Row

STATE_SYMBOL = {State.PENDING: "·", State.RUNNING: "▶", State.COMPLETED: "✔", State.FAILED: "✘",
                State.SKIPPED: "↷", State.CANCELLED: "⊘", State.LOST: "?"}
STATE_ORDER = (State.RUNNING, State.FAILED, State.LOST, State.CANCELLED, State.SKIPPED, State.PENDING,
               State.COMPLETED)  # counts, most urgent first
_DIGEST_SUFFIXES = (".sha1", ".sha256", ".md5")


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(max(0.0, seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def fmt_metrics(metrics: dict[str, Any]) -> str:
    """`key=value` pairs, numbers to 4 significant digits; `patch_stats.mean` shows as `mean` when that
    is unambiguous; artifact digests are left to the report."""
    shown = {key: value for key, value in metrics.items() if not key.endswith(_DIGEST_SUFFIXES)}
    short = Counter(key.rsplit(".", 1)[-1] for key in shown)
    parts = []
    for key, value in shown.items():
        label = key.rsplit(".", 1)[-1] if short[key.rsplit(".", 1)[-1]] == 1 else key
        parts.append(f"{label}={value:.4g}" if isinstance(value, float) else f"{label}={value}")
    return " ".join(parts)


def state_text(state: State) -> Text:
    return Text(f"{STATE_SYMBOL.get(state, '?')} {state}", style=STATE_STYLE.get(state, ""))


def counts_text(counts: Counter[State]) -> Text:
    text = Text()
    for state in STATE_ORDER:
        if counts.get(state):
            text.append(f"{STATE_SYMBOL[state]}{counts[state]} ", style=STATE_STYLE[state])
    return text


def header(cache: JournalCache, counts: Counter[State]) -> RenderableType:
    plan, info = cache.plan, cache.info
    total = len(plan.jobs)
    done = sum(count for state, count in counts.items() if state not in (State.PENDING, State.RUNNING))
    submit = Text("submit running", style="green") if cache.submit_alive else Text("no submit running", style="dim")
    title = Text.assemble((plan.title, "bold"), f"  campaign {plan.campaign} · run {cache.run.id} · executor ",
                          (str(info.get("executor", "?")), "bold"), " · ", submit,
                          no_wrap=True, overflow="ellipsis")
    backends = " · ".join(
        f"{backend}={plan.runtimes.get(backend, '?')} "
        f"({'required' if backend in plan.required_backends else 'optional'})"
        for backend in [*plan.required_backends, *plan.optional_backends])
    line2 = _line(f"backends: {backends}   elapsed {fmt_duration(cache.elapsed())}", "")
    progress = Table.grid(padding=(0, 1))
    progress.add_column(no_wrap=True)
    progress.add_column(ratio=1)
    progress.add_column(no_wrap=True)
    bar = ProgressBar(total=max(total, 1), completed=done, complete_style="green", finished_style="green")
    progress.add_row(counts_text(counts), bar, Text(f"{done}/{total} done"))
    return Group(title, line2, progress)


def _where(state: JobState) -> str:
    if state.slurm_job_id:
        return f"{state.slurm_job_id} {state.host or ''}".strip()
    return f"pid {state.pid}" if state.pid else ""


@dataclass(frozen=True)
class GroupSummary:
    """What a collapsed matrix row shows, computed once per journal change, not once per frame."""

    counts: Counter[State]
    running: int
    first_start: float | None
    last_end: float | None
    latest_running: JobState | None

    @classmethod
    def of(cls, members: Sequence[JobState]) -> GroupSummary:
        counts: Counter[State] = Counter()
        first_start = last_end = None
        latest: JobState | None = None
        for state in members:  # one pass: a matrix job can have thousands of cells
            counts[state.state] += 1
            if state.started is not None and (first_start is None or state.started < first_start):
                first_start = state.started
            if state.ended is not None and (last_end is None or state.ended > last_end):
                last_end = state.ended
            if state.state == State.RUNNING and (latest is None or state.updated > latest.updated):
                latest = state
        return cls(counts, counts[State.RUNNING], first_start, last_end, latest)

    def span(self) -> float | None:
        if self.first_start is None:
            return None
        return (time.time() if self.running or self.last_end is None else self.last_end) - self.first_start


def job_table(rows: Sequence[Row], selected: str | None, cache: JournalCache, digests: LogDigests,
              expanded: set[str]) -> Table:
    """The visible rows only; the caller windows them (10,000 jobs never reach this function)."""
    table = Table(box=box.SIMPLE_HEAD, expand=True, pad_edge=False, show_edge=False, padding=(0, 1))
    for column, options in (("job", {"max_width": 40}), ("backend", {}), ("stage", {}),
                            ("state", {"min_width": 11}), ("att", {"justify": "right"}), ("where", {}),
                            ("elapsed", {"justify": "right"}), ("last log line", {"ratio": 3}),
                            ("metrics", {"ratio": 4})):
        table.add_column(column, no_wrap=True, overflow="ellipsis", **options)
    for row in rows:
        style = "reverse" if row.key == selected else ""
        if row.group:
            table.add_row(*_group_cells(row, cache, digests, row.key in expanded), style=style)
        else:
            table.add_row(*_job_cells(row, cache, digests), style=style)
    return table


def _job_cells(row: Row, cache: JournalCache, digests: LogDigests) -> list[RenderableType]:
    state = cache.states[row.key]
    job = cache.plan.jobs[row.key]
    name = "  " + row.key[len(job.base):] if row.child else row.key
    says_why = state.state in (State.PENDING, State.SKIPPED, State.CANCELLED) and state.reason
    last_line = (state.reason or "") if says_why else state.warning_text or digests.get(state).last_line
    return [Text(name), job.backend, job.stage, state_text(state.state), str(state.attempt or ""),
            _where(state), fmt_duration(state.duration), Text(last_line, style="dim"),
            Text(fmt_metrics(digests.metrics(state)))]


def _group_cells(row: Row, cache: JournalCache, digests: LogDigests, open_: bool) -> list[RenderableType]:
    summary = cache.memo(f"group:{row.key}", cache.base_version.get(row.key, 0),
                         lambda: GroupSummary.of([cache.states[name] for name in row.members]))
    first = cache.plan.jobs[row.members[0]]
    latest = summary.latest_running
    name = Text(f"{'▾' if open_ else '▸'} {row.key} ({len(row.members)})", style="bold")
    return [name, first.backend, first.stage,
            counts_text(summary.counts), "", f"{summary.running} running" if summary.running else "",
            fmt_duration(summary.span()), Text(digests.get(latest).last_line if latest else "", style="dim"), ""]


def blockers_panel(states: Iterable[JobState], limit: int) -> Panel | None:
    """Each failed job's failure class and the line that shows it, newest first; None when all is well. Jobs
    that share one red note (the tasks of an array sbatch refused) are one row, as in the report."""
    failed = sorted((s for s in states if s.state == State.FAILED or s.red_note), key=lambda s: -(s.ended or 0))
    if not failed:
        return None
    blockers: dict[str, list[JobState]] = {}   # red note (or the job, without one) -> its jobs
    for state in failed:
        blockers.setdefault(state.red_note or state.name, []).append(state)
    grid = Table.grid(padding=(0, 1))
    for column in ("job", "class", "line", "note"):
        grid.add_column(column, no_wrap=True, overflow="ellipsis", ratio=4 if column == "line" else None)
    for jobs in list(blockers.values())[:limit]:
        state = jobs[0]
        who = state.name if len(jobs) == 1 else f"{state.name} … {jobs[-1].name} ({len(jobs)} jobs)"
        grid.add_row(Text(f"✘ {who}", style="bold red"), Text(state.failure_class or "?", style="red"),
                     Text(state.failure_line or ""), Text(Path(state.red_note).name if state.red_note else "",
                                                          style="dim"))
    more = f" (newest {limit} shown)" if len(blockers) > limit else ""
    return Panel(grid, title=f"blockers: {len(blockers)}{more}", title_align="left", border_style="red",
                 box=box.ROUNDED, padding=(0, 1))


def blocker_height(panel: Panel | None) -> int:
    """Lines the blockers panel takes (its rows and two borders)."""
    if panel is None:
        return 0
    grid = panel.renderable
    return (grid.row_count if isinstance(grid, Table) else 1) + 2


def policy_line(plan: Plan, states: dict[str, JobState], counts: Counter[tuple[str, State]],
                settled: bool) -> Text:
    """Whether the required backends are on track (from per-backend counts); the report's verdict once settled."""
    if settled:
        decision = policy_decision(plan, states)
        mark, style = ("✔ ", "green") if decision.passed else ("✘ ", "bold red")
        return _line(mark + decision.text, style)
    required, optional = set(plan.required_backends), set(plan.optional_backends)
    total = sum(n for (backend, _), n in counts.items() if backend in required)
    completed = sum(n for (backend, state), n in counts.items() if backend in required and state == State.COMPLETED)
    off_track = sum(n for (backend, state), n in counts.items() if backend in required and state in UNSUCCESSFUL)
    optional_bad = sum(n for (backend, state), n in counts.items() if backend in optional and state in UNSUCCESSFUL)
    names = "[" + ", ".join(plan.required_backends) + "]"
    deferred = f"; optional backends: {optional_bad} not passing (deferred, never fatal)" if optional_bad else ""
    if off_track:
        first = islice((s for s in states.values() if s.backend in required and s.state in UNSUCCESSFUL), 3)
        shown = "; ".join(f"{s.name} {s.state}" for s in first) + (" …" if off_track > 3 else "")
        return _line(f"✘ {plan.policy_id}: required backends {names} off track: {shown}{deferred}", "bold red")
    return _line(f"▶ {plan.policy_id}: required backends {names} on track: {completed}/{total} completed{deferred}",
                 "green")


def _line(text: str, style: str) -> Text:
    """One screen line whatever the width (the table's height budget counts on it)."""
    return Text(text, style=style, no_wrap=True, overflow="ellipsis")


def log_view(state: JobState, path: Path, lines: list[str], height: int) -> Panel:
    empty = "(the log is empty)" if path.exists() else "(no log yet)"
    body = Text("\n".join(lines[-height:]) if lines else empty, no_wrap=True, overflow="ellipsis")
    title = Text.assemble(f"log: {state.name} ", state_text(state.state), f"  {path}")
    return Panel(body, title=title, title_align="left", height=height + 2, box=box.ROUNDED, padding=(0, 1))


def footer(hint: str, message: str = "") -> Text:
    text = _line(hint, "dim")
    if message:
        text = Text.assemble((message, "bold yellow"), "   ", text, no_wrap=True, overflow="ellipsis")
    return text
