"""The PT-03 models: USL least squares and the service-demand bounds."""

from __future__ import annotations

import random

import pytest

from shopstream_tools.lab import model


def usl(n: float, lam: float, sigma: float, kappa: float) -> float:
    return lam * n / (1 + sigma * (n - 1) + kappa * n * (n - 1))


def test_usl_fit_recovers_the_parameters_of_exact_data() -> None:
    points = [(n, usl(n, 1000, 0.05, 0.002)) for n in (1, 2, 4, 8, 16)]
    fit = model.fit_usl(points)
    assert fit.lam == pytest.approx(1000, rel=0.01)
    assert fit.sigma == pytest.approx(0.05, abs=0.01)
    assert fit.kappa == pytest.approx(0.002, abs=0.0005)
    assert fit.mape < 0.01
    assert fit.r_squared > 0.999
    assert fit.peak_n == pytest.approx((0.95 / 0.002) ** 0.5, rel=0.1)


def test_usl_fit_of_noisy_data_reports_its_error() -> None:
    rng = random.Random(3)
    points = [(n, usl(n, 500, 0.1, 0.0) * (1 + rng.uniform(-0.05, 0.05))) for n in (1, 2, 3, 4, 6, 8)]
    fit = model.fit_usl(points)
    assert 0 < fit.mape < 0.06
    assert len(fit.errors()) == 6
    assert fit.predict(1) == pytest.approx(500, rel=0.1)


def test_linear_scaling_fits_with_no_contention() -> None:
    fit = model.fit_usl([(1, 100.0), (2, 200.0), (4, 400.0)])
    assert fit.sigma == pytest.approx(0, abs=1e-3)
    assert fit.kappa == pytest.approx(0, abs=1e-4)
    assert fit.peak_n is None
    assert fit.predict(8) == pytest.approx(800, rel=0.01)


def test_a_flat_curve_is_all_contention() -> None:
    fit = model.fit_usl([(1, 500.0), (2, 500.0), (4, 500.0), (8, 500.0)])
    assert fit.sigma == pytest.approx(1.0, abs=0.02)
    assert fit.predict(16) == pytest.approx(500, rel=0.03)


def test_retrograde_from_the_start_peaks_at_one_instance() -> None:
    fit = model.fit_usl([(1, 600.0), (2, 450.0), (4, 350.0), (8, 300.0)])
    assert fit.sigma > 1
    assert fit.peak_n == 1.0


def test_usl_needs_two_points() -> None:
    with pytest.raises(ValueError):
        model.fit_usl([(1, 100.0)])


def steps() -> list[model.DemandStep]:
    # 1 ms of instance CPU, 0.5 ms of PostgreSQL per request; the machine is full at 1000/s
    return [
        model.DemandStep(1, 800.0, {"service instances": 0.8, "postgres": 0.4}, other_cores=0.0),
        model.DemandStep(2, 1200.0, {"service instances": 1.2, "postgres": 0.6}, other_cores=0.2),
    ]


def test_demands_are_cpu_seconds_per_request() -> None:
    dm = model.fit_demands(steps(), "service instances", machine_cores=2)
    assert dm.demands == {"postgres": pytest.approx(0.0005), "service instances": pytest.approx(0.001)}
    assert dm.total == pytest.approx(0.0015)
    assert dm.spread["postgres"] == (pytest.approx(0.0005), pytest.approx(0.0005))


def test_bound_here_is_the_busiest_resource() -> None:
    dm = model.fit_demands(steps(), "service instances", machine_cores=2)
    # one instance: one core / 1 ms = 1000/s; the machine: 2 cores / 1.5 ms = 1333/s
    assert dm.bound_here(1) == pytest.approx(1000)
    assert dm.bound_here(2) == pytest.approx(2 / 0.0015)
    # other work leaving 1.5 cores: 1000/s
    assert dm.bound_here(2, other_cores=0.5) == pytest.approx(1000)
    errors = dm.errors_here()
    assert [e[0] for e in errors] == [1, 2]
    assert errors[0][3] == pytest.approx(1000 / 800 - 1)
    assert dm.mape_here > 0


def test_prediction_on_a_larger_machine_names_its_bottleneck() -> None:
    dm = model.fit_demands(steps(), "service instances", machine_cores=2)
    two = dm.predict_larger(2, {"postgres": 2.0})
    assert two["throughput"] == pytest.approx(2000)
    assert two["bottleneck"] == "service instances"
    eight = dm.predict_larger(8, {"postgres": 2.0})
    assert eight["throughput"] == pytest.approx(4000)  # 2 cores / 0.5 ms
    assert eight["bottleneck"] == "postgres"
    assert eight["low"] <= eight["throughput"] <= eight["high"]


def test_demands_need_a_measured_throughput() -> None:
    with pytest.raises(ValueError):
        model.fit_demands([model.DemandStep(1, 0.0, {"x": 1.0})], "x", 2)
