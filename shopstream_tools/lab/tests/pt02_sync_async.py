"""PT-02 Synchronous vs asynchronous orders: the same order load answered in sync mode (the saga
runs inside the request) and in async mode (202 at once, the saga over Kafka), closed loop at each
user count, then open loop at half the slower mode's capacity for the latency a user sees."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from shopstream_tools.lab import drivers, plotting
from shopstream_tools.lab.context import Lab
from shopstream_tools.lab.figures import backlog_series, step_row
from shopstream_tools.lab.html import COMMON, LOADGEN, image, table
from shopstream_tools.lab.plan import Chart, PerformanceTest
from shopstream_tools.lab.plotting import plt
from shopstream_tools.lab.steps import measure

SYNC_ASYNC, PERCENTILES = "2-sync-vs-async", "6-percentiles"
SYNC_ASYNC_TITLE = "Sync vs async orders (PT-02)"
PERCENTILES_TITLE = "Latency percentile distribution per strategy (PT-02, open loop)"


def run(lab: Lab) -> list[dict[str, Any]]:
    p = lab.profile
    done = []
    capacity: dict[str, float] = {}
    for users in p.pt02_users:
        for mode in ("sync", "async"):
            drive = drivers.locust(
                lab, f"PT-02-{mode}-u{users}", weights={"place_order": 1}, users=users,
                spawn_rate=max(users, 1), seconds=p.pt02_seconds, think_seconds=p.pt02_think, mode=mode,
            )  # fmt: skip
            record = measure(lab, "PT-02", f"{mode} users={users}", {"mode": mode, "users": users, "think_s": p.pt02_think, "loop": "closed"}, drive, p.pt02_seconds)
            drivers.attach_orders(lab, record)
            done.append(record)
            capacity[mode] = max(capacity.get(mode, 0.0), record["load"].get("ok_rate", 0.0))
    # open loop at the same constant rate for both: the latency each model gives a user
    rate = max(1.0, round(0.5 * min(capacity.values() or [1.0])))
    for mode in ("sync", "async"):
        drive = drivers.vegeta(lab, f"PT-02-open-{mode}", mode, rate, p.pt02_open_seconds)
        record = measure(lab, "PT-02", f"{mode} open loop {rate:g}/s", {"mode": mode, "rate": rate, "loop": "open"}, drive, p.pt02_open_seconds)
        drivers.attach_orders(lab, record)
        done.append(record)
    return done


def analyse(steps: list[dict[str, Any]], ceil: Mapping[str, float | None], machine_cores: float) -> dict[str, Any]:
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



def draw_sync_async(summary: Mapping[str, Any], tests: Mapping[str, Any], path: Path) -> Path:
    rows = [r for r in plotting.rows_of(summary, "PT-02") if r.get("loop") == "closed"]
    if not rows:
        raise plotting.NoData("PT-02 ran no closed-loop step")
    levels = sorted({r["users"] for r in rows})
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.5))
    width = 0.38
    x = np.arange(len(levels))
    for i, mode in enumerate(("sync", "async")):
        vals = [next((r["ok_rate"] or 0 for r in rows if r["users"] == u and r["mode"] == mode), 0) for u in levels]
        ax.bar(x + (i - 0.5) * width, vals, width, label=mode, color=plotting.COLORS[mode])
    ax.set_xticks(x, [str(u) for u in levels])
    ax.set_xlabel("concurrent users")
    ax.set_ylabel("orders answered/s (201/202/402/409)")
    ax.set_title("Throughput")
    ax.legend()
    for mode in ("sync", "async"):
        mine = [next((r for r in rows if r["users"] == u and r["mode"] == mode), None) for u in levels]
        ax2.plot(levels, [r["p95_ms"] if r else None for r in mine], "o-", color=plotting.COLORS[mode], label=f"{mode}: response p95")
        ax2.plot(levels, [r["e2e_p95_ms"] if r else None for r in mine], "s--", color=plotting.COLORS[mode], alpha=0.6, label=f"{mode}: accepted->confirmed p95")
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.set_xlabel("concurrent users (log)")
    ax2.set_ylabel("latency (ms, log)")
    ax2.set_title("Latency")
    ax2.legend(fontsize=7)
    fig.suptitle(SYNC_ASYNC_TITLE)
    return plotting.save(fig, path)



def draw_percentiles(summary: Mapping[str, Any], tests: Mapping[str, Any], path: Path) -> Path:
    rows = [
        s for s in (tests.get("PT-02") or {}).get("steps", [])
        if s.get("params", {}).get("loop") == "open" and s.get("load", {}).get("spectrum_ms")
    ]  # fmt: skip
    if not rows:
        raise plotting.NoData("PT-02's open-loop steps did not run")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for s in rows:
        mode = s["params"]["mode"]
        spec = s["load"]["spectrum_ms"]
        ps = [float(k[1:]) for k in spec]
        xs = [1 / (1 - p / 100) for p in ps]
        ax.plot(xs, list(spec.values()), "o-", color=plotting.COLORS.get(mode), label=f"{mode}: response ({s['step']})")
        e2e = (s.get("orders") or {}).get("accepted_to_confirmed_spectrum_ms") or {}
        if e2e:
            ax.plot([1 / (1 - float(k[1:]) / 100) for k in e2e], list(e2e.values()), "s--",
                    color=plotting.COLORS.get(mode), alpha=0.5, label=f"{mode}: accepted->confirmed")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ticks = [0, 50, 90, 99, 99.9, 99.99]
    ax.set_xticks([1 / (1 - t / 100) for t in ticks], [f"p{t:g}" for t in ticks])
    ax.set_xlabel("percentile (HDR histogram; open loop, latency from the scheduled send time)")
    ax.set_ylabel("latency (ms, log)")
    ax.legend(fontsize=8)
    ax.set_title(PERCENTILES_TITLE)
    return plotting.save(fig, path)



def section(entry: Mapping[str, Any], charts: Mapping[str, Mapping[str, str]], shown: set[str]) -> list[str]:
    rows = entry.get("rows") or []
    parts = [table(rows, [*COMMON, ("e2e_p50_ms", "accepted->confirmed p50", ",.0f"), ("e2e_p95_ms", "p95", ",.0f"), ("x nginx-fixed", "x nginx", ".4f"), ("x pgbench-order-path", "x pgbench", ".3f"), ("peak_outbox", "peak outbox", ",.0f"), ("peak_lag", "peak lag", ",.0f"), ("drain_seconds", "drain s", ".1f"), *LOADGEN])]
    outcomes = [{"step": r["step"], **{k: v for k, v in (r.get("outcomes") or {}).items()}} for r in rows]
    keys = sorted({k for o in outcomes for k in o if k != "step"})
    if keys:
        parts.append(table(outcomes, [("step", "outcomes of the step's orders", ""), *[(k, k, ",.0f") for k in keys]]))
    parts += [image(charts[SYNC_ASYNC], shown), image(charts[PERCENTILES], shown)]
    return parts


MARKDOWN = [*COMMON[:5], ("p99_ms", "p99 ms", ",.0f"), ("e2e_p50_ms", "accepted->confirmed p50 ms", ",.0f"), ("e2e_p95_ms", "p95 ms", ",.0f"), ("x pgbench-order-path", "x pgbench", ".3f"), ("peak_lag", "peak lag", ",.0f"), ("drain_seconds", "drain s", ".1f"), ("loadgen", "load gen", ""), ("loadgen_cores", "its cores", ".2f"), ("other_cores", "other work, cores", ".2f")]
TEST = PerformanceTest(
    "PT-02", "Synchronous vs asynchronous orders", run, analyse,
    {SYNC_ASYNC: Chart(SYNC_ASYNC_TITLE, draw_sync_async), PERCENTILES: Chart(PERCENTILES_TITLE, draw_percentiles)},
    section, MARKDOWN, needs_orders=True,
)  # fmt: skip
