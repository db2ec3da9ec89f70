"""The figures every test's analysis shares: a step's row (rates, latency percentiles, load
generator, ratios to the run's ceilings), the cores nobody in the lab used, the backlog over time,
and processes folded into the components they belong to."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from shopstream_tools.lab import stats

SAGA_TOPICS = ("order-events", "stock-events", "payment-events")
# components of the resource heatmap: process names folded into what they are
INSTANCE = re.compile(r"^(product|order)-\d+$")
_COPY = re.compile(r"^((?:product|order)-[a-z]+)-\d+$")


def component(process: str) -> str:
    match = INSTANCE.match(process)
    if match:
        return f"{match.group(1)} (instances)"
    copy = _COPY.match(process)  # order-consume-3: a copy of order-consume (PT-03 scales them)
    return copy.group(1) if copy else process



def _lat(load: Mapping[str, Any], key: str) -> float | None:
    value = load.get("latency_ms", {}).get(key)
    return float(value) if value is not None else None


def step_row(step: Mapping[str, Any], ceil: Mapping[str, float | None], against: list[str]) -> dict[str, Any]:
    """The common figures of one step: rates, latency percentiles, load generator, ratios."""
    load = step.get("load", {})
    gen = load.get("loadgen", {})
    ok_rate = load.get("ok_rate")
    row: dict[str, Any] = {
        "step": step["step"],
        **step.get("params", {}),
        "rate": load.get("rate"),
        "ok_rate": ok_rate,
        "failures": load.get("failures", 0),
        "requests": load.get("requests", 0),
        "p50_ms": _lat(load, "p50"),
        "p90_ms": _lat(load, "p90"),
        "p95_ms": _lat(load, "p95"),
        "p99_ms": _lat(load, "p99"),
        "p99.9_ms": _lat(load, "p99.9"),
        "loadgen": gen.get("tool"),
        "loadgen_cores": gen.get("cores"),
        "loadgen_saturated": gen.get("saturated", False),
        "loadgen_note": gen.get("saturation_reason", ""),
        "machine_cores": step.get("cpu_cores", {}).get("machine"),
        "other_cores": other_cores(step.get("cpu_cores", {})),
        "drain_seconds": step.get("drain_seconds"),
        "load_seconds": step.get("load_seconds"),
        "cpu_cores": step.get("cpu_cores", {}),
        # what Prometheus scraped of the load generator (its loadgen job) during the step
        "prom_scrapes": (load.get("prometheus") or {}).get("up"),
        "prom_requests": (load.get("prometheus") or {}).get("requests"),
    }
    for name in against:
        row[f"x {name}"] = stats.ratio(ok_rate, ceil.get(name))
    return row


def other_cores(cores: Mapping[str, float]) -> float | None:
    """Busy cores of the machine that none of the sampled processes (the lab's included) used:
    other work on this shared machine."""
    if "machine" not in cores:
        return None
    return max(0.0, cores["machine"] - sum(v for k, v in cores.items() if k != "machine"))


def backlog_series(step: Mapping[str, Any]) -> list[tuple[float, float, float]]:
    """(t, unpublished outbox rows, consumer lag) per sample."""
    out = []
    for s in step.get("samples", []):
        backlog = s.get("backlog") or {}
        lag = (s.get("kafka") or {}).get("lag") or {}
        outbox = sum(v for v in backlog.values() if isinstance(v, int | float))
        out.append((s["t"], float(outbox), float(sum(v for v in lag.values() if isinstance(v, int | float)))))
    return out



def cv(values: list[float]) -> float | None:
    mean = sum(values) / len(values)
    if mean <= 0:
        return None
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values)) / mean

