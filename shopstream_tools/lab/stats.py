"""The lab's arithmetic: medians, ratios to same-run ceilings, saturation, scaling efficiency,
recovery after a burst and partition balance. Pure functions; the charts and report read them."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def median(values: Iterable[float | None]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return statistics.median(present) if present else None


def ratio(value: float | None, ceiling: float | None) -> float | None:
    """value / ceiling, or None when either is missing or the ceiling is not positive."""
    if value is None or ceiling is None or ceiling <= 0:
        return None
    return value / ceiling


def ratios(value: float | None, ceilings: Mapping[str, float | None]) -> dict[str, float | None]:
    """A figure as a ratio to each ceiling measured in the same run: {"x <ceiling>": ratio}."""
    return {f"x {name}": ratio(value, ceiling) for name, ceiling in ceilings.items()}


def saturation_point(points: Sequence[tuple[float, float]]) -> float | None:
    """The knee of a (load, throughput) curve: where the light-load line (throughput growing in
    proportion to the load, as at the lightest load measured) meets the best throughput measured.
    Below it the system keeps up with its users; past it more users only queue (operational
    laws: N* = X_max / (X(n0) / n0))."""
    if not points:
        return None
    n0, x0 = min(points)
    best = max(x for _, x in points)
    if n0 <= 0 or x0 <= 0 or best <= 0:
        return None
    return best / (x0 / n0)


def ideal_line(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Linear scaling from the smallest measured load: x(n) = n * x(n0) / n0."""
    if not points:
        return []
    n0, x0 = min(points)
    if n0 <= 0:
        return []
    return [(n, n * x0 / n0) for n, _ in sorted(points)]


def scaling_efficiency(points: Sequence[tuple[float, float]]) -> list[tuple[float, float | None]]:
    """(n, x(n) / ideal(n)) for each point: 1.0 is linear scaling."""
    ideal = dict(ideal_line(points))
    return [(n, ratio(x, ideal.get(n))) for n, x in sorted(points)]


def recovery_seconds(
    times: Sequence[float],
    values: Sequence[float | None],
    after: float,
    threshold: float,
    hold: float = 3.0,
) -> float | None:
    """Seconds from `after` until `values` fall to `threshold` or below and stay there for
    `hold` seconds (a gap in the samples counts as not recovered). None: never recovered in the
    samples."""
    start: float | None = None
    for t, v in zip(times, values, strict=True):
        if t < after:
            continue
        if v is not None and v <= threshold:
            if start is None:
                start = t
            if t - start >= hold:
                return max(0.0, start - after)
        else:
            start = None
    return None


def rounds_of(items: Sequence[T], rounds: int) -> list[tuple[int, list[T]]]:
    """(round, items in that round's order): every other round reversed."""
    return [(r, list(items) if r % 2 == 1 else list(reversed(items))) for r in range(1, max(rounds, 1) + 1)]


def medians_by(rows: Sequence[Mapping[str, Any]], keys: Sequence[str], fields: Sequence[str]) -> list[dict[str, Any]]:
    """One row per distinct ``keys`` (in first-seen order): the median of each of ``fields`` over
    the rows that share them, and how many there were."""
    groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row.get(k) for k in keys), []).append(row)
    return [
        {**dict(zip(keys, group, strict=True)), "rounds": len(members),
         **{f: median(m.get(f) for m in members) for f in fields}}
        for group, members in groups.items()
    ]  # fmt: skip


def balance(counts: Sequence[float]) -> dict[str, float | None]:
    """How evenly messages spread over partitions: max/mean (1.0 = perfect) and the coefficient of
    variation."""
    if not counts:
        return {"partitions": 0, "max_over_mean": None, "cv": None}
    mean = statistics.fmean(counts)
    cv = statistics.pstdev(counts) / mean if mean > 0 else None
    return {
        "partitions": len(counts),
        "max_over_mean": max(counts) / mean if mean > 0 else None,
        "cv": cv,
    }


def per_second(times: Sequence[float], totals: Sequence[float]) -> list[tuple[float, float]]:
    """Rates from a cumulative counter sampled at `times`: (time, increase per second)."""
    out = []
    for (t0, c0), (t1, c1) in zip(
        zip(times, totals, strict=True), zip(times[1:], totals[1:], strict=True), strict=False
    ):
        if t1 > t0:
            out.append((t1, max(0.0, c1 - c0) / (t1 - t0)))
    return out
