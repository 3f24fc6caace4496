"""Parity checks: do two jobs (a torch job and its TF twin) agree on the metrics that matter?

The arithmetic is shared with `ptybatch compare`: one difference function, one tolerance rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ptycho_batch.campaign.spec import ParityCheck
from ptycho_batch.journal.records import JobState, State


@dataclass(frozen=True)
class Difference:
    absolute: float
    relative: float | None   # None when both sides are zero-free undefined (reference is 0)


def difference(a: float, b: float) -> Difference:
    """|a - b| and |a - b| / max(|a|, |b|): symmetric, so neither side is the privileged reference."""
    absolute = abs(a - b)
    scale = max(abs(a), abs(b))
    return Difference(absolute, absolute / scale if scale else (0.0 if absolute == 0 else None))


def within(diff: Difference, rel: float | None, abs_: float | None) -> bool:
    """Within tolerance when either given bound holds."""
    ok_abs = abs_ is not None and diff.absolute <= abs_
    ok_rel = rel is not None and diff.relative is not None and diff.relative <= rel
    return ok_abs or ok_rel


@dataclass(frozen=True)
class ParityRow:
    check: str
    metric: str
    left: Any
    right: Any
    diff: Difference | None
    tolerance: str
    ok: bool | None          # None: not evaluated (a side missing or not completed)
    required: bool


def tolerance_text(rel: float | None, abs_: float | None) -> str:
    return " or ".join(part for part in (f"rel ≤ {rel:g}" if rel is not None else "",
                                         f"abs ≤ {abs_:g}" if abs_ is not None else "") if part)


def evaluate(check: ParityCheck, states: dict[str, JobState]) -> list[ParityRow]:
    left_job, right_job = check.between
    left, right = states.get(left_job), states.get(right_job)
    both_done = left is not None and right is not None and left.state == right.state == State.COMPLETED
    rows = []
    for metric in check.metrics:
        a = left.metrics.get(metric) if left else None
        b = right.metrics.get(metric) if right else None
        diff = difference(a, b) if both_done and isinstance(a, float) and isinstance(b, float) else None
        ok = within(diff, check.rel, check.abs) if diff is not None else None
        rows.append(ParityRow(check.name, metric, a, b, diff, tolerance_text(check.rel, check.abs), ok,
                              check.required))
    return rows


def evaluate_all(checks: list[ParityCheck], states: dict[str, JobState]) -> list[ParityRow]:
    return [row for check in checks for row in evaluate(check, states)]


def required_failures(rows: list[ParityRow]) -> list[ParityRow]:
    """Rows of required checks that failed or could not be evaluated."""
    return [row for row in rows if row.required and row.ok is not True]
