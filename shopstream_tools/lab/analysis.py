"""From raw step records to the figures the report prints and the charts draw: every throughput
absolute and as ratios to the same run's ceilings (medians over the ceiling rounds), saturation,
scaling efficiency and the PT-03 models, partition balance, burst recovery, tracing's cost."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from shopstream_tools.lab import model, stats

SAGA_TOPICS = ("order-events", "stock-events", "payment-events")
# components of the resource heatmap: process names folded into what they are
_INSTANCE = re.compile(r"^(product|order)-\d+$")


def component(process: str) -> str:
    match = _INSTANCE.match(process)
    return f"{match.group(1)} (instances)" if match else process


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


def _lat(load: Mapping[str, Any], key: str) -> float | None:
    value = load.get("latency_ms", {}).get(key)
    return float(value) if value is not None else None


def step_row(step: Mapping[str, Any], ceil: Mapping[str, float | None], against: list[str]) -> dict[str, Any]:
    """The common figures of one step: rates, latency percentiles, load generator, ratios."""
    load = step.get("load", {})
    gen = load.get("loadgen", {})
    ok_rate = load.get("ok_rate")
    row: dict[str, Any] = {
        "step": step["step"],
        **step.get("params", {}),
        "rate": load.get("rate"),
        "ok_rate": ok_rate,
        "failures": load.get("failures", 0),
        "requests": load.get("requests", 0),
        "p50_ms": _lat(load, "p50"),
        "p90_ms": _lat(load, "p90"),
        "p95_ms": _lat(load, "p95"),
        "p99_ms": _lat(load, "p99"),
        "p99.9_ms": _lat(load, "p99.9"),
        "loadgen": gen.get("tool"),
        "loadgen_cores": gen.get("cores"),
        "loadgen_saturated": gen.get("saturated", False),
        "loadgen_note": gen.get("saturation_reason", ""),
        "machine_cores": step.get("cpu_cores", {}).get("machine"),
        "other_cores": other_cores(step.get("cpu_cores", {})),
        "drain_seconds": step.get("drain_seconds"),
        # what Prometheus scraped of the load generator (its loadgen job) during the step
        "prom_scrapes": (load.get("prometheus") or {}).get("up"),
        "prom_requests": (load.get("prometheus") or {}).get("requests"),
    }
    for name in against:
        row[f"x {name}"] = stats.ratio(ok_rate, ceil.get(name))
    return row


def other_cores(cores: Mapping[str, float]) -> float | None:
    """Busy cores of the machine that none of the sampled processes (the lab's included) used:
    other work on this shared machine."""
    if "machine" not in cores:
        return None
    return max(0.0, cores["machine"] - sum(v for k, v in cores.items() if k != "machine"))


def backlog_series(step: Mapping[str, Any]) -> list[tuple[float, float, float]]:
    """(t, unpublished outbox rows, consumer lag) per sample."""
    out = []
    for s in step.get("samples", []):
        backlog = s.get("backlog") or {}
        lag = (s.get("kafka") or {}).get("lag") or {}
        outbox = sum(v for v in backlog.values() if isinstance(v, int | float))
        out.append((s["t"], float(outbox), float(sum(v for v in lag.values() if isinstance(v, int | float)))))
    return out


def pt01(steps: list[dict[str, Any]], ceil: Mapping[str, float | None]) -> dict[str, Any]:
    rows = [step_row(s, ceil, ["nginx-fixed", "pgbench-read-mix"]) for s in steps]
    points = [(float(r["users"]), float(r["ok_rate"] or 0)) for r in rows]
    knee = stats.saturation_point(points)
    best = max(rows, key=lambda r: r["ok_rate"] or 0) if rows else None
    return {
        "rows": rows,
        "saturation": (
            {"users": knee, "ok_rate": best["ok_rate"], "best_at_users": best["users"]}
            if knee is not None and best
            else None
        ),
        "ideal": stats.ideal_line(points),
    }


def pt02(steps: list[dict[str, Any]], ceil: Mapping[str, float | None]) -> dict[str, Any]:
    rows = []
    for s in steps:
        row = step_row(s, ceil, ["nginx-fixed", "pgbench-order-path"])
        o = s.get("orders") or {}
        row["orders"] = o.get("orders")
        row["outcomes"] = o.get("outcomes", {})
        conf = o.get("accepted_to_confirmed_ms") or {}
        row["e2e_p50_ms"] = conf.get("p50")
        row["e2e_p95_ms"] = conf.get("p95")
        row["e2e_p99_ms"] = conf.get("p99")
        row["stages_p50_ms"] = {k: v.get("p50") for k, v in (o.get("stages_ms") or {}).items()}
        series = backlog_series(s)
        row["peak_outbox"] = max((b for _, b, _ in series), default=0)
        row["peak_lag"] = max((lag for _, _, lag in series), default=0)
        row["cpu_cores"] = s.get("cpu_cores", {})
        rows.append(row)
    return {"rows": rows}


def _service_cores(cores: Mapping[str, float]) -> float:
    return sum(v for k, v in cores.items() if _INSTANCE.match(k))


def demand_tiers(cores: Mapping[str, float]) -> dict[str, float]:
    """CPU by tier for the demand model (the lab's own process and the machine total left out)."""
    tiers: dict[str, float] = {"service instances": _service_cores(cores)}
    for name, value in cores.items():
        if _INSTANCE.match(name) or name in ("machine", "lab"):
            continue
        tier = {"gateway": "gateway", "postgres": "postgres", "kafka": "kafka", "loadgen": "load generator",
                "prometheus": "observability", "zipkin": "observability"}.get(name, "relays and consumers")  # fmt: skip
        tiers[tier] = tiers.get(tier, 0.0) + value
    return tiers


# On a larger machine: each instance has a core; the shared tiers keep the cores they could use
# here (2), the load generator runs elsewhere.
LARGER_MACHINE = {"gateway": 2.0, "postgres": 2.0, "kafka": 2.0, "relays and consumers": 2.0}


def pt03(steps: list[dict[str, Any]], ceil: Mapping[str, float | None], machine_cores: float) -> dict[str, Any]:
    rows = [step_row(s, ceil, ["nginx-fixed"]) for s in steps]
    points = [(float(r["instances"]), float(r["ok_rate"] or 0)) for r in rows if r.get("ok_rate")]
    eff = dict(stats.scaling_efficiency(points))
    for r in rows:
        r["efficiency"] = eff.get(float(r["instances"]))
    out: dict[str, Any] = {"rows": rows, "ideal": stats.ideal_line(points)}
    if len(points) >= 2:
        usl = model.fit_usl(points)
        out["usl"] = {
            "lambda": usl.lam, "sigma": usl.sigma, "kappa": usl.kappa, "peak_n": usl.peak_n,
            "mape": usl.mape, "r_squared": usl.r_squared,
            "errors": [{"instances": n, "error": e} for (n, _), e in zip(usl.points, usl.errors(), strict=True)],
            "predict": {str(n): usl.predict(n) for n in (1, 2, 4, 8, 16)},
        }  # fmt: skip
    demand_steps = []
    for r, s in zip(rows, steps, strict=True):
        if not r.get("ok_rate"):
            continue
        cores = s.get("cpu_cores", {})
        tiers = demand_tiers(cores)
        # the machine's busy cores that none of the tiers used: other work on this shared machine
        other = max(0.0, cores.get("machine", 0.0) - sum(tiers.values()))
        demand_steps.append(model.DemandStep(int(r["instances"]), float(r["ok_rate"]), tiers, other))
    if demand_steps:
        dm = model.fit_demands(demand_steps, "service instances", machine_cores)
        out["demand"] = {
            "demands_ms": {k: v * 1000 for k, v in dm.demands.items()},
            "spread_ms": {k: (lo * 1000, hi * 1000) for k, (lo, hi) in dm.spread.items()},
            "here": [
                {"instances": n, "measured": x, "model": b, "error": e, "other_cores": st.other_cores}
                for (n, x, b, e), st in zip(dm.errors_here(), dm.steps, strict=True)
            ],
            "mape_here": dm.mape_here,
            "larger_machine": LARGER_MACHINE,
            "predict": [dm.predict_larger(n, LARGER_MACHINE) for n in (1, 2, 4, 8)],
        }
    return out


def pt04(steps: list[dict[str, Any]], ceil: Mapping[str, float | None]) -> dict[str, Any]:
    rows = []
    for s in steps:
        row = step_row(s, ceil, [])
        k = s.get("kafka_ceiling") or {}
        row["kafka_ceiling"] = k.get("rate")
        messages = s.get("partition_messages") or {}
        per_topic = {t: sum(v.values()) for t, v in messages.items()}
        saga = sum(per_topic.get(t, 0) for t in SAGA_TOPICS)
        seconds = (s.get("load_seconds") or 0) + (s.get("drain_seconds") or 0)
        row["messages"] = saga
        row["messages_per_s"] = saga / seconds if seconds > 0 else None
        row["x kafka-producer"] = stats.ratio(row["messages_per_s"], row["kafka_ceiling"])
        dist = messages.get("order-events") or {}
        row["order_events_per_partition"] = {p: dist[p] for p in sorted(dist, key=int)}
        row["balance"] = stats.balance([float(v) for v in row["order_events_per_partition"].values()])
        processed = s.get("processed") or {}
        row["processed_per_s"] = processed.get("rate")
        conf = (s.get("orders") or {}).get("accepted_to_confirmed_ms") or {}
        row["e2e_p50_ms"] = conf.get("p50")
        row["e2e_p95_ms"] = conf.get("p95")
        series = backlog_series(s)
        row["peak_lag"] = max((lag for _, _, lag in series), default=0)
        row["lag_series"] = [(t, lag) for t, _, lag in series]
        rows.append(row)
    return {"rows": rows}


def pt05(steps: list[dict[str, Any]], ceil: Mapping[str, float | None]) -> dict[str, Any]:
    if not steps:
        return {}
    s = steps[0]
    load = s.get("load", {})
    phases = s.get("params", {}).get("phases") or []
    base_s = float(phases[0][0]) if phases else 0.0
    peak_end = base_s + (float(phases[1][0]) if len(phases) > 1 else 0.0)
    timeline = load.get("timeline", [])
    shift = 0.0
    if load.get("started_wall") and s.get("sampler_started_wall"):
        shift = float(load["started_wall"]) - float(s["sampler_started_wall"])
    times = [float(e["t"]) for e in timeline]
    p95 = [e.get("p95") for e in timeline]
    base = stats.median(v for t, v in zip(times, p95, strict=True) if 1 <= t <= base_s)
    threshold = 1.5 * base if base else None
    recovery = (
        stats.recovery_seconds(times, p95, peak_end, threshold) if threshold is not None else None
    )
    peak = [e for e in timeline if base_s < e["t"] <= peak_end]
    peak_requests = sum(e["requests"] for e in peak)
    peak_failures = sum(e["failures"] for e in peak)
    series = backlog_series(s)
    b_times = [t - shift for t, _, _ in series]
    b_total = [o + lag for _, o, lag in series]
    base_backlog = max((v for t, v in zip(b_times, b_total, strict=True) if t <= base_s), default=0.0)
    backlog_recovery = stats.recovery_seconds(b_times, b_total, peak_end, max(base_backlog, 10.0))
    rates = [e["requests"] for e in timeline]
    return {
        "row": step_row(s, ceil, ["nginx-fixed"]),
        "base_p95_ms": base,
        "threshold_ms": threshold,
        "peak_end_s": peak_end,
        "base_end_s": base_s,
        "recovery_seconds": recovery,
        "backlog_recovery_seconds": backlog_recovery,
        "peak_error_rate": peak_failures / peak_requests if peak_requests else None,
        "peak_p95_ms": max((e.get("p95") or 0 for e in peak), default=None),
        "peak_rate": stats.median(e["requests"] for e in peak) if peak else None,
        "base_rate": stats.median(e["requests"] for e in timeline if 1 <= e["t"] <= base_s),
        "rate_cv": (_cv(rates) if rates else None),
        "timeline": timeline,
        "backlog": [(t, o, lag) for (t, o, lag) in ((bt, o, lag) for bt, (_, o, lag) in zip(b_times, series, strict=True))],
    }


# Not the platform's work: the machine total, the lab's own sampling, the load generator.
NOT_PLATFORM = ("machine", "lab", "loadgen")
# Where tracing's CPU lands: every process that makes spans, and the server that receives them.
TRACING_GROUPS = ("order instances", "product instances", "relays", "consumers", "postgres", "kafka", "zipkin", "gateway, prometheus")


def tracing_group(process: str) -> str:
    match = _INSTANCE.match(process)
    if match:
        return f"{match.group(1)} instances"
    if process.endswith("-relay"):
        return "relays"
    if process.endswith("-consume"):
        return "consumers"
    return process if process in TRACING_GROUPS else "gateway, prometheus"


def pt06(steps: list[dict[str, Any]], ceil: Mapping[str, float | None]) -> dict[str, Any]:
    """Tracing off against on, each a median over its repeats; the cost as the ratio of the
    medians, and as the median of each repeat's own on/off ratio (the two arms of a repeat ran
    back to back, so drift on the machine hits them alike)."""
    rows = []
    for s in steps:
        row = step_row(s, ceil, ["nginx-fixed", "pgbench-order-path"])
        cores = s.get("cpu_cores", {})
        ok = row["ok_rate"] or 0.0
        platform = sum(v for k, v in cores.items() if k not in NOT_PLATFORM)
        order = sum(v for k, v in cores.items() if _INSTANCE.match(k) and k.startswith("order-"))
        row["platform_cores"] = platform
        row["zipkin_cores"] = cores.get("zipkin", 0.0)
        row["platform_ms_per_order"] = 1000 * platform / ok if ok else None
        row["order_ms_per_order"] = 1000 * order / ok if ok else None
        row["zipkin_ms_per_order"] = 1000 * row["zipkin_cores"] / ok if ok else None
        groups: dict[str, float] = dict.fromkeys(TRACING_GROUPS, 0.0)
        for name, value in cores.items():
            if name not in NOT_PLATFORM:
                groups[tracing_group(name)] += value
        row["ms_per_order"] = {g: 1000 * v / ok for g, v in groups.items()} if ok else {}
        conf = (s.get("orders") or {}).get("accepted_to_confirmed_ms") or {}
        row["e2e_p50_ms"] = conf.get("p50")
        row["e2e_p95_ms"] = conf.get("p95")
        rows.append(row)
    labels = list(dict.fromkeys(r["tracing"] for r in rows))
    keys = ("ok_rate", "p50_ms", "p95_ms", "e2e_p50_ms", "platform_ms_per_order", "order_ms_per_order",
            "zipkin_ms_per_order", "loadgen_cores", "other_cores", "x nginx-fixed", "x pgbench-order-path")  # fmt: skip
    arms = []
    for label in labels:
        mine = [r for r in rows if r["tracing"] == label]
        rates = [r["ok_rate"] for r in mine if r["ok_rate"]]
        arm: dict[str, Any] = {"tracing": label, "ratio": mine[0].get("ratio"), "repeats": len(mine)}
        arm |= {k: stats.median(r.get(k) for r in mine) for k in keys}
        arm["ms_per_order"] = {
            g: stats.median(r["ms_per_order"].get(g) for r in mine if r["ms_per_order"]) for g in TRACING_GROUPS
        }
        arm["ok_rate_min"] = min(rates, default=None)
        arm["ok_rate_max"] = max(rates, default=None)
        arms.append(arm)
    out: dict[str, Any] = {"rows": rows, "arms": arms}
    off = next((a for a in arms if a["tracing"] == "off"), None)
    on = next((a for a in arms if a["tracing"] != "off"), None)
    if off and on:
        paired = []
        for repeat in sorted({r["repeat"] for r in rows}):
            x_off = next((r["ok_rate"] for r in rows if r["repeat"] == repeat and r["tracing"] == "off"), None)
            x_on = next((r["ok_rate"] for r in rows if r["repeat"] == repeat and r["tracing"] != "off"), None)
            if x_off and x_on:
                paired.append(x_on / x_off)
        out["cost"] = {
            "tracing": on["tracing"],
            "throughput_ratio": stats.ratio(on["ok_rate"], off["ok_rate"]),
            "paired_ratios": paired,
            "paired_median": stats.median(paired),
            "p50_ratio": stats.ratio(on["p50_ms"], off["p50_ms"]),
            "p95_ratio": stats.ratio(on["p95_ms"], off["p95_ms"]),
            "cpu_per_order_ratio": stats.ratio(on["platform_ms_per_order"], off["platform_ms_per_order"]),
            # how far apart the repeats of the same setting were: the noise the ratio sits in
            "off_spread": stats.ratio(off["ok_rate_max"], off["ok_rate_min"]),
            "on_spread": stats.ratio(on["ok_rate_max"], on["ok_rate_min"]),
        }
    return out


def _cv(values: list[float]) -> float | None:
    mean = sum(values) / len(values)
    if mean <= 0:
        return None
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values)) / mean


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
        if steps:
            if test == "PT-01":
                entry |= pt01(steps, ceil)
            elif test == "PT-02":
                entry |= pt02(steps, ceil)
            elif test == "PT-03":
                entry |= pt03(steps, ceil, machine_cores)
            elif test == "PT-04":
                entry |= pt04(steps, ceil)
            elif test == "PT-05":
                entry |= pt05(steps, ceil)
            elif test == "PT-06":
                entry |= pt06(steps, ceil)
        out["tests"][test] = entry
    out["heatmap"] = heatmap(tests)
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
