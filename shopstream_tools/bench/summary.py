"""Statistics over rounds: medians, and each target's rate as a ratio to the ceilings of its own
round, because absolute figures on a shared machine drift from one round to the next."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import Any

from shopstream_tools.bench.targets import EQUIVALENT, FIXED, ROUND


def median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


def per_round_ratios(runs: list[dict[str, Any]], target: str, ceiling: str) -> list[float | None]:
    """target rate / ceiling rate, each round against the ceiling of the same round."""
    rates: dict[tuple[int, str], float] = {(r["round"], r["kind"]): r["rate"] for r in runs}
    rounds = sorted({r["round"] for r in runs})
    return [
        ratio(rates[(n, target)], rates[(n, ceiling)])
        for n in rounds
        if (n, target) in rates and (n, ceiling) in rates
    ]


def summarize(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per kind: medians over rounds of rate, p50, p99, load-generator cores; ratios; errors."""
    summary: dict[str, dict[str, Any]] = {}
    for kind in ROUND:
        mine = [r for r in runs if r["kind"] == kind]
        if not mine:
            continue
        row: dict[str, Any] = {
            "rounds": len(mine),
            "rate": median(r["rate"] for r in mine),
            "p50_ms": median(r["latency_ms"].get("p50") for r in mine),
            "p99_ms": median(r["latency_ms"].get("p99") for r in mine),
            "errors": sum(r["error_count"] for r in mine),
            "load_generator_cores": median(r["load_generator"]["cores"] for r in mine),
            "vs_nginx": None,
            "vs_pgbench": None,
        }
        if kind in EQUIVALENT:
            row["vs_nginx"] = median(per_round_ratios(runs, kind, FIXED))
            row["vs_pgbench"] = median(per_round_ratios(runs, kind, EQUIVALENT[kind]))
        groups = [r["cpu"]["groups"] for r in mine if r.get("cpu")]
        if groups:
            row["cpu_cores"] = {
                name: median(g[name]["cores"] for g in groups if name in g) for name in groups[0]
            }
            row["busiest"] = {
                name: max(
                    (g[name]["busiest_process_peak_cores"], g[name]["busiest_process"])
                    for g in groups
                    if name in g
                )
                for name in groups[0]
            }
            row["machine_busy_cores"] = median(r["cpu"]["machine_busy_cores"] for r in mine)
            row["driver_cores"] = median(r["cpu"]["driver_cores"] for r in mine)
            # busy cores that none of the above account for: anything else on the machine
            row["other_cores"] = median(
                r["cpu"]["machine_busy_cores"]
                - sum(g["cores"] for g in r["cpu"]["groups"].values())
                - r["load_generator"]["cores"]
                - r["cpu"]["driver_cores"]
                for r in mine
                if r.get("cpu")
            )
        summary[kind] = row
    return summary
