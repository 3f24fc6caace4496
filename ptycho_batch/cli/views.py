"""Rich tables for `plan`, `submit` and `status` (the live TUI composes its own from the same pieces)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console, RenderableType
from rich.markup import escape
from rich.table import Table

from ptycho_batch.campaign.plan import Plan
from ptycho_batch.journal.records import JobState, State
from ptycho_batch.journal.store import JournalStates
from ptycho_batch.reports.detail import STATE_STYLE, detail_text

if TYPE_CHECKING:  # `status` draws its table without loading the cache rules or the comparison maths
    from ptycho_batch.engine.decisions import Decision
    from ptycho_batch.reports.compare import Comparison


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


FOLD_CELLS = 50   # a matrix job with more cells than this is shown as one row per state of its cells


def status_table(plan: Plan, states: Mapping[str, JobState], limit: int | None = None) -> Table:
    """One row per job, a big matrix job's cells folded into one row per state (a 10,000-task array stays a
    few rows); past `limit` rows, the jobs that did not complete and a count of the rest."""
    state_of = _state_of(states)
    counts = Counter(map(state_of, plan.jobs))
    caption = ", ".join(f"{state}: {count}" for state, count in sorted(counts.items()))
    rows: list[tuple[str, ...]] = []
    for base, members in plan.jobs.groups().items():
        if len(members) > FOLD_CELLS:
            rows.extend(_folded_rows(plan, states, state_of, base, members))
        else:
            rows.extend(_job_row(plan, states, name) for name in members)
    if limit is not None and len(rows) > limit:
        kept = [row for row in rows if State.COMPLETED not in row[3]][:limit]
        caption = f"{len(rows) - len(kept)} more rows not shown; " + caption
        rows = kept
    table = Table(title=f"{plan.campaign}", title_justify="left", caption=caption, caption_justify="left")
    for column in ("job", "backend", "stage", "state", "attempt", "duration", "detail", "log"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


def _state_of(states: Mapping[str, JobState]) -> Callable[[str], State]:
    """A job's State, without building its record where the states can say it so (JournalStates)."""
    if isinstance(states, JournalStates):
        return states.state_of
    return lambda name: states[name].state


def _job_row(plan: Plan, states: Mapping[str, JobState], name: str) -> tuple[str, ...]:
    job = plan.jobs[name]
    state = states[name]
    style = STATE_STYLE.get(state.state, "")
    duration = f"{state.duration:.1f}s" if state.duration is not None else ""
    return (escape(name), job.backend, job.stage, f"[{style}]{state.state}[/]", str(state.attempt or ""),
            duration, escape(detail_text(state)), escape(Path(state.log or job.log).name))


def _folded_rows(plan: Plan, states: Mapping[str, JobState], state_of: Callable[[str], State], base: str,
                 members: tuple[str, ...]) -> list[tuple[str, ...]]:
    """`base [n of N cells]` per state, with the first such cell's detail (`--json` lists every cell)."""
    first: dict[State, str] = {}
    counts: Counter[State] = Counter()
    for name in members:
        state = state_of(name)
        counts[state] += 1
        first.setdefault(state, name)
    job = plan.jobs.head(members[0])
    return [(escape(f"{base} [{counts[state]} of {len(members)} cells]"), job.backend, job.stage,
             f"[{STATE_STYLE.get(state, '')}]{state}[/]", "", "",
             escape(f"e.g. {first[state]}: {detail_text(states[first[state]])}"), "")
            for state in sorted(counts)]


def compare_table(result: Comparison) -> Table:
    from ptycho_batch.reports.stats import Verdict

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
