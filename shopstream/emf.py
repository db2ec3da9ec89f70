"""CloudWatch Embedded Metric Format (EMF): key metrics as JSON lines on the process's log stream.

On ECS the awslogs driver ships stdout to CloudWatch Logs, which turns each EMF document into
metrics (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html).
Off unless ``SHOPSTREAM_AWS_EMF_NAMESPACE`` is set. Everything is aggregated in memory and written
once per interval, one document per set of dimension values:

- a *count* (``count``) is summed over the interval: one number;
- a *sampled* metric (``observe``) keeps up to 100 values (a reservoir sample), from which
  CloudWatch computes Maximum, Average and percentiles. Durations are observed once per event;
  gauges (consumer lag, outbox age, reservations held) once per reading, so an alarm on Maximum
  sees the worst reading of the interval, not only the last.

Every metric is declared once with ``declare`` (name, unit, dimension names): CloudWatch knows a
metric by its name and exact dimension set, so an alarm reading a set the code does not write reads
nothing. tests/observability/test_emf.py checks every metric the CloudFormation templates read
against these declarations.
"""

from __future__ import annotations

import atexit
import json
import random
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TextIO

MAX_VALUES = 100  # values per metric per document (the specification's limit)
MAX_DIMENSIONS = 30
MAX_METRICS = 100  # metric definitions per directive
UNITS = {
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes",
    "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count",
    "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second",
    "Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second",
    "Count/Second", "None",
}  # fmt: skip

Kind = Literal["count", "sampled"]


@dataclass(frozen=True)
class Metric:
    """A metric as CloudWatch knows it: name, unit and the names of its dimensions."""

    name: str
    unit: str
    dimensions: tuple[str, ...]
    kind: Kind


DECLARED: dict[str, Metric] = {}
"""Every metric some module of this process declared, by name."""


def declare(name: str, unit: str, dimensions: tuple[str, ...], kind: Kind) -> Metric:
    if unit not in UNITS:
        raise ValueError(f"{name}: unit {unit!r} is not a CloudWatch unit")
    if not 1 <= len(dimensions) <= MAX_DIMENSIONS:
        raise ValueError(f"{name}: 1..{MAX_DIMENSIONS} dimensions")
    metric = Metric(name, unit, tuple(sorted(dimensions)), kind)
    if DECLARED.setdefault(name, metric) != metric:
        # one name, one dimension set: two sets would be two metrics an alarm must tell apart
        raise ValueError(f"{name} is already declared as {DECLARED[name]}")
    return metric


