"""Models fitted on PT-03's measured points, to say what 4 and 8 instances would give on a machine
that has the cores for them (this one has 2, so it cannot show it).

* Universal Scalability Law: X(N) = lambdaN / (1 + sigma(N-1) + kappaN(N-1)), least squares on the measured
  throughputs. sigma is contention (queueing on something shared), kappa coherency (crosstalk). Fitted on a
  2-core machine it describes *this* machine: the cores are the shared thing.
* Service demand (operational laws): D_k = U_k / X, CPU seconds each request costs tier k,
  measured per step from /proc. A tier of c cores saturates at X = c / D_k, so throughput is
  bounded by the busiest resource: min over tiers. On this machine every tier shares 2 cores
  (X <= 2 / sum D); on a larger one each instance has its own core and the shared tiers get theirs.
  The model's error is how far its bound lies from the measured points.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class UslFit:
    lam: float  # throughput of one instance without contention
    sigma: float
    kappa: float
    points: tuple[tuple[float, float], ...]

    def predict(self, n: float) -> float:
        return self.lam * n / (1 + self.sigma * (n - 1) + self.kappa * n * (n - 1))

    @property
    def peak_n(self) -> float | None:
        """Instances at which throughput peaks (kappa > 0), or None when it only flattens. With
        sigma >= 1 it peaks at one instance: every added one costs more than it brings."""
        if self.kappa <= 0:
            return None
        return max(1.0, math.sqrt(max(0.0, 1 - self.sigma) / self.kappa))

    def errors(self) -> list[float]:
        """Relative error of the fit at each measured point."""
        return [(self.predict(n) - x) / x for n, x in self.points if x > 0]

    @property
    def mape(self) -> float:
        errs = self.errors()
        return float(np.mean(np.abs(errs))) if errs else float("nan")

    @property
    def r_squared(self) -> float:
        xs = np.array([x for _, x in self.points])
        pred = np.array([self.predict(n) for n, _ in self.points])
        total = float(np.sum((xs - xs.mean()) ** 2))
        return 1 - float(np.sum((xs - pred) ** 2)) / total if total > 0 else float("nan")


def _nonneg_lstsq(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Least squares for two non-negative coefficients (enumerating the active sets)."""
    best: np.ndarray | None = None
    best_err = math.inf
    for mask in ((1, 1), (1, 0), (0, 1), (0, 0)):
        cols = [i for i, m in enumerate(mask) if m]
        coef = np.zeros(2)
        if cols:
            sol, *_ = np.linalg.lstsq(a[:, cols], b, rcond=None)
            if np.any(sol < 0):
                continue
            coef[cols] = sol
        err = float(np.sum((a @ coef - b) ** 2))
        if err < best_err:
            best, best_err = coef, err
    assert best is not None
    return best


def fit_usl(points: Sequence[tuple[float, float]]) -> UslFit:
    """Fit lambda, sigma, kappa >= 0 to (instances, throughput) points by least squares on throughput.

    For a given lambda the USL is linear in sigma and kappa (Nlambda/X - 1 = sigma(N-1) + kappaN(N-1)); lambda is searched on a
    fine grid around the best per-instance throughput, keeping the fit with the least squared
    error in throughput."""
    pts = tuple(sorted((float(n), float(x)) for n, x in points if n > 0 and x > 0))
    if len(pts) < 2:
        raise ValueError("a USL fit needs at least two measured points")
    n = np.array([p[0] for p in pts])
    x = np.array([p[1] for p in pts])
    a = np.column_stack([n - 1, n * (n - 1)])
    top = float(np.max(x / n))
    best: UslFit | None = None
    best_err = math.inf
    for lam in np.linspace(0.5 * top, 2.0 * top, 601):
        b = n * lam / x - 1
        sigma, kappa = _nonneg_lstsq(a, b)
        fit = UslFit(float(lam), float(sigma), float(kappa), pts)
        err = float(np.sum((np.array([fit.predict(v) for v in n]) - x) ** 2))
        if err < best_err:
            best, best_err = fit, err
    assert best is not None
    return best


@dataclass(frozen=True)
class DemandStep:
    """One measured step: instances, throughput (req/s) and cores used per tier."""

    instances: int
    throughput: float
    cores: Mapping[str, float]
    other_cores: float = 0.0  # used meanwhile by processes outside the tiers (other work)


@dataclass
class DemandModel:
    """Per-request CPU demand per tier (median over the steps), and the bounds it implies."""

    demands: dict[str, float]  # CPU seconds per request, by tier
    spread: dict[str, tuple[float, float]]  # min, max over the steps
    service_tier: str
    machine_cores: float
    steps: list[DemandStep] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(self.demands.values())

    def bound_here(self, n: int, other_cores: float = 0.0) -> float:
        """This machine: every tier shares the cores that other work leaves; one instance uses at
        most one core."""
        d_svc = self.demands.get(self.service_tier, 0.0)
        free = max(self.machine_cores - other_cores, 0.0)
        bounds = [free / self.total] if self.total > 0 else []
        if d_svc > 0:
            bounds.append(min(n, self.machine_cores) / d_svc)
        return min(bounds) if bounds else float("nan")

    def bound_larger(
        self, n: int, shared_cores: Mapping[str, float], demands: Mapping[str, float] | None = None
    ) -> tuple[float, str]:
        """A machine where each instance has a core of its own and each shared tier has
        shared_cores[tier] cores (tiers not named are not limits). Returns (X, the bottleneck)."""
        d = demands or self.demands
        limits = {self.service_tier: n / d[self.service_tier]} if d.get(self.service_tier) else {}
        for tier, c in shared_cores.items():
            if d.get(tier, 0) > 0:
                limits[tier] = c / d[tier]
        if not limits:
            return float("nan"), ""
        tier = min(limits, key=lambda k: limits[k])
        return limits[tier], tier

    def predict_larger(
        self, n: int, shared_cores: Mapping[str, float]
    ) -> dict[str, float | str]:
        """Prediction with its range: the demands' min and max over the steps give the band."""
        mid, bottleneck = self.bound_larger(n, shared_cores)
        low, _ = self.bound_larger(n, shared_cores, {k: v[1] for k, v in self.spread.items()})
        high, _ = self.bound_larger(n, shared_cores, {k: v[0] for k, v in self.spread.items()})
        return {"instances": n, "throughput": mid, "low": low, "high": high, "bottleneck": bottleneck}

    def errors_here(self) -> list[tuple[int, float, float, float]]:
        """(instances, measured, model bound on this machine, relative error) per step."""
        out = []
        for s in self.steps:
            bound = self.bound_here(s.instances, s.other_cores)
            out.append((s.instances, s.throughput, bound, (bound - s.throughput) / s.throughput))
        return out

    @property
    def mape_here(self) -> float:
        errs = [abs(e[3]) for e in self.errors_here()]
        return float(np.mean(errs)) if errs else float("nan")


def fit_demands(
    steps: Sequence[DemandStep], service_tier: str, machine_cores: float
) -> DemandModel:
    """Per tier: CPU seconds per request at each step; the model keeps the median and the range."""
    usable = [s for s in steps if s.throughput > 0]
    if not usable:
        raise ValueError("no step with a positive throughput")
    tiers = sorted({t for s in usable for t in s.cores})
    per_step = {t: [s.cores.get(t, 0.0) / s.throughput for s in usable] for t in tiers}
    demands = {t: float(np.median(v)) for t, v in per_step.items()}
    spread = {t: (float(min(v)), float(max(v))) for t, v in per_step.items()}
    return DemandModel(demands, spread, service_tier, machine_cores, list(usable))
