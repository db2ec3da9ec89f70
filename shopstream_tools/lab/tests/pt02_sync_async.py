"""PT-02 Synchronous vs asynchronous orders: the same order load answered in sync mode (the saga
runs inside the request) and in async mode (202 at once, the saga over Kafka), closed loop at each
user count, then open loop at half the slower mode's capacity for the latency a user sees."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from shopstream_tools.lab import drivers, plotting, resources
from shopstream_tools.lab.context import Lab
from shopstream_tools.lab.figures import backlog_series, other_cores, step_row
from shopstream_tools.lab.html import COMMON, LOADGEN, image, table
from shopstream_tools.lab.plan import Chart, PerformanceTest
from shopstream_tools.lab.plotting import plt
from shopstream_tools.lab.steps import measure

SYNC_ASYNC, RESOURCES = "2-sync-vs-async", "2-sync-vs-async-resources"
SYNC_ASYNC_TITLE = "Sync vs async orders (PT-02)"
RESOURCES_TITLE = "Sync vs async: CPU and memory per process, per mode and user count (PT-02)"


def run(lab: Lab) -> list[dict[str, Any]]:
    p = lab.profile
    done = []
    capacity: dict[str, float] = {}
    for users in p.pt02_users:
        for mode in ("sync", "async"):
            drive = drivers.closed_loop(
                lab, "PT-02", f"PT-02-{mode}-u{users}", weights={"place_order": 1}, users=users,
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



def sync_async_reading(summary: Mapping[str, Any]) -> str | None:
    rows = [r for r in (summary.get("tests", {}).get("PT-02") or {}).get("rows") or [] if r.get("loop") == "closed"]
    top = max((r.get("users") or 0 for r in rows), default=0)
    mine = {r.get("mode"): r for r in rows if r.get("users") == top}
    sync, asyn = mine.get("sync"), mine.get("async")
    if not (sync and asyn and sync.get("ok_rate") and asyn.get("ok_rate")):
        return None
    return (f"At {top} users async answers {asyn['ok_rate'] / sync['ok_rate']:.1f}x the orders per second of sync "
            f"({asyn['ok_rate']:,.0f} against {sync['ok_rate']:,.0f}/s), p95 {asyn.get('p95_ms') or 0:,.0f} ms against "
            f"{sync.get('p95_ms') or 0:,.0f} ms; the saga then confirms it p95 {asyn.get('e2e_p95_ms') or 0:,.0f} ms later.")  # fmt: skip


def _by_stage(cores: Mapping[str, float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, value in cores.items():
        if name == "machine":
            continue
        key = {"loadgen": "load generator", "lab": "the lab's sampling"}.get(name) or resources.stage(name)
        out[key] = out.get(key, 0.0) + value
    other = other_cores(cores)
    if other is not None:
        out["other work on the machine"] = other
    return out


def draw_resources(summary: Mapping[str, Any], tests: Mapping[str, Any], path: Path) -> Path:
    rows = [r for r in plotting.rows_of(summary, "PT-02") if r.get("loop") == "closed" and r.get("cpu_cores")]
    if not rows:
        raise plotting.NoData("PT-02 sampled no closed-loop step")
    labels = [f"{r['mode']}\n{r['users']} users" for r in rows]
    machine = summary.get("machine_cores") or 2
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(13, 5))
    stacks = [_by_stage(r["cpu_cores"]) for r in rows]
    names = sorted({k for st in stacks for k in st}, key=lambda k: -sum(st.get(k, 0.0) for st in stacks))
    bottom = np.zeros(len(rows))
    palette = plt.get_cmap("tab20")
    for i, name in enumerate(names):
        vals = np.array([st.get(name, 0.0) for st in stacks])
        ax.bar(labels, vals, bottom=bottom, color=palette(i % 20), label=name)
        bottom += vals
    ax.axhline(machine, color="#c0392b", ls="--", lw=1.2, label=f"ceiling: the machine's {machine:g} cores")
    ax.set_ylabel("mean cores while the load ran")
    ax.set_ylim(0, max(machine, float(bottom.max())) * 1.35)
    ax.set_title("CPU per process", fontsize=10)
    ax.legend(fontsize=6, ncol=3, loc="upper left")
    ax.tick_params(axis="x", labelsize=8)
    heat = summary.get("heatmap") or {}
    cols, mem = heat.get("columns") or [], heat.get("pss_mb") or {}
    mine = [cols.index(f"PT-02 {r['step']}") if f"PT-02 {r['step']}" in cols else None for r in rows]
    if mem and any(i is not None for i in mine):
        big = sorted(mem, key=lambda k: -max((v for v in mem[k] if v is not None), default=0.0))[:10]
        bottom = np.zeros(len(rows))
        for i, name in enumerate(big):
            vals = np.array([(mem[name][j] or 0.0) if j is not None else 0.0 for j in mine])
            ax2.bar(labels, vals, bottom=bottom, color=palette(i % 20), label=name)
            bottom += vals
        ax2.legend(fontsize=6, ncol=2, loc="upper left")
        ax2.set_ylim(0, float(bottom.max()) * 1.4 or 1)
    else:
        ax2.text(0.5, 0.5, "no memory samples", ha="center", transform=ax2.transAxes)
    ax2.set_ylabel("peak PSS (MB), the 10 largest components")
    ax2.set_title("Memory per process", fontsize=10)
    ax2.tick_params(axis="x", labelsize=8)
    fig.suptitle(RESOURCES_TITLE)
    return plotting.save(fig, path)


def resources_reading(summary: Mapping[str, Any]) -> str | None:
    rows = [r for r in (summary.get("tests", {}).get("PT-02") or {}).get("rows") or [] if r.get("loop") == "closed" and r.get("cpu_cores")]
    if not rows:
        return None
    top = max(r.get("users") or 0 for r in rows)
    mine = {r["mode"]: r for r in rows if r.get("users") == top}
    if not {"sync", "async"} <= set(mine):
        return None
    used = {m: sum(v for k, v in _by_stage(r["cpu_cores"]).items() if k not in ("load generator", "the lab's sampling", "other work on the machine")) for m, r in mine.items()}
    machine = summary.get("machine_cores") or 2
    return (f"At {top} users the platform keeps {used['sync']:.2f} of the {machine:g} cores busy for {mine['sync'].get('ok_rate') or 0:,.0f} "
            f"sync orders/s, and {used['async']:.2f} for {mine['async'].get('ok_rate') or 0:,.0f} async orders/s.")  # fmt: skip


def section(entry: Mapping[str, Any], charts: Mapping[str, Mapping[str, str]], shown: set[str]) -> list[str]:
    rows = entry.get("rows") or []
    parts = [table(rows, [*COMMON, ("e2e_p50_ms", "accepted->confirmed p50", ",.0f"), ("e2e_p95_ms", "p95", ",.0f"), ("x nginx-fixed", "x nginx", ".4f"), ("x pgbench-order-path", "x pgbench", ".3f"), ("peak_outbox", "peak outbox", ",.0f"), ("peak_lag", "peak lag", ",.0f"), ("drain_seconds", "drain s", ".1f"), *LOADGEN])]
    outcomes = [{"step": r["step"], **{k: v for k, v in (r.get("outcomes") or {}).items()}} for r in rows]
    keys = sorted({k for o in outcomes for k in o if k != "step"})
    if keys:
        parts.append(table(outcomes, [("step", "outcomes of the step's orders", ""), *[(k, k, ",.0f") for k in keys]]))
    parts += [image(charts[c], shown) for c in (SYNC_ASYNC, RESOURCES, "6-percentiles", "10-cost-per-stage") if c in charts]
    return parts


MARKDOWN = [*COMMON[:5], ("p99_ms", "p99 ms", ",.0f"), ("e2e_p50_ms", "accepted->confirmed p50 ms", ",.0f"), ("e2e_p95_ms", "p95 ms", ",.0f"), ("x pgbench-order-path", "x pgbench", ".3f"), ("peak_lag", "peak lag", ",.0f"), ("drain_seconds", "drain s", ".1f"), ("loadgen", "load gen", ""), ("loadgen_cores", "its cores", ".2f"), ("other_cores", "other work, cores", ".2f")]
TEST = PerformanceTest(
    "PT-02", "Synchronous vs asynchronous orders", run, analyse,
    {SYNC_ASYNC: Chart(SYNC_ASYNC_TITLE, draw_sync_async, sync_async_reading), RESOURCES: Chart(RESOURCES_TITLE, draw_resources, resources_reading)},
    section, MARKDOWN, needs_orders=True,
    slides=(SYNC_ASYNC, "6-percentiles"),  # what each mode keeps busy stays in the report only
)  # fmt: skip
