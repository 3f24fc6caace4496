"""Rich tables for `plan`, `submit` and `status` (the live TUI composes its own from the same pieces)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console, RenderableType
from rich.markup import escape
from rich.table import Table

from ptycho_batch.campaign.plan import Plan
from ptycho_batch.engine.decisions import Decision
from ptycho_batch.journal.records import JobState, State
from ptycho_batch.reports.compare import Comparison
from ptycho_batch.reports.inventory import detail_text
from ptycho_batch.reports.stats import Verdict
from ptycho_batch.tui.render import STATE_STYLE


def print_renderable(renderable: RenderableType) -> None:
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)  # logs and pipes: wide rows rather than folded cells
    console.print(renderable)


def plan_table(plan: Plan, decisions: dict[str, Decision], sbatch: dict[str, dict[str, Any]] | None = None
               ) -> Table:
    table = Table(title=f"plan: {plan.campaign}", title_justify="left")
    for column in ("job", "backend", "runtime", "stage", "action", "why", "command", *(["sbatch"] if sbatch else [])):
        table.add_column(column, overflow="fold")
    for name, job in plan.jobs.items():
        decision = decisions[name]
        action = "[cyan]run[/]" if decision.run else "[green]reuse[/]"
        options = [" ".join(f"--{k}" if v is True else f"--{k}={v}" for k, v in sbatch[name].items())] if sbatch else []
        table.add_row(escape(name), job.backend, job.runtime, job.stage, action, escape(decision.reason),
                      escape(" ".join(job.argv)), *map(escape, options))
    return table


def status_table(plan: Plan, states: dict[str, JobState], limit: int | None = None) -> Table:
    """One row per job; past `limit` rows, the jobs that did not complete and a count of the rest."""
    names = list(plan.jobs)
    counts = Counter(states[n].state for n in names)
    caption = ", ".join(f"{state}: {count}" for state, count in sorted(counts.items()))
    if limit is not None and len(names) > limit:
        names = [n for n in names if states[n].state != State.COMPLETED][:limit]
        caption = f"{len(plan.jobs) - len(names)} more jobs not shown; " + caption
    table = Table(title=f"{plan.campaign}", title_justify="left", caption=caption, caption_justify="left")
    for column in ("job", "backend", "stage", "state", "attempt", "duration", "detail", "log"):
        table.add_column(column, overflow="fold")
    for name in names:
        job = plan.jobs[name]
        state = states[name]
        style = STATE_STYLE.get(state.state, "")
        duration = f"{state.duration:.1f}s" if state.duration is not None else ""
        detail = detail_text(state)
        table.add_row(escape(name), job.backend, job.stage, f"[{style}]{state.state}[/]", str(state.attempt or ""),
                      duration, escape(detail), escape(Path(state.log or job.log).name))
    return table


def compare_table(result: Comparison) -> Table:
    a, b = result.labels
    changed = f"; params: {', '.join(result.param_changes)}" if result.param_changes else ""
    table = Table(title=f"compare {a} vs {b} (rel tolerance {result.rel:g}{changed})", title_justify="left")
    for column in ("job", "metric", a, b, "abs diff", "rel diff", "flag"):
        table.add_column(column, overflow="fold")
    for row in result.rows:
        rel = f"{row.diff.relative:.3g}" if row.diff.relative is not None else ""
        flag = "[bold red]beyond tolerance[/]" if row.flagged else "[green]ok[/]"
        if row.interval is not None and row.interval.left.n > 1 and row.interval.right.n > 1:   # seeds: the verdict
            colour = "bold red" if row.flagged else "green" if row.interval.verdict == Verdict.EQUIVALENT else "yellow"
            flag = f"[{colour}]{escape(row.interval.text())}[/]"
        table.add_row(escape(row.job), escape(row.metric), f"{row.left:.6g}", f"{row.right:.6g}",
                      f"{row.diff.absolute:.3g}", rel, flag)
    return table
