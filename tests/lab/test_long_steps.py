"""Long steps cut into minutes: drift and memory growth found where they are, not where not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shopstream_tools.lab import long_steps


def _step(
    minutes: int, rate: Any, mb_per_minute: float = 0.0, cores: float = 1.0
) -> dict[str, Any]:
    """A step whose second ``t`` answers ``rate(t)`` requests (p99 = 50 ms) while the platform
    uses ``cores`` and its order instance grows by ``mb_per_minute``."""
    seconds = minutes * 60
    timeline = [
        {"t": t, "requests": rate(t), "failures": 0, "p50": 5.0, "p95": 20.0, "p99": 50.0}
        for t in range(1, seconds + 1)
    ]
    samples = [
        {
            "t": t + 0.5,
            "cpu": {"order-1": cores / 2, "postgres": cores / 2, "loadgen": 3.0, "lab": 0.1},
            "pss_mb": {"order-1": 100.0 + mb_per_minute * t / 60, "kafka": 400.0, "loadgen": 50.0},
            "kafka": {"lag": {"order-saga": 7, "product-saga": 3}},
        }
        for t in range(seconds)
    ]
    return {"test": "PT-02", "step": "async users=100", "load_seconds": seconds + 0.4,
            "load": {"timeline": timeline}, "samples": samples}  # fmt: skip


def test_a_steady_step_is_called_steady_with_its_cost_per_request() -> None:
    per_minute = long_steps.minutes(_step(5, lambda t: 100))
    assert len(per_minute) == 5
    assert per_minute[2]["rate"] == 100.0
    assert per_minute[2]["cpu_ms_per_op"] == 10.0  # 1 core over 100 requests a second
    assert per_minute[2]["peak_lag"] == 10.0
    assert per_minute[2]["pss_mb"] == 500.0  # the platform's, not the load generator's
    assert long_steps.drift(per_minute, "rate") == 1.0


def test_a_falling_rate_and_growing_memory_are_reported(tmp_path: Path) -> None:
    step = _step(8, lambda t: 100 if t <= 240 else 60, mb_per_minute=5.0)
    (tmp_path / "PT-02.json").write_text(json.dumps({"steps": [step]}))
    found = long_steps.long_steps(tmp_path)["PT-02 async users=100"]
    assert round(long_steps.drift(found["minutes"], "rate"), 2) == 0.6
    assert round(found["memory"]["total"], 1) == 50.0  # 5 MB a minute
    assert round(found["memory"]["kafka"], 1) == 0.0
    table = long_steps.drift_table({"PT-02 async users=100": found})
    assert "moved: rate, cpu_ms_per_op" in table
    steady = long_steps.drift_table({"x": {"minutes": long_steps.minutes(_step(6, lambda t: 80)),
                                           "memory": {}}})  # fmt: skip
    assert "| steady |" in steady
    png = long_steps.chart({"PT-02 async users=100": found}, tmp_path / "long.png")
    assert png.read_bytes().startswith(b"\x89PNG")


def test_a_step_shorter_than_two_minutes_is_not_a_long_step(tmp_path: Path) -> None:
    (tmp_path / "PT-02.json").write_text(json.dumps({"steps": [_step(1, lambda t: 100)]}))
    assert long_steps.long_steps(tmp_path) == {}


def test_the_long_run_is_put_beside_the_short_one_by_step_kind() -> None:
    def summary(rate: float, open_rate: int) -> dict[str, Any]:
        row = {"ok_rate": rate, "p99_ms": 200.0, "cpu_cores": {"postgres": 0.5, "loadgen": 2.0},
               "e2e_p99_ms": 300.0}  # fmt: skip
        rows = [
            {"step": "async users=100", **row},
            {"step": f"async open loop {open_rate}/s", **row},
        ]
        return {"tests": {"PT-02": {"rows": rows}, "PT-05": {"row": {"step": "burst", **row}}}}

    table = long_steps.against_table(summary(50.0, 40), summary(100.0, 36))
    assert (
        "| PT-02 async users=100 | 100.0 → 50.0 | 200 → 200 | 5.00 → 10.00 | 300 → 300 |" in table
    )
    assert "| PT-02 async open loop |" in table
    assert "| PT-05 burst |" in table
