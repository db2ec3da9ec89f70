"""From raw step records to the figures the report prints and the charts draw: each test's own
analysis (its module in ``shopstream_tools.lab.tests``) on its steps, every throughput absolute and
as ratios to the same run's ceilings (medians over the ceiling rounds); and what spans the tests:
the resource heatmap, the load generator's saturation and what Prometheus saw of it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shopstream_tools.lab import stats
from shopstream_tools.lab.figures import component, other_cores
from shopstream_tools.lab.tests import REGISTRY


def ceilings_summary(ceilings: Mapping[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    return {
        name: {
            "median": stats.median(r["rate"] for r in rounds),
            "rounds": [r["rate"] for r in rounds],
            "unit": rounds[0]["unit"] if rounds else "",
            "loadgen_cores": stats.median(r["loadgen"]["cores"] for r in rounds),
        }
        for name, rounds in ceilings.items()
    }



def heatmap(tests: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Mean cores and peak memory (PSS of each tree) per component (rows) and step (columns)."""
    columns: list[str] = []
    cpu: dict[str, list[float | None]] = {}
    rss: dict[str, list[float | None]] = {}
    for test, result in tests.items():
        for step in result.get("steps", []):
            col = len(columns)
            columns.append(f"{test} {step['step']}")
            folded: dict[str, float] = {}
            for name, value in step.get("cpu_cores", {}).items():
                if name != "machine":
                    folded[component(name)] = folded.get(component(name), 0.0) + value
            other = other_cores(step.get("cpu_cores", {}))
            if other is not None:
                folded["other work on the machine"] = other
            mem: dict[str, float] = {}  # peak PSS of each process tree (shared pages split)
            for sample in step.get("samples", []):
                at: dict[str, float] = {}
                for name, value in (sample.get("pss_mb") or {}).items():
                    at[component(name)] = at.get(component(name), 0.0) + value
                for name, value in at.items():
                    mem[name] = max(mem.get(name, 0.0), value)
            for name in set(folded) | set(cpu):
                cpu.setdefault(name, [None] * col).append(folded.get(name))
            for name in set(mem) | set(rss):
                rss.setdefault(name, [None] * col).append(mem.get(name))
            for table in (cpu, rss):
                for values in table.values():
                    values.extend([None] * (col + 1 - len(values)))
    return {"columns": columns, "cpu": cpu, "pss_mb": rss}


def memory_timeline(tests: Mapping[str, Mapping[str, Any]], every: float = 2.0) -> dict[str, Any]:
    """Memory (PSS MB of each component, instances added up) over the whole run: the steps' samples
    one after the other, a point every ``every`` seconds, and where each test began."""
    t_axis: list[float] = []
    pss: dict[str, list[float | None]] = {}
    starts: list[tuple[float, str]] = []
    offset = 0.0
    for test, result in tests.items():
        steps = result.get("steps", [])
        if steps:
            starts.append((round(offset, 1), test))
        for step in steps:
            last = -every
            for sample in step.get("samples", []):
                if sample["t"] - last < every:
                    continue
                last = sample["t"]
                at: dict[str, float] = {}
                for name, value in (sample.get("pss_mb") or {}).items():
                    at[component(name)] = at.get(component(name), 0.0) + value
                for name in set(at) | set(pss):
                    pss.setdefault(name, [None] * len(t_axis)).append(round(at[name], 1) if name in at else None)
                t_axis.append(round(offset + sample["t"], 1))
            offset += max((s["t"] for s in step.get("samples", [])), default=0.0)
    return {"t": t_axis, "pss_mb": pss, "tests": starts}



def summarize(
    ceilings: Mapping[str, list[dict[str, Any]]],
    tests: Mapping[str, Mapping[str, Any]],
    machine_cores: float,
) -> dict[str, Any]:
    csum = ceilings_summary(ceilings)
    ceil = {k: v["median"] for k, v in csum.items()}
    out: dict[str, Any] = {"ceilings": csum, "tests": {}}
    for test, result in tests.items():
        steps = list(result.get("steps", []))
        entry: dict[str, Any] = {
            "title": result.get("title"),
            "audit": result.get("audit"),
            "skipped": result.get("skipped"),
            "interrupted": result.get("interrupted", False),
            "error": result.get("error"),
        }
        if steps and test in REGISTRY:
            entry |= REGISTRY[test].analyse(steps, ceil, machine_cores)
        out["tests"][test] = entry
    out["heatmap"] = heatmap(tests)
    out["memory_timeline"] = memory_timeline(tests)
    out["machine_cores"] = machine_cores
    saturated = [
        f"{test} {s['step']}: {s['load']['loadgen']['saturation_reason']}"
        for test, result in tests.items()
        for s in result.get("steps", [])
        if s.get("load", {}).get("loadgen", {}).get("saturated")
    ]
    out["loadgen_saturated"] = saturated
    out["loadgen_scraped"] = loadgen_scraped(tests)
    return out


def loadgen_scraped(tests: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """How much of the load generators' work Prometheus saw, over the run: steps scraped at all,
    and its last counter value against the generator's own count."""
    steps = scraped = 0
    counted = seen = 0.0
    for result in tests.values():
        for s in result.get("steps", []):
            prom = s.get("load", {}).get("prometheus") or {}
            if "scrapes" not in prom:
                continue
            steps += 1
            if prom.get("up"):
                scraped += 1
                counted += s["load"].get("requests") or 0
                seen += prom.get("requests") or 0
    return {"steps": steps, "scraped": scraped, "share_of_requests": seen / counted if counted else None}
