"""The machine's speed during a measurement: the CPU one fixed unit of work takes, sampled
throughout it.

This machine is shared, and the CPU the same work takes moves with what its neighbours do: one
commit's code read 13.7 to 17.3 ms of CPU per order within an hour, every process of the platform
up or down together (perf-check runs of 2026-12-07), and a fixed loop of Python read 243 to 426 ms
a few seconds apart with no steal time counted. A probe thread that does a small fixed unit every
``period`` seconds (a 0.3 ms unit every 30 ms: about 1% of a core) measures that factor while the platform runs, so a
figure can be divided by the speed it was measured at.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import msgspec

_ORDER = {
    "order_id": "0f6c6b1e8d1c4b7e9a3c2d1e0f9a8b7c",
    "customer_id": "customer-000123",
    "lines": [
        {"product_id": f"product-{i:06d}", "quantity": i + 1, "unit_price": "19.99"}
        for i in range(3)
    ],
    "shipping_address": {"name": "Perf Customer", "city": "Lisbon", "country": "PT"},
    "status": "accepted",
}


def unit_of_work(repeats: int = 40) -> int:
    """What the services do most, in small: encode and decode an order, build dicts and strings."""
    total = 0
    for i in range(repeats):
        body = msgspec.json.encode(_ORDER)
        order = msgspec.json.decode(body)
        lines = {line["product_id"]: line["quantity"] * (i + 1) for line in order["lines"]}
        key = "|".join(f"{k}:{v}" for k, v in sorted(lines.items()))
        total += len(key) + len(body)
    return total


@dataclass
class SpeedProbe:
    """``start()``, measure, ``stop()``: then ``ms_per_unit`` is the mean CPU of one unit."""

    period: float = 0.03
    units: int = 0
    cpu_seconds: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> SpeedProbe:
        self._thread = threading.Thread(target=self._run, name="speed-probe", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            began = time.thread_time()
            unit_of_work()
            self.cpu_seconds += time.thread_time() - began
            self.units += 1

    def stop(self) -> SpeedProbe:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return self

    @property
    def ms_per_unit(self) -> float | None:
        return round(self.cpu_seconds / self.units * 1000, 4) if self.units else None
