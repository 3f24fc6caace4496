"""The job table's rows: matrix cells collapse into one row per campaign job, expandable in place.

Rows are rebuilt only when a group opens or closes (the plan never changes under a run), and only the
window of rows that fits the screen is ever rendered.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    key: str                   # the job name, or the campaign job (`base`) for a group
    members: tuple[str, ...]   # the jobs this row stands for
    group: bool                # a collapsed or expanded matrix job
    child: bool = False        # a cell shown under its expanded group


def build_rows(groups: dict[str, tuple[str, ...]], expanded: set[str]) -> list[Row]:
    rows: list[Row] = []
    for base, names in groups.items():
        if len(names) == 1 and names[0] == base:
            rows.append(Row(base, names, group=False))
            continue
        rows.append(Row(base, names, group=True))
        if base in expanded:
            rows.extend(Row(name, (name,), group=False, child=True) for name in names)
    return rows


def scroll(top: int, selected: int, height: int, total: int) -> int:
    """The first visible row, moved only as far as needed to keep `selected` on screen."""
    height = max(1, height)
    top = min(top, selected)
    top = max(top, selected - height + 1)
    return max(0, min(top, max(0, total - height)))
