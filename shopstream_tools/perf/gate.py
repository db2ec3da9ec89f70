"""perf-check's verdict: a run against the committed baseline
(``performance-tests/perf-baseline.json``), failing beyond +25%.

CPU per operation is compared at the baseline's machine speed: each figure is divided by how much
slower the speed probe (``speed.SpeedProbe``) found the machine during that step than during the
baseline's. On this shared machine the same code's raw CPU per order moved 1.25x between runs
of one morning, every process together; divided by the probe, 1.14x (thirteen runs, 2026-12-07:
the probe follows part of that drift, and reads more of it than the platform shows, so it errs
on the lenient side). WAL records per order do not move with the machine and are compared as
they are.
"""

from __future__ import annotations

import copy
import json
import statistics
from typing import Any

from shopstream.config import PROJECT_ROOT

BASELINE = PROJECT_ROOT / "performance-tests" / "perf-baseline.json"
TOLERANCE = 1.25
CPU_GATES = {"cpu_ms_per_order": "orders", "cpu_ms_per_read": "reads"}


def baseline_of(result: dict[str, Any]) -> dict[str, Any]:
    return {
        "cpu_ms_per_order": result["orders"]["cpu_ms_per_op"],
        "cpu_ms_per_read": result["reads"]["cpu_ms_per_op"],
        "wal_records_per_order": result["orders"]["wal_per_op"]["wal_records"],
        "machine_ms_per_unit": {
            n: result[n].get("machine_ms_per_unit") for n in ("orders", "reads")
        },
        "plan": result["plan"],
    }


def machine_factor(result_unit: float | None, baseline_unit: float | None) -> float:
    """How much slower the machine was than at the baseline (1.0 when either side has no probe)."""
    if not result_unit or not baseline_unit:
        return 1.0
    return result_unit / baseline_unit


def median_result(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Several runs as one: each step's CPU per operation is the median of the runs' figures
    divided by their machine speed, at the median speed; WAL records the median; failures summed,
    and not drained when any run did not drain. The rest is the middle run's."""
    if len(results) == 1:
        return results[0]
    middle = copy.deepcopy(results[len(results) // 2])
    for step in ("orders", "reads"):
        steps = [r[step] for r in results]
        merged = middle[step]
        units = [s.get("machine_ms_per_unit") for s in steps]
        if all(units):
            speed = statistics.median(units)
            merged["cpu_ms_per_op"] = round(
                statistics.median(s["cpu_ms_per_op"] / u for s, u in zip(steps, units, strict=True))
                * speed,
                3,
            )
            merged["machine_ms_per_unit"] = speed
        else:
            merged["cpu_ms_per_op"] = statistics.median(s["cpu_ms_per_op"] for s in steps)
        merged["wal_per_op"]["wal_records"] = statistics.median(
            s["wal_per_op"]["wal_records"] for s in steps
        )
        merged["failures"] = sum(s["failures"] for s in steps)
        drains = [s["drain_seconds"] for s in steps]
        merged["drain_seconds"] = None if None in drains else max(drains)
        merged["runs_cpu_ms_per_op"] = [s["cpu_ms_per_op"] for s in steps]
        merged["runs_machine_ms_per_unit"] = units
    return middle


def compare(result: dict[str, Any]) -> int:
    """Print each gate's verdict; 1 when any failed (a figure beyond, a failure, no drain)."""
    if not BASELINE.exists():
        print("no baseline committed: run with --update-baseline")
        return 1
    base = json.loads(BASELINE.read_text())
    base_units = base.get("machine_ms_per_unit") or {}
    failed = 0
    for key, step in CPU_GATES.items():
        if key not in base:
            continue
        now = result[step]["cpu_ms_per_op"]
        factor = machine_factor(result[step].get("machine_ms_per_unit"), base_units.get(step))
        ratio = now / base[key] / factor if base[key] else float("inf")
        failed += _verdict(key, ratio, f"{now:.3f} vs baseline {base[key]:.3f} = "
                                       f"{now / base[key]:.2f}x raw, machine {factor:.2f}x slower")  # fmt: skip
    if "wal_records_per_order" in base:
        now = result["orders"]["wal_per_op"]["wal_records"]
        ratio = now / base["wal_records_per_order"]
        failed += _verdict("wal_records_per_order", ratio,
                           f"{now:.3f} vs baseline {base['wal_records_per_order']:.3f}")  # fmt: skip
    for name in ("orders", "reads"):
        step_result = result[name]
        if step_result["failures"] or step_result["drain_seconds"] is None:
            print(
                f"{name}: {step_result['failures']} failures, drained: {step_result['drain_seconds']}"
            )
            failed += 1
    return 1 if failed else 0


def _verdict(key: str, ratio: float, detail: str) -> int:
    verdict = "ok" if ratio <= TOLERANCE else f"REGRESSION (> {TOLERANCE:.2f}x)"
    print(f"{key}: {detail}: {ratio:.2f}x  {verdict}")
    return int(ratio > TOLERANCE)
