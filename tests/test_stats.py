"""The seed-aware verdict (reports/stats.py) on fixed samples, checked against scipy as the reference."""

from __future__ import annotations

import math

import pytest
from scipy import stats as reference

from ptycho_batch.reports.stats import Method, Verdict, betainc, compare, summarize, t_quantile


@pytest.mark.parametrize("df", [1, 2, 2.7, 3, 4.5, 10, 33.3, 200, 1e5])
@pytest.mark.parametrize("p", [0.6, 0.975, 0.995])
def test_t_quantile_matches_scipy(df: float, p: float) -> None:
    assert t_quantile(p, df) == pytest.approx(reference.t.ppf(p, df), rel=1e-9)


@pytest.mark.parametrize(("a", "b", "x"), [(0.5, 0.5, 0.3), (2, 3, 0.9), (15.5, 0.5, 0.97), (1e3, 0.5, 0.999)])
def test_incomplete_beta_matches_scipy(a: float, b: float, x: float) -> None:
    from scipy.special import betainc as reference_betainc

    assert betainc(a, b, x) == pytest.approx(reference_betainc(a, b, x), rel=1e-10)


def _scipy_interval(left: list[float], right: list[float]) -> tuple[float, float]:
    result = reference.ttest_ind(right, left, equal_var=False)
    ci = result.confidence_interval(0.95)
    return ci.low, ci.high


EQUIVALENT = ([-28.45, -28.47, -28.44], [-28.46, -28.45, -28.43])
DIFFERENT = ([1.00, 1.02, 0.98], [2.00, 2.05, 1.96, 2.01])
INCONCLUSIVE = ([1.0, 1.2, 0.8], [1.1, 1.4, 0.9])


@pytest.mark.parametrize(("left", "right", "verdict"), [(*EQUIVALENT, Verdict.EQUIVALENT),
                                                        (*DIFFERENT, Verdict.DIFFERENT),
                                                        (*INCONCLUSIVE, Verdict.INCONCLUSIVE)])
def test_welch_interval_and_verdict(left: list[float], right: list[float], verdict: Verdict) -> None:
    result = compare(left, right, rel=0.05)
    low, high = _scipy_interval(left, right)
    assert (result.low, result.high) == (pytest.approx(low, rel=1e-9), pytest.approx(high, rel=1e-9))
    assert result.verdict == verdict, result
    assert result.left.sd == pytest.approx(reference.tstd(left)) and result.diff == pytest.approx(
        sum(right) / len(right) - sum(left) / len(left))
    band = 0.05 * max(abs(result.left.mean), abs(result.right.mean))
    assert result.band == pytest.approx(band)
    if verdict == Verdict.EQUIVALENT:
        assert -band <= low and high <= band
    if verdict == Verdict.DIFFERENT:
        assert (low > 0 or high < 0) and (high > band or low < -band)


def test_inconclusive_says_how_many_seeds_would_decide() -> None:
    left, right = INCONCLUSIVE
    result = compare(left, right, rel=0.05)
    needed = result.seeds_needed
    assert needed is not None and needed > 3 and f"~{needed} seeds per side" in result.text()
    a, b = summarize(left), summarize(right)

    def decides(n: int) -> bool:   # the interval scipy gives for n seeds per side at the observed spread
        se = math.sqrt(a.sd ** 2 / n + b.sd ** 2 / n)
        df = (a.sd ** 2 / n + b.sd ** 2 / n) ** 2 / ((a.sd ** 2 / n) ** 2 / (n - 1) + (b.sd ** 2 / n) ** 2 / (n - 1))
        half = reference.t.ppf(0.975, df) * se
        low, high = result.diff - half, result.diff + half
        inside = -result.band <= low and high <= result.band
        outside = (low > 0 or high < 0) and (low < -result.band or high > result.band)
        return inside or outside

    assert decides(needed) and not decides(needed - 1)


def test_single_run_keeps_the_plain_tolerance_check() -> None:
    within = compare([1.0], [1.04], rel=0.05)
    assert within.verdict == Verdict.SINGLE and within.within and within.text() == "single run (within tolerance)"
    beyond = compare([1.0], [1.2], rel=0.05, abs_=0.1)
    assert beyond.verdict == Verdict.SINGLE and not beyond.within and beyond.low == beyond.high == pytest.approx(0.2)
    assert compare([1.0], [1.08], rel=0.01, abs_=0.1).within, "either bound holds, as in parity.within"


def test_no_spread_is_decided_by_the_means_alone() -> None:
    assert compare([9.882118] * 3, [9.882118] * 3, rel=1e-6).verdict == Verdict.EQUIVALENT
    assert compare([1.0] * 3, [2.0] * 3, rel=0.05).verdict == Verdict.DIFFERENT


PAIRED = ({"[seed=1]": 1.00, "[seed=2]": 1.30, "[seed=3]": 0.80, "[seed=4]": 1.10},
          {"[seed=1]": 1.01, "[seed=2]": 1.32, "[seed=3]": 0.80, "[seed=4]": 1.12})


def test_the_same_seeds_on_both_sides_give_the_paired_interval() -> None:
    left, right = PAIRED
    result = compare(left, right, rel=0.05)
    ci = reference.ttest_rel(list(right.values()), list(left.values())).confidence_interval(0.95)
    assert result.method == Method.PAIRED and "(paired)" in result.range_text()
    assert (result.low, result.high) == (pytest.approx(ci.low, rel=1e-9), pytest.approx(ci.high, rel=1e-9))
    assert result.verdict == Verdict.EQUIVALENT, "the spread both sides share is not noise between them"
    unpaired = compare(list(left.values()), list(right.values()), rel=0.05)
    assert unpaired.method == Method.WELCH and unpaired.verdict == Verdict.INCONCLUSIVE
    assert unpaired.high - unpaired.low > 10 * (result.high - result.low)


def test_pairs_follow_the_cells_not_their_order() -> None:
    left, right = PAIRED
    shuffled = dict(reversed(list(right.items())))
    assert compare(left, shuffled, rel=0.05) == compare(left, right, rel=0.05)


def test_different_cells_on_each_side_are_compared_unpaired() -> None:
    left, right = PAIRED
    other = {f"[seed={i + 10}]": value for i, value in enumerate(right.values())}
    result = compare(left, other, rel=0.05)
    low, high = _scipy_interval(list(left.values()), list(other.values()))
    assert result.method == Method.WELCH and (result.low, result.high) == (pytest.approx(low), pytest.approx(high))


def test_paired_inconclusive_says_how_many_seeds_would_decide() -> None:
    left = {f"[seed={i}]": v for i, v in enumerate([1.0, 1.2, 0.8])}
    right = {f"[seed={i}]": v for i, v in enumerate([1.03, 1.28, 0.80])}
    result = compare(left, right, rel=0.05)
    assert result.method == Method.PAIRED and result.verdict == Verdict.INCONCLUSIVE
    needed = result.seeds_needed
    pairs = summarize([right[c] - left[c] for c in left])

    def decides(n: int) -> bool:   # scipy's paired interval for n seeds at the observed spread of differences
        half = reference.t.ppf(0.975, n - 1) * pairs.sd / math.sqrt(n)
        low, high = pairs.mean - half, pairs.mean + half
        return (-result.band <= low and high <= result.band) or ((low > 0 or high < 0) and
                                                                 (low < -result.band or high > result.band))

    assert needed is not None and decides(needed) and not decides(needed - 1)
