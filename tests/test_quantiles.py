"""The streaming percentile estimator: its relative error bound and its edge cases."""

from __future__ import annotations

import math
import random

import pytest

from astra.quantiles import LogHistogram

QUANTILES = (0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0)


def exact(values: list[float], q: float) -> float:
    """The exact ``q`` quantile of ``values`` (nearest rank, rounding down)."""
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]


@pytest.mark.parametrize(
    "draw",
    [
        lambda r: r.lognormvariate(3, 1.5),  # latency-like: long tail
        lambda r: r.uniform(0.001, 100_000),
        lambda r: r.expovariate(1 / 40),
        lambda r: float(r.randint(1, 5)),  # few distinct values
    ],
)
@pytest.mark.parametrize("accuracy", [0.01, 0.05])
def test_every_quantile_is_within_the_relative_accuracy(draw: object, accuracy: float) -> None:
    """Each estimated quantile is within ``relative_accuracy`` of the exact sample at its rank."""
    rng = random.Random(7)
    values = [draw(rng) for _ in range(20_000)]  # type: ignore[operator]
    histogram = LogHistogram(accuracy)
    for value in values:
        histogram.add(value)
    for q in QUANTILES:
        truth = exact(values, q)
        assert abs(histogram.quantile(q) - truth) <= accuracy * truth + 1e-12, q
    assert histogram.count == len(values)
    assert histogram.max == max(values) and histogram.min == min(values)


def test_memory_is_bounded_by_the_value_range_not_the_sample_count() -> None:
    """200,000 samples from 1 µs to an hour (in ms) need at most log_gamma(range) buckets."""
    rng = random.Random(1)
    histogram = LogHistogram(0.01)
    for _ in range(200_000):
        histogram.add(10 ** rng.uniform(-3, 6.56))
    gamma = 1.01 / 0.99
    assert len(histogram._buckets) <= math.log(10**9.56) / math.log(gamma) + 2 < 1200


def test_merge_equals_adding_everything_to_one() -> None:
    """Merging two histograms gives the same quantiles as one histogram of all values."""
    rng = random.Random(3)
    left, right, both = LogHistogram(), LogHistogram(), LogHistogram()
    for i in range(5000):
        value = rng.lognormvariate(2, 1)
        (left if i % 2 else right).add(value)
        both.add(value)
    left.merge(right)
    for q in QUANTILES:
        assert left.quantile(q) == both.quantile(q)
    assert left.count == both.count


def test_zeros_negatives_and_empty() -> None:
    """Zeros count as zero, invalid values are ignored, an empty histogram gives NaN."""
    histogram = LogHistogram()
    assert math.isnan(histogram.quantile(0.5))
    assert histogram.summary("x").count == 0
    for value in (0.0, 0.0, 0.0, -5.0, math.nan, math.inf, 10.0):
        histogram.add(value)
    assert histogram.count == 4
    assert histogram.quantile(0.5) == 0.0
    assert histogram.quantile(1.0) == 10.0
    summary = histogram.summary("gateway")
    assert summary.of == "gateway" and summary.max == 10.0
    with pytest.raises(ValueError):
        histogram.quantile(1.5)
    with pytest.raises(ValueError):
        LogHistogram(0)


def test_adding_many_counts_exactly_what_adding_one_by_one_counts() -> None:
    """``add_many`` gives the same buckets, count, sum and extremes as ``add`` per value."""
    values = [0.0, 1e-12, 0.5, 3.0, 3.0, 250.0, 1e6, -1.0, math.nan, math.inf]
    one, many = LogHistogram(), LogHistogram()
    for value in values:
        one.add(value)
    many.add_many(values)
    assert (one.count, one.zeros, one.min, one.max) == (many.count, many.zeros, many.min, many.max)
    assert one.sum == pytest.approx(many.sum)
    assert [one.quantile(q) for q in (0, 0.5, 0.9, 1)] == [
        many.quantile(q) for q in (0, 0.5, 0.9, 1)
    ]
