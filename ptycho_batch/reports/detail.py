"""How one job's state reads in a table (`status`, the dashboard, the report) or a line: its colour and detail.

Apart from the inventory so that `status` draws its table without loading the report writer.
"""

from __future__ import annotations

from ptycho_batch.journal.records import JobState, State

STATE_STYLE = {State.COMPLETED: "green", State.FAILED: "bold red", State.SKIPPED: "yellow",
               State.CANCELLED: "magenta", State.LOST: "bold red", State.RUNNING: "cyan", State.PENDING: "dim"}


def detail_text(state: JobState) -> str:
    """What a person needs beside the state: the failure and its line, the fallback that resolved one, or why."""
    if state.failure_class:
        return f"{state.failure_class}: {state.failure_line or ''}"
    if state.warning_text:
        return state.warning_text
    if state.fallback:
        failed = [a for a in state.attempts if a.state == State.FAILED]
        cause = f" after attempt {failed[-1].number} failed ({failed[-1].failure_class})" if failed else ""
        return f"via fallback: {state.fallback}{cause}"
    return state.reason or ""


def state_line(state: JobState) -> str:
    """`[ptybatch] job: STATE (detail)`, the line `submit` and `watch --plain` print on each change."""
    detail = state.failure_class or state.warning_text or state.reason if state.state != State.RUNNING else None
    return f"[ptybatch] {state.name}: {state.state}" + (f" ({detail})" if detail else "")
