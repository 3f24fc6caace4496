"""Parity checks: do two jobs (a torch job and its TF twin) agree on the metrics that matter?

The arithmetic is shared with `ptybatch compare`: one difference function, one tolerance rule. When a side
of a check is a matrix job (one cell per seed, typically), its cells form a sample and the verdict is
seed-aware (reports/stats.py); one cell per side is today's single-run check.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ptycho_batch.campaign.plan import PlannedJob
from ptycho_batch.campaign.spec import ParityCheck
from ptycho_batch.journal.records import JobState, State
from ptycho_batch.reports.stats import Interval, Verdict
from ptycho_batch.reports.stats import compare as compare_samples


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
    left: Any                # the value, or the mean over a side's cells
    right: Any
    diff: Difference | None
    tolerance: str
    ok: bool | None          # None: not evaluated (a side missing or not completed) or inconclusive
    required: bool
    interval: Interval | None = None   # the seed-aware verdict (also for one cell per side: "single run")

    @property
    def outcome(self) -> str:
        """What a summary line says about a row that did not pass."""
        if self.interval is not None and self.interval.verdict == Verdict.INCONCLUSIVE:
            return self.interval.text()
        return {True: "within tolerance", False: "out of tolerance", None: "not evaluated"}[self.ok]


def tolerance_text(rel: float | None, abs_: float | None) -> str:
    return " or ".join(part for part in (f"rel ≤ {rel:g}" if rel is not None else "",
                                         f"abs ≤ {abs_:g}" if abs_ is not None else "") if part)


def cells(base: str, jobs: Mapping[str, PlannedJob] | None) -> list[str]:
    """The jobs a check's side names: the job itself, or every cell of a matrix job."""
    if jobs is None:
        return [base]
    return [name for name, job in jobs.items() if job.base == base] or [base]


def cell_key(base: str, name: str) -> str:
    """What pairs a cell with its twin on the other side: its matrix part (`[seed=1]`), the same for
    `torch_train[seed=1]` and `tf_train[seed=1]`; empty for a plain job."""
    return name[len(base):] if name.startswith(base) else name


def evaluate(check: ParityCheck, states: dict[str, JobState],
             jobs: Mapping[str, PlannedJob] | None = None) -> list[ParityRow]:
    """Evaluated when every cell of both sides completed; the plan's `jobs` say which cells a side has."""
    sides = [{cell_key(base, name): states.get(name) for name in cells(base, jobs)} for base in check.between]
    done = all(s is not None and s.state == State.COMPLETED for side in sides for s in side.values())
    rows = []
    for metric in check.metrics:
        samples = [{cell: s.metrics.get(metric) if s else None for cell, s in side.items()} for side in sides]
        values = [{cell: float(v) for cell, v in sample.items() if v is not None and _number(v)}
                  for sample in samples]
        numeric = done and all(len(v) == len(s) for v, s in zip(values, samples))
        interval = compare_samples(values[0], values[1], check.rel, check.abs) if numeric else None
        diff = difference(interval.left.mean, interval.right.mean) if interval is not None else None
        a, b = ((interval.left.mean, interval.right.mean) if interval is not None else
                tuple(next(iter(sample.values())) if len(sample) == 1 else None for sample in samples))
        rows.append(ParityRow(check.name, metric, a, b, diff, tolerance_text(check.rel, check.abs),
                              _ok(interval, diff, check), check.required, interval))
    return rows


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _ok(interval: Interval | None, diff: Difference | None, check: ParityCheck) -> bool | None:
    if interval is None or diff is None:
        return None
    if interval.verdict == Verdict.SINGLE:
        return within(diff, check.rel, check.abs)
    return {Verdict.EQUIVALENT: True, Verdict.DIFFERENT: False}.get(interval.verdict)


def evaluate_all(checks: list[ParityCheck], states: dict[str, JobState],
                 jobs: Mapping[str, PlannedJob] | None = None) -> list[ParityRow]:
    return [row for check in checks for row in evaluate(check, states, jobs)]


def required_failures(rows: list[ParityRow]) -> list[ParityRow]:
    """Rows of required checks that failed, could not be evaluated, or stayed inconclusive."""
    return [row for row in rows if row.required and row.ok is not True]