def document(
    namespace: str,
    dimensions: dict[str, str],
    metrics: dict[str, tuple[float | list[float], str]],
    timestamp_ms: int | None = None,
    properties: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One EMF document: ``metrics`` maps a name to (value or values, unit)."""
    if not 1 <= len(namespace) <= 1024:
        raise ValueError("namespace must be 1..1024 characters")
    if len(dimensions) > MAX_DIMENSIONS:
        raise ValueError(f"at most {MAX_DIMENSIONS} dimensions")
    if len(metrics) > MAX_METRICS:
        raise ValueError(f"at most {MAX_METRICS} metrics")
    doc: dict[str, Any] = dict(properties or {})
    doc.update(dimensions)
    definitions = []
    for name, (value, unit) in metrics.items():
        if unit not in UNITS:
            raise ValueError(f"{name}: unit {unit!r} is not a CloudWatch unit")
        if isinstance(value, list) and len(value) > MAX_VALUES:
            raise ValueError(f"{name}: at most {MAX_VALUES} values")
        doc[name] = value
        definitions.append({"Name": name, "Unit": unit})
    doc["_aws"] = {
        "Timestamp": int(time.time() * 1000) if timestamp_ms is None else timestamp_ms,
        "CloudWatchMetrics": [
            {"Namespace": namespace, "Dimensions": [sorted(dimensions)], "Metrics": definitions}
        ],
    }
    return doc


# The HTTP middleware's metrics, per (Service, Route).
REQUEST_COUNT = declare("RequestCount", "Count", ("Service", "Route"), "count")
SERVER_ERROR_COUNT = declare("ServerErrorCount", "Count", ("Service", "Route"), "count")
CLIENT_ERROR_COUNT = declare("ClientErrorCount", "Count", ("Service", "Route"), "count")
LATENCY = declare("Latency", "Milliseconds", ("Service", "Route"), "sampled")


@dataclass
class _Series:
    """One metric under one set of dimension values, since the last flush."""

    metric: Metric
    total: float = 0
    seen: int = 0
    values: list[float] = field(default_factory=list)

    def add(self, value: float, rng: random.Random) -> None:
        self.seen += 1
        if self.metric.kind == "count":
            self.total += value
        elif len(self.values) < MAX_VALUES:
            self.values.append(value)
        else:
            # reservoir sample: every value of the interval equally likely to be among those sent
            slot = rng.randrange(self.seen)
            if slot < MAX_VALUES:
                self.values[slot] = value

    def emitted(self) -> float | list[float]:
        return self.total if self.metric.kind == "count" else self.values


class Metrics:
    """Aggregates metrics; ``flush`` writes one EMF line per set of dimension values seen since the
    last flush."""

    def __init__(self, namespace: str, out: TextIO | None = None, clock: Callable[[], float] = time.time) -> None:
        self.namespace = namespace
        self.out = out or sys.stdout
        self.clock = clock
        self._lock = threading.Lock()
        self._series: dict[tuple[tuple[str, str], ...], dict[str, _Series]] = {}
        self._rng = random.Random()

    def count(self, metric: Metric, dimensions: Mapping[str, str], n: float = 1) -> None:
        self._add(dimensions, ((metric, n),), "count")

    def observe(self, metric: Metric, dimensions: Mapping[str, str], value: float) -> None:
        """A duration, or a gauge's reading."""
        self._add(dimensions, ((metric, value),), "sampled")

    def record(self, service: str, method: str, route: str, status: int, seconds: float) -> None:
        """One HTTP request."""
        self._add(
            {"Service": service, "Route": f"{method} {route}"},
            (
                (REQUEST_COUNT, 1),
                (SERVER_ERROR_COUNT, 1 if status >= 500 else 0),
                (CLIENT_ERROR_COUNT, 1 if 400 <= status < 500 else 0),
                (LATENCY, round(seconds * 1000, 3)),
            ),
        )

    def _add(
        self,
        dimensions: Mapping[str, str],
        values: tuple[tuple[Metric, float], ...],
        kind: Kind | None = None,
    ) -> None:
        names = tuple(sorted(dimensions))
        for metric, _ in values:
            if kind is not None and metric.kind != kind:
                raise ValueError(f"{metric.name} is {metric.kind}, not {kind}")
            if names != metric.dimensions:
                raise ValueError(f"{metric.name} has dimensions {metric.dimensions}, not {names}")
        key = tuple(sorted(dimensions.items()))
        with self._lock:
            by_name = self._series.setdefault(key, {})
            for metric, value in values:
                series = by_name.get(metric.name)
                if series is None:
                    series = by_name[metric.name] = _Series(metric)
                series.add(value, self._rng)

    def flush(self) -> int:
        with self._lock:
            series, self._series = self._series, {}
        now = int(self.clock() * 1000)
        for key, by_name in sorted(series.items()):
            doc = document(
                self.namespace,
                dict(key),
                {name: (s.emitted(), s.metric.unit) for name, s in sorted(by_name.items())},
                now,
            )
            self.out.write(json.dumps(doc, separators=(",", ":")) + "\n")
        self.out.flush()
        return len(series)


_metrics: Metrics | None = None


def configure(namespace: str, interval: float = 60.0) -> Metrics | None:
    """Start the per-process aggregator and its flushing thread (once); None when not configured."""
    global _metrics
    if not namespace:
        return None
    if _metrics is None:
        _metrics = Metrics(namespace)
        metrics = _metrics

        def loop() -> None:
            while True:
                time.sleep(interval)
                metrics.flush()

        threading.Thread(target=loop, name="emf-flush", daemon=True).start()
        atexit.register(metrics.flush)  # the last interval too, when the process stops cleanly
    return _metrics


def record(service: str, method: str, route: str, status: int, seconds: float) -> None:
    if _metrics is not None:
        _metrics.record(service, method, route, status, seconds)


def count(metric: Metric, dimensions: Mapping[str, str], n: float = 1) -> None:
    if _metrics is not None:
        _metrics.count(metric, dimensions, n)


def observe(metric: Metric, dimensions: Mapping[str, str], value: float) -> None:
    """A duration, or a gauge's reading."""
    if _metrics is not None:
        _metrics.observe(metric, dimensions, value)
