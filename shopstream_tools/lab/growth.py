"""The growth comparison: the same lab steps on the young data set and on the large one, side by
side (``python -m shopstream_tools.lab.growth YOUNG_RUN LARGE_RUN``, markdown on stdout).

Per step: throughput (answered requests per second), p99, and CPU per operation: the CPU of the
platform's own processes (services, relays, consumers, PostgreSQL, Kafka, gateway; not the load
generator nor the lab) over the step, divided by the requests answered. The ratio large/young is
judged against the goal of issue 17: within 1.2x (throughput: at least 1/1.2 of the young one's).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

GOAL = 1.2
NOT_PLATFORM = frozenset({"loadgen", "lab", "machine", "prometheus"})


def platform_cores(cores: Mapping[str, float]) -> float:
    """The cores of the platform's own processes among ``cores`` (by process name)."""
    return sum(v for k, v in cores.items() if k not in NOT_PLATFORM)


def cpu_ms_per_op(cores: Mapping[str, float], rate: float) -> float:
    """The platform's CPU per answered request, in ms, at ``rate`` requests per second."""
    return 1000.0 * platform_cores(cores) / rate if rate else float("nan")


def step_kind(name: str) -> str:
    """An open-loop step runs at its run's own rate: steps are compared by kind."""
    return re.sub(r"open loop [\d.]+/s", "open loop", name)


def figures(step: dict[str, Any]) -> dict[str, float]:
    load = step["load"]
    rate = float(load["ok_rate"])
    return {
        "throughput": rate,
        "p99_ms": float(load["latency_ms"]["p99"]),
        "cpu_ms_per_op": cpu_ms_per_op(step.get("cpu_cores", {}), rate),
    }


def steps(run: Path) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for path in sorted(run.glob("PT-0*.json")):
        for step in json.loads(path.read_text()).get("steps", []):
            if step.get("load"):
                out[step_kind(f"{step['test']} {step['step']}")] = figures(step)
    return out


def _verdict(name: str, young: float, large: float) -> str:
    if not young:
        return "-"
    ratio = large / young
    within = ratio >= 1 / GOAL if name == "throughput" else ratio <= GOAL
    return f"{ratio:.2f}x {'ok' if within else 'over'}"


def table(young: Path, large: Path) -> str:
    a, b = steps(young), steps(large)
    rows = ["| step | figure | young | large | large/young |", "|---|---|---|---|---|"]
    for step in a:
        if step not in b:
            continue
        for name in ("throughput", "p99_ms", "cpu_ms_per_op"):
            y, g = a[step][name], b[step][name]
            digits = 2 if name == "cpu_ms_per_op" else 1
            rows.append(
                f"| {step} | {name} | {y:.{digits}f} | {g:.{digits}f} | {_verdict(name, y, g)} |"
            )
    return "\n".join(rows)


if __name__ == "__main__":
    print(table(Path(sys.argv[1]), Path(sys.argv[2])))
