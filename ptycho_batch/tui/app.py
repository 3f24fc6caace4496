"""The dashboard's state machine: which row is selected, which groups are open, what a key does, one frame.

It reads only the journal (through JournalCache) and acts only through its executor's `cancel`, so it works the
same for the local and the SLURM executor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from rich.console import Group, RenderableType

from ptycho_batch.executors.registry import executor_of
from ptycho_batch.journal.reader import JournalCache
from ptycho_batch.journal.store import Run
from ptycho_batch.node.envfirewall import job_secrets
from ptycho_batch.node.logtail import tail_lines
from ptycho_batch.tui.cache import LogDigests
from ptycho_batch.tui.logs import log_path
from ptycho_batch.tui.render import blocker_height, blockers_panel, footer, header, job_table, log_view, policy_line
from ptycho_batch.tui.rows import Row, build_rows, scroll

TABLE_KEYS = "↑↓/jk select · enter log · space expand · c cancel · r refresh · q quit (jobs keep running)"
LOG_KEYS = "esc back · q quit   (the log follows as it grows)"
CONFIRM_KEYS = "y confirm · any other key keeps it running"
HEADER_LINES, TABLE_HEAD_LINES, BLOCKERS_SHOWN = 3, 2, 5


class Dashboard:
    """One viewer's state over one run; `handle(key)` changes it, `frame(w, h)` draws it."""

    def __init__(self, run: Run, refresh: Callable[[Run], None] | None = None) -> None:
        self.cache = JournalCache(run, refresh=refresh)
        self.digests = LogDigests(self.cache.plan)
        self.groups = self.cache.plan.jobs.groups()
        self.expanded: set[str] = set()
        self.rows: list[Row] = build_rows(self.groups, self.expanded)
        self.selected = 0
        self.top = 0
        self.page = 10
        self.mode: Literal["table", "log", "confirm"] = "table"
        self.message = ""
        self.quit = False

    @property
    def row(self) -> Row:
        return self.rows[self.selected]

    # ------------------------------------------------------------------------------------------ keys

    def handle(self, key: str) -> None:
        if self.mode == "confirm":
            self._confirm(key in ("y", "Y"))
        elif key == "q":
            self.quit = True
        elif self.mode == "log":
            if key in ("esc", "backspace", "h"):
                self.mode = "table"
        else:
            self._table_key(key)

    def _table_key(self, key: str) -> None:
        moves = {"up": -1, "k": -1, "down": 1, "j": 1, "pgup": -self.page, "pgdn": self.page,
                 "home": -len(self.rows), "g": -len(self.rows), "end": len(self.rows), "G": len(self.rows)}
        self.message = ""
        if key in moves:
            self.selected = max(0, min(len(self.rows) - 1, self.selected + moves[key]))
        elif key in ("space", "+", "-") or (key == "enter" and self.row.group):
            self._toggle_group()
        elif key == "enter":
            self.mode = "log"
        elif key == "c":
            self._ask_cancel()
        elif key == "r":
            self.cache.poll(full=True)
            self.message = "refreshed"

    def _toggle_group(self) -> None:
        row = self.row
        if not row.group and not row.child:
            return
        base = row.key if row.group else self.cache.plan.jobs[row.key].base
        self.expanded ^= {base}
        self.rows = build_rows(self.groups, self.expanded)
        self.selected = next(i for i, r in enumerate(self.rows) if r.key == base and r.group)

    def _unfinished(self) -> list[str]:
        return [name for name in self.row.members if not self.cache.states[name].final]

    def _ask_cancel(self) -> None:
        if not self._unfinished():
            self.message = f"nothing to cancel: {self.row.key} has finished"
            return
        self.mode = "confirm"

    def _confirm(self, yes: bool) -> None:
        self.mode = "table"
        if not yes:
            self.message = "not cancelled"
            return
        names = executor_of(self.cache.run).cancel(self.cache.run, self._unfinished())
        more = f" and {len(names) - 3} more" if len(names) > 3 else ""
        self.message = f"cancel requested: {', '.join(names[:3])}{more}"

    # ---------------------------------------------------------------------------------------- frame

    def frame(self, width: int, height: int) -> RenderableType:
        """Everything on screen for a terminal of `height` lines; only the rows that fit are built."""
        states = self.cache.states
        top = header(self.cache, self.cache.counts())
        if self.mode == "log" and not self.row.group:
            state = states[self.row.key]
            path = log_path(self.cache.plan, state)
            lines_shown = max(3, height - HEADER_LINES - 3)
            secrets = job_secrets(self.cache.plan.jobs[state.name].pass_env)
            return Group(top, log_view(state, path, tail_lines(path, lines_shown, secrets), lines_shown),
                         footer(LOG_KEYS))
        limit = min(BLOCKERS_SHOWN, max(1, height // 6))
        blockers = self.cache.per_version(f"blockers{limit}", lambda: blockers_panel(states.values(), limit))
        blocker_lines = blocker_height(blockers)
        visible = max(1, height - HEADER_LINES - TABLE_HEAD_LINES - blocker_lines - 2)
        self.page = max(1, visible - 1)
        self.top = scroll(self.top, self.selected, visible, len(self.rows))
        window = self.rows[self.top:self.top + visible]
        table = job_table(window, self.row.key, self.cache, self.digests, self.expanded)
        hint = TABLE_KEYS
        message = self.message
        if self.mode == "confirm":
            unfinished = self._unfinished()
            what = unfinished[0] if len(unfinished) == 1 else f"{len(unfinished)} jobs of {self.row.key}"
            message = f"cancel {what}? [y/n]"
            hint = CONFIRM_KEYS
        parts: list[RenderableType] = [top, table]
        if blockers is not None:
            parts.append(blockers)
        settled = self.cache.settled()
        policy = self.cache.per_version(
            f"policy{settled}", lambda: policy_line(self.cache.plan, states, self.cache.backend_counts(), settled))
        parts += [policy, footer(hint, message)]
        return Group(*parts)

