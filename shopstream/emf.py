"""CloudWatch Embedded Metric Format (EMF): key metrics as JSON lines on the process's log stream.

On ECS the awslogs driver ships stdout to CloudWatch Logs, which turns each EMF document into
metrics (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html).
Off unless ``SHOPSTREAM_AWS_EMF_NAMESPACE`` is set. Requests are aggregated in memory and written once
per interval, one document per (service, route): RequestCount, ServerErrorCount (5xx), ClientErrorCount
(4xx) and Latency as up to 100 sampled values in milliseconds (CloudWatch computes p99 from them).
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

MAX_VALUES = 100  # values per metric per document (the specification's limit)
MAX_DIMENSIONS = 30
UNITS = {
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes",
    "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count",
    "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second",
    "Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second",
    "Count/Second", "None",
}  # fmt: skip


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


@dataclass
class _Route:
    count: int = 0
    server_errors: int = 0
    client_errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    def add(self, status: int, seconds: float, rng: random.Random) -> None:
        self.count += 1
        if status >= 500:
            self.server_errors += 1
        elif status >= 400:
            self.client_errors += 1
        ms = round(seconds * 1000, 3)
        # reservoir sample: every request equally likely to be among the 100 values sent
        if len(self.latencies_ms) < MAX_VALUES:
            self.latencies_ms.append(ms)
        else:
            slot = rng.randrange(self.count)
            if slot < MAX_VALUES:
                self.latencies_ms[slot] = ms


class RequestMetrics:
    """Aggregates requests; ``flush`` writes one EMF line per (service, route) seen since the last."""

    def __init__(self, namespace: str, out: TextIO | None = None, clock: Callable[[], float] = time.time) -> None:
        self.namespace = namespace
        self.out = out or sys.stdout
        self.clock = clock
        self._lock = threading.Lock()
        self._routes: dict[tuple[str, str, str], _Route] = {}
        self._rng = random.Random()

    def record(self, service: str, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self._routes.setdefault((service, method, route), _Route()).add(status, seconds, self._rng)

    def flush(self) -> int:
        with self._lock:
            routes, self._routes = self._routes, {}
        now = int(self.clock() * 1000)
        for (service, method, route), r in sorted(routes.items()):
            doc = document(
                self.namespace,
                {"Service": service, "Route": f"{method} {route}"},
                {
                    "RequestCount": (r.count, "Count"),
                    "ServerErrorCount": (r.server_errors, "Count"),
                    "ClientErrorCount": (r.client_errors, "Count"),
                    "Latency": (r.latencies_ms, "Milliseconds"),
                },
                now,
            )
            self.out.write(json.dumps(doc, separators=(",", ":")) + "\n")
        self.out.flush()
        return len(routes)


_metrics: RequestMetrics | None = None


def configure(namespace: str, interval: float = 60.0) -> RequestMetrics | None:
    """Start the per-process aggregator and its flushing thread (once); None when not configured."""
    global _metrics
    if not namespace:
        return None
    if _metrics is None:
        _metrics = RequestMetrics(namespace)
        metrics = _metrics

        def loop() -> None:
            while True:
                time.sleep(interval)
                metrics.flush()

        threading.Thread(target=loop, name="emf-flush", daemon=True).start()
    return _metrics


def record(service: str, method: str, route: str, status: int, seconds: float) -> None:
    if _metrics is not None:
        _metrics.record(service, method, route, status, seconds)
