"""Ratios to ceilings, saturation, scaling efficiency, recovery, balance."""

from __future__ import annotations

import pytest

from shopstream_tools.lab import stats


def test_ratio_to_a_ceiling_and_its_missing_cases() -> None:
    assert stats.ratio(50.0, 200.0) == 0.25
    assert stats.ratio(None, 200.0) is None
    assert stats.ratio(50.0, None) is None
    assert stats.ratio(50.0, 0.0) is None
    assert stats.ratios(30.0, {"nginx-fixed": 120.0, "pgbench": None}) == {
        "x nginx-fixed": 0.25,
        "x pgbench": None,
    }


def test_median_ignores_missing_values() -> None:
    assert stats.median([3.0, None, 1.0, 2.0]) == 2.0
    assert stats.median([4.0, 1.0]) == 2.5
    assert stats.median([None]) is None


def test_saturation_point_is_where_the_light_load_line_meets_the_best_throughput() -> None:
    # 9.5 req/s per user at 10 users; the best is 950 req/s: the knee is at 100 users
    points = [(10, 95.0), (50, 460.0), (100, 800.0), (500, 950.0)]
    assert stats.saturation_point(points) == pytest.approx(100)
    assert stats.saturation_point([(1, 0.0)]) is None
    assert stats.saturation_point([]) is None
    # a curve still growing linearly saturates (at least) at its last point
    assert stats.saturation_point([(1, 10.0), (2, 20.0), (4, 40.0)]) == pytest.approx(4)


def test_ideal_line_and_efficiency() -> None:
    points = [(1, 100.0), (2, 180.0), (4, 200.0)]
    assert stats.ideal_line(points) == [(1, 100.0), (2, 200.0), (4, 400.0)]
    eff = dict(stats.scaling_efficiency(points))
    assert eff[1] == 1.0
    assert eff[2] == pytest.approx(0.9)
    assert eff[4] == pytest.approx(0.5)


def test_recovery_waits_for_values_to_stay_under_the_threshold() -> None:
    times = [float(t) for t in range(20)]
    values: list[float | None] = [10.0] * 5 + [100.0] * 5 + [50.0, 9.0, 50.0] + [8.0] * 7
    # peak ends at t=10; t=11 dips but t=12 is back up; from t=13 it stays down
    assert stats.recovery_seconds(times, values, after=10, threshold=15.0, hold=3) == 3.0
    assert stats.recovery_seconds(times, values, after=10, threshold=1.0) is None
    # a gap in the samples is not a recovery
    gappy: list[float | None] = [1.0, None, 1.0, 1.0, 1.0, 1.0]
    assert stats.recovery_seconds([0, 1, 2, 3, 4, 5], gappy, after=0, threshold=2.0, hold=2) == 2.0


def test_balance_of_partitions() -> None:
    even = stats.balance([100.0, 100.0, 100.0])
    assert even["max_over_mean"] == 1.0
    assert even["cv"] == 0.0
    skewed = stats.balance([300.0, 0.0, 0.0])
    assert skewed["max_over_mean"] == 3.0
    assert skewed["cv"] == pytest.approx(2 ** 0.5)
    assert stats.balance([])["max_over_mean"] is None


def test_rates_from_a_cumulative_counter() -> None:
    assert stats.per_second([0, 1, 3], [0, 10, 50]) == [(1, 10.0), (3, 20.0)]
