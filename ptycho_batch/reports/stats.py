"""Seed-aware verdicts: is the difference between two samples (one metric, several seeds per side) real?

Upstream's training is not reproducible even with a fixed seed, so one number per side proves little. With
several runs per side we take the 95 % confidence interval of the difference of means and judge it against
the tolerance band: *equivalent* when the whole interval lies inside ±band, *different* when it excludes 0
and reaches outside the band, else *inconclusive*, with the number of seeds per side that would decide at the
observed spread. When both sides ran the same cells (the same seeds), run i of one side shares its seed, so
its data and initial weights, with run i of the other: the interval is the paired t interval of the
per-seed differences, which removes the seed-to-seed spread both sides share. Otherwise (different seeds,
or plain lists) it is Welch's t interval (unequal variances). One run on a side keeps the plain tolerance
check, labelled "single run".
Pure Python (math.lgamma and a continued fraction for the t quantile): the runner needs no numpy or scipy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

METHOD = ("the paired t interval of the per-seed differences when both sides ran the same seeds, "
          "else Welch's t interval (95 %)")
CONFIDENCE = 0.95
MAX_SEEDS = 1000     # beyond this the estimate of "seeds that would decide" says "more than"


class Verdict(str, Enum):
    EQUIVALENT = "equivalent"
    DIFFERENT = "different"
    INCONCLUSIVE = "inconclusive"
    SINGLE = "single run"

    def __str__(self) -> str:
        return self.value


class Method(str, Enum):
    """How an interval was computed (named beside each verdict)."""

    WELCH = "Welch"
    PAIRED = "paired"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    sd: float            # sample standard deviation (n - 1); 0 for one value


@dataclass(frozen=True)
class Interval:
    left: Summary
    right: Summary
    diff: float          # right mean - left mean
    low: float
    high: float
    band: float          # the tolerance, as an absolute half-width around 0
    verdict: Verdict
    within: bool         # the difference of means lies inside the band (the single-run rule)
    seeds_needed: int | None = None   # inconclusive: seeds per side that would decide (None: more than MAX_SEEDS)
    method: Method = Method.WELCH

    def text(self) -> str:
        if self.verdict == Verdict.INCONCLUSIVE:
            need = f"~{self.seeds_needed}" if self.seeds_needed else f"more than {MAX_SEEDS}"
            return f"inconclusive ({need} seeds per side would decide)"
        if self.verdict == Verdict.SINGLE:
            return f"single run ({'within' if self.within else 'beyond'} tolerance)"
        return f"{self.verdict} within tolerance" if self.verdict == Verdict.EQUIVALENT else str(self.verdict)

    def range_text(self) -> str:
        """`[low, high] (paired)`: the interval and how it was computed; empty for a single run."""
        if self.verdict == Verdict.SINGLE:
            return ""
        return f"[{self.low:+.4g}, {self.high:+.4g}] ({self.method})"


def summarize(values: Sequence[float]) -> Summary:
    n = len(values)
    mean = math.fsum(values) / n
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return Summary(n, mean, sd)


def band(left_mean: float, right_mean: float, rel: float | None, abs_: float | None) -> float:
    """Either bound holds (as in parity.within): the wider of abs and rel x the larger magnitude."""
    return max(abs_ if abs_ is not None else 0.0,
               rel * max(abs(left_mean), abs(right_mean)) if rel is not None else 0.0)


def compare(left: Sequence[float] | Mapping[str, float], right: Sequence[float] | Mapping[str, float],
            rel: float | None, abs_: float | None = None) -> Interval:
    """The verdict on right - left for one metric; `rel`/`abs_` as in a parity check. Samples given as
    cell -> value (a matrix cell's params, e.g. `[seed=1]`) are paired when both sides have the same cells."""
    pairs = None
    if isinstance(left, Mapping) and isinstance(right, Mapping) and left.keys() == right.keys() and len(left) > 1:
        pairs = summarize([right[cell] - left[cell] for cell in left])
    a, b = (summarize(list(side.values()) if isinstance(side, Mapping) else side) for side in (left, right))
    return _judge(a, b, band(a.mean, b.mean, rel, abs_), pairs, estimate=True)


def _judge(a: Summary, b: Summary, tolerance: float, pairs: Summary | None, *, estimate: bool) -> Interval:
    diff = b.mean - a.mean
    inside = abs(diff) <= tolerance
    if min(a.n, b.n) < 2:
        return Interval(a, b, diff, diff, diff, tolerance, Verdict.SINGLE, inside)
    if pairs is None:
        se, method = math.sqrt(a.sd ** 2 / a.n + b.sd ** 2 / b.n), Method.WELCH
    else:
        se, method = pairs.sd / math.sqrt(pairs.n), Method.PAIRED
    df = 0.0 if se == 0 else welch_df(a, b) if pairs is None else pairs.n - 1.0
    half = 0.0 if se == 0 else t_quantile(0.5 + CONFIDENCE / 2, df) * se
    low, high = diff - half, diff + half
    if -tolerance <= low and high <= tolerance:
        verdict = Verdict.EQUIVALENT
    elif (low > 0 or high < 0) and (low < -tolerance or high > tolerance):
        verdict = Verdict.DIFFERENT
    else:
        verdict = Verdict.INCONCLUSIVE
    needed = _seeds_needed(a, b, tolerance, pairs) if estimate and verdict == Verdict.INCONCLUSIVE else None
    return Interval(a, b, diff, low, high, tolerance, verdict, inside, needed, method)


def welch_df(a: Summary, b: Summary) -> float:
    """Welch-Satterthwaite degrees of freedom."""
    va, vb = a.sd ** 2 / a.n, b.sd ** 2 / b.n
    return (va + vb) ** 2 / (va ** 2 / (a.n - 1) + vb ** 2 / (b.n - 1))


def _seeds_needed(a: Summary, b: Summary, tolerance: float, pairs: Summary | None) -> int | None:
    """The smallest equal number of seeds per side that decides, if the means and spreads stayed as observed."""
    for n in range(max(a.n, b.n) + 1, MAX_SEEDS + 1):
        grown = None if pairs is None else Summary(n, pairs.mean, pairs.sd)
        again = _judge(Summary(n, a.mean, a.sd), Summary(n, b.mean, b.sd), tolerance, grown, estimate=False)
        if again.verdict != Verdict.INCONCLUSIVE:
            return n
    return None


def t_quantile(p: float, df: float) -> float:
    """The p-quantile of Student's t with `df` degrees of freedom (0.5 < p < 1), by bisection on the CDF."""
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        low, high = high, high * 2
    for _ in range(200):
        mid = (low + high) / 2
        if t_cdf(mid, df) < p:
            low = mid
        else:
            high = mid
        if high - low <= 1e-12 * max(1.0, high):
            break
    return (low + high) / 2


def t_cdf(t: float, df: float) -> float:
    tail = 0.5 * betainc(df / 2, 0.5, df / (df + t * t))
    return 1 - tail if t >= 0 else tail


def betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b) (continued fraction, modified Lentz)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x > (a + 1) / (a + b + 2):    # the fraction converges fast only below this point: use the symmetry
        return 1 - front * _beta_fraction(b, a, 1 - x) / b
    return front * _beta_fraction(a, b, x) / a


def _beta_fraction(a: float, b: float, x: float) -> float:
    tiny = 1e-300
    c, d = 1.0, 1 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 500):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1 + numerator * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return result
