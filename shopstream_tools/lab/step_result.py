"""What every load tool's step result says the same way (vegeta, JMeter, Locust): totals, rates,
the latency summary and spectrum, and the per-second timeline the charts draw."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shopstream_tools.lab.hdr import Latencies


def totals(
    tool: str, seconds: float, requests: int, failures: int, latencies: Latencies
) -> dict[str, Any]:
    return {
        "tool": tool,
        "seconds": seconds,
        "requests": requests,
        "failures": failures,
        "rate": requests / seconds if seconds > 0 else 0.0,
        "ok_rate": (requests - failures) / seconds if seconds > 0 else 0.0,
        "latency_ms": latencies.summary(),
        "spectrum_ms": latencies.spectrum(),
    }


def timeline(
    per_second: Mapping[int, list[float]], failures: Mapping[int, int], first: int = 0
) -> list[dict[str, Any]]:
    """Requests, failures and p50/p95/p99 of each second (latencies in ms), the first second
    ``first`` numbered 1."""
    out = []
    for second in sorted(per_second):
        values = Latencies.of_ms(per_second[second])
        out.append({
            "t": second - first + 1,
            "requests": len(per_second[second]),
            "failures": failures.get(second, 0),
            "p50": values.percentile_ms(50),
            "p95": values.percentile_ms(95),
            "p99": values.percentile_ms(99),
        })  # fmt: skip
    return out
