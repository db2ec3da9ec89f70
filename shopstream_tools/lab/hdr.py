"""Latency distributions as HDR histograms, and the open-loop correction for coordinated omission.

Values are recorded in microseconds (1 µs to 10 min, 3 significant digits: any percentile is
within 0.1 % of the exact one). A histogram travels between processes as HdrHistogram's own
compressed base64 encoding, so a load generator can hand its whole distribution to the lab.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 600_000_000
SIGNIFICANT_DIGITS = 3
PERCENTILES = (50.0, 90.0, 95.0, 99.0, 99.9)
# The percentile-distribution chart's x axis: 0 .. 99.99 %, dense near the tail.
SPECTRUM = (0.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 97.5, 99.0, 99.5, 99.9, 99.95, 99.99)


def _label(p: float) -> str:
    return f"p{p:g}"


class Latencies:
    """A latency distribution in milliseconds, backed by an HDR histogram of microseconds."""

    def __init__(self, histogram: HdrHistogram | None = None) -> None:
        self.h = histogram or HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)
        self.clamped = 0  # values outside the trackable range, recorded at its edge

    def record_ms(self, value_ms: float, count: int = 1) -> None:
        us = round(value_ms * 1000)
        if us < LOWEST_US or us > HIGHEST_US:
            self.clamped += count
            us = min(max(us, LOWEST_US), HIGHEST_US)
        self.h.record_value(us, count)

    def extend_ms(self, values: Iterable[float]) -> Latencies:
        for v in values:
            self.record_ms(v)
        return self

    def merge(self, other: Latencies) -> Latencies:
        self.h.add(other.h)
        self.clamped += other.clamped
        return self

    @property
    def count(self) -> int:
        return int(self.h.get_total_count())

    def percentile_ms(self, p: float) -> float:
        if self.count == 0:
            raise ValueError("percentile of an empty distribution")
        return float(self.h.get_value_at_percentile(p)) / 1000

    def summary(self, percentiles: Sequence[float] = PERCENTILES) -> dict[str, float]:
        """count, mean, min, max and the percentiles in ms; {} when nothing was recorded."""
        if self.count == 0:
            return {}
        out = {
            "count": float(self.count),
            "mean": float(self.h.get_mean_value()) / 1000,
            "min": float(self.h.get_min_value()) / 1000,
            "max": float(self.h.get_max_value()) / 1000,
        }
        for p in percentiles:
            out[_label(p)] = self.percentile_ms(p)
        return out

    def spectrum(self) -> dict[str, float]:
        """The distribution at SPECTRUM's percentiles (for the percentile chart)."""
        return {_label(p): self.percentile_ms(p) for p in SPECTRUM} if self.count else {}

    def encode(self) -> str:
        return bytes(self.h.encode()).decode("ascii") if self.count else ""

    @classmethod
    def decode(cls, text: str) -> Latencies:
        return cls(HdrHistogram.decode(text.encode("ascii"))) if text else cls()

    @classmethod
    def of_ms(cls, values: Iterable[float]) -> Latencies:
        return cls().extend_ms(values)


def intended_start_ns(attack_start_ns: int, seq: int, rate_per_s: float) -> int:
    """When an open-loop generator at a constant rate should have sent request number seq."""
    return attack_start_ns + round(seq * 1e9 / rate_per_s)


def corrected_latency_ns(
    sent_ns: int, latency_ns: int, attack_start_ns: int, seq: int, rate_per_s: float
) -> int:
    """Latency as the user of request seq saw it: from its scheduled time, not from when the
    generator got round to sending it. A generator that fell behind (coordinated omission) would
    otherwise hide exactly the waits that the schedule exposes."""
    late = max(0, sent_ns - intended_start_ns(attack_start_ns, seq, rate_per_s))
    return late + latency_ns
