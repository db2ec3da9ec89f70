"""The nine charts of the test plan, drawn from a run's summary as PNG files.

1. concurrency vs throughput, with the saturation point (PT-01)
2. sync vs async: throughput bars and latency lines (PT-02)
3. instances vs throughput, with ideal scaling and the models (PT-03)
4. end-to-end event latency: per-stage breakdown, and consumer lag over time (PT-02, PT-04)
5. resource heatmap per component (every step of every test)
6. percentile distribution per strategy (PT-02 open loop: sync vs async)
7. burst response curve, with recovery and queue depth (PT-05)
8. partitions vs throughput, with the message distribution (PT-04)
9. tracing's cost: throughput and CPU per order, tracing off vs on, every repeat (PT-06)

A chart whose test did not run (or measured nothing) is not drawn; ``draw_all`` says why.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

CHARTS = {
    "1-concurrency-throughput": "Concurrency vs throughput (PT-01)",
    "2-sync-vs-async": "Sync vs async orders (PT-02)",
    "3-scaling": "Instances vs throughput (PT-03)",
    "4-event-latency": "End-to-end event latency and consumer lag (PT-02, PT-04)",
    "5-resource-heatmap": "CPU per component, every step",
    "6-percentiles": "Latency percentile distribution per strategy (PT-02, open loop)",
    "7-burst": "Burst response and recovery (PT-05)",
    "8-partitions": "Partitions vs throughput (PT-04)",
    "9-tracing-cost": "Tracing cost: off vs the default sample ratio (PT-06)",
}
COLORS = {"sync": "#c0392b", "async": "#2471a3"}
STAGE_COLORS = {"publish": "#7fb3d5", "reserve": "#f5b041", "pay": "#58d68d", "confirm": "#af7ac5"}


class NoData(Exception):
    """The test behind a chart did not measure what it needs."""


def _rows(summary: Mapping[str, Any], test: str) -> list[dict[str, Any]]:
    entry = summary.get("tests", {}).get(test) or {}
    rows = entry.get("rows") or []
    if not rows:
        raise NoData(entry.get("skipped") or f"{test} did not run")
    return list(rows)


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def concurrency(summary: Mapping[str, Any], path: Path) -> Path:
    rows = _rows(summary, "PT-01")
    entry = summary["tests"]["PT-01"]
    users = [r["users"] for r in rows]
    rate = [r["ok_rate"] or 0 for r in rows]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(users, rate, "o-", color="#2471a3", label="measured throughput")
    ideal = entry.get("ideal") or []
    if ideal:
        ax.plot([n for n, _ in ideal], [x for _, x in ideal], "--", color="grey", label="linear from the first point")
    sat = entry.get("saturation")
    if sat:
        ax.axvline(sat["users"], color="#c0392b", ls=":", label=f"saturation: ~{sat['users']:.0f} users ({sat['ok_rate']:,.0f} req/s at best)")
        ax.axhline(sat["ok_rate"], color="#c0392b", ls=":", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("concurrent users (log)")
    ax.set_ylabel("successful requests/s")
    ax.set_ylim(0, max(rate) * 1.3 if max(rate) > 0 else 1)
    ax2 = ax.twinx()
    ax2.plot(users, [r["p95_ms"] or 0 for r in rows], "s--", color="#d68910", label="p95 latency")
    ax2.set_ylabel("p95 latency (ms)")
    lines = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax.legend(lines, [str(h.get_label()) for h in lines], loc="upper left", fontsize=8)
    ax.set_title(CHARTS["1-concurrency-throughput"])
    return _save(fig, path)


def sync_async(summary: Mapping[str, Any], path: Path) -> Path:
    rows = [r for r in _rows(summary, "PT-02") if r.get("loop") == "closed"]
    if not rows:
        raise NoData("PT-02 ran no closed-loop step")
    levels = sorted({r["users"] for r in rows})
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.5))
    width = 0.38
    x = np.arange(len(levels))
    for i, mode in enumerate(("sync", "async")):
        vals = [next((r["ok_rate"] or 0 for r in rows if r["users"] == u and r["mode"] == mode), 0) for u in levels]
        ax.bar(x + (i - 0.5) * width, vals, width, label=mode, color=COLORS[mode])
    ax.set_xticks(x, [str(u) for u in levels])
    ax.set_xlabel("concurrent users")
    ax.set_ylabel("orders answered/s (201/202/402/409)")
    ax.set_title("Throughput")
    ax.legend()
    for mode in ("sync", "async"):
        mine = [next((r for r in rows if r["users"] == u and r["mode"] == mode), None) for u in levels]
        ax2.plot(levels, [r["p95_ms"] if r else None for r in mine], "o-", color=COLORS[mode], label=f"{mode}: response p95")
        ax2.plot(levels, [r["e2e_p95_ms"] if r else None for r in mine], "s--", color=COLORS[mode], alpha=0.6, label=f"{mode}: accepted->confirmed p95")
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.set_xlabel("concurrent users (log)")
    ax2.set_ylabel("latency (ms, log)")
    ax2.set_title("Latency")
    ax2.legend(fontsize=7)
    fig.suptitle(CHARTS["2-sync-vs-async"])
    return _save(fig, path)


def scaling(summary: Mapping[str, Any], path: Path) -> Path:
    rows = _rows(summary, "PT-03")
    entry = summary["tests"]["PT-03"]
    n = [r["instances"] for r in rows]
    x = [r["ok_rate"] or 0 for r in rows]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(n, x, "o-", color="#2471a3", label="measured here (2 cores)", zorder=3)
    ideal = entry.get("ideal") or []
    if ideal:
        ax.plot([a for a, _ in ideal], [b for _, b in ideal], "--", color="grey", label="ideal (linear)")
    usl = entry.get("usl")
    if usl:
        grid = np.linspace(1, max(n), 50)
        lam, s, k = usl["lambda"], usl["sigma"], usl["kappa"]
        ax.plot(grid, lam * grid / (1 + s * (grid - 1) + k * grid * (grid - 1)), ":", color="#884ea0",
                label=f"USL fit here: sigma={s:.2f} kappa={k:.3f} (error {usl['mape']:.0%})")
    demand = entry.get("demand")
    if demand:
        pred = demand["predict"]
        ax.errorbar(
            [p["instances"] for p in pred], [p["throughput"] for p in pred],
            yerr=[[p["throughput"] - p["low"] for p in pred], [p["high"] - p["throughput"] for p in pred]],
            fmt="D", color="#28b463", capsize=4,
            label=f"demand model, a core per instance (error here {demand['mape_here']:.0%})",
        )  # fmt: skip
    ax.set_xlabel("instances of each service")
    ax.set_ylabel("successful requests/s")
    ax.set_xticks(sorted(set(n) | {1, 2, 4, 8}))
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title(CHARTS["3-scaling"])
    return _save(fig, path)


def event_latency(summary: Mapping[str, Any], path: Path) -> Path:
    bars: list[tuple[str, dict[str, Any]]] = []
    for test in ("PT-02", "PT-04"):
        for r in (summary.get("tests", {}).get(test) or {}).get("rows") or []:
            stages = r.get("stages_p50_ms") or {}
            if (test == "PT-04" or r.get("mode") == "async") and any(stages.values()):
                bars.append((f"{test} {r['step']}", stages))
    lag_rows = (summary.get("tests", {}).get("PT-04") or {}).get("rows") or []
    if not bars and not lag_rows:
        raise NoData("no async orders were measured (PT-02, PT-04)")
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.8))
    if bars:
        bottom = np.zeros(len(bars))
        for stage, color in STAGE_COLORS.items():
            vals = np.array([b[1].get(stage) or 0.0 for b in bars])
            ax.barh([b[0] for b in bars], vals, left=bottom, color=color, label=stage)
            bottom += vals
        ax.set_xlabel("median time in each stage (ms), accepted -> confirmed")
        ax.legend(fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
    else:
        ax.text(0.5, 0.5, "no per-stage timestamps", ha="center", transform=ax.transAxes)
    ax.set_title("Per-stage breakdown")
    for r in lag_rows:
        series = r.get("lag_series") or []
        if series:
            ax2.plot([t for t, _ in series], [v for _, v in series], label=f"{r['partitions']} partition(s)")
    ax2.set_xlabel("seconds into the step")
    ax2.set_ylabel("consumer lag (messages, all groups)")
    ax2.set_title("Consumer lag (PT-04)")
    if lag_rows:
        ax2.legend(fontsize=8)
    fig.suptitle(CHARTS["4-event-latency"])
    return _save(fig, path)


def resource_heatmap(summary: Mapping[str, Any], path: Path) -> Path:
    hm = summary.get("heatmap") or {}
    cols = hm.get("columns") or []
    cpu = hm.get("cpu") or {}
    if not cols or not cpu:
        raise NoData("no step was sampled")
    names = sorted(cpu, key=lambda k: -np.nanmean([v if v is not None else np.nan for v in cpu[k]] or [0]))
    data = np.array([[v if v is not None else np.nan for v in cpu[n]] for n in names], dtype=float)
    fig, ax = plt.subplots(figsize=(max(8, 0.55 * len(cols) + 3), 0.38 * len(names) + 2.5))
    im = ax.imshow(data, aspect="auto", cmap="YlOrRd", vmin=0, vmax=max(1.0, float(np.nanmax(data))))
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xticks(range(len(cols)), cols, rotation=60, ha="right", fontsize=7)
    for i in range(len(names)):
        for j in range(len(cols)):
            if not np.isnan(data[i, j]) and data[i, j] >= 0.05:
                ax.text(j, i, f"{data[i, j]:.2f}", ha="center", va="center", fontsize=6)
    fig.colorbar(im, ax=ax, label="mean cores while the load ran")
    ax.set_title(CHARTS["5-resource-heatmap"])
    return _save(fig, path)


def percentiles(summary: Mapping[str, Any], tests: Mapping[str, Any], path: Path) -> Path:
    rows = [
        s for s in (tests.get("PT-02") or {}).get("steps", [])
        if s.get("params", {}).get("loop") == "open" and s.get("load", {}).get("spectrum_ms")
    ]  # fmt: skip
    if not rows:
        raise NoData("PT-02's open-loop steps did not run")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for s in rows:
        mode = s["params"]["mode"]
        spec = s["load"]["spectrum_ms"]
        ps = [float(k[1:]) for k in spec]
        xs = [1 / (1 - p / 100) for p in ps]
        ax.plot(xs, list(spec.values()), "o-", color=COLORS.get(mode), label=f"{mode}: response ({s['step']})")
        e2e = (s.get("orders") or {}).get("accepted_to_confirmed_spectrum_ms") or {}
        if e2e:
            ax.plot([1 / (1 - float(k[1:]) / 100) for k in e2e], list(e2e.values()), "s--",
                    color=COLORS.get(mode), alpha=0.5, label=f"{mode}: accepted->confirmed")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ticks = [0, 50, 90, 99, 99.9, 99.99]
    ax.set_xticks([1 / (1 - t / 100) for t in ticks], [f"p{t:g}" for t in ticks])
    ax.set_xlabel("percentile (HDR histogram; open loop, latency from the scheduled send time)")
    ax.set_ylabel("latency (ms, log)")
    ax.legend(fontsize=8)
    ax.set_title(CHARTS["6-percentiles"])
    return _save(fig, path)


def burst(summary: Mapping[str, Any], path: Path) -> Path:
    entry = summary.get("tests", {}).get("PT-05") or {}
    timeline = entry.get("timeline") or []
    if not timeline:
        raise NoData(entry.get("skipped") or "PT-05 did not run")
    t = [e["t"] for e in timeline]
    fig, (ax, ax3) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True)
    ax.plot(t, [e["requests"] for e in timeline], color="#2471a3", label="requests/s")
    ax.plot(t, [e["failures"] for e in timeline], color="#c0392b", label="failures/s")
    ax.set_ylabel("per second")
    ax.axvspan(entry.get("base_end_s", 0), entry.get("peak_end_s", 0), color="#fdebd0", alpha=0.6, label="peak users")
    ax2 = ax.twinx()
    ax2.plot(t, [e.get("p95") for e in timeline], color="#d68910", label="p95 latency (ms)")
    ax2.set_ylabel("p95 latency (ms)")
    if entry.get("threshold_ms"):
        ax2.axhline(entry["threshold_ms"], color="#d68910", ls=":", lw=1)
    rec = entry.get("recovery_seconds")
    if rec is not None:
        ax.axvline(entry["peak_end_s"] + rec, color="#28b463", ls="--", label=f"recovered after {rec:.0f}s")
    lines = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax.legend(lines, [str(h.get_label()) for h in lines], fontsize=7, loc="upper left")
    backlog = entry.get("backlog") or []
    if backlog:
        ax3.plot([b[0] for b in backlog], [b[1] for b in backlog], label="outbox rows not yet published")
        ax3.plot([b[0] for b in backlog], [b[2] for b in backlog], label="consumer lag (messages)")
        ax3.legend(fontsize=7)
    ax3.axvspan(entry.get("base_end_s", 0), entry.get("peak_end_s", 0), color="#fdebd0", alpha=0.6)
    ax3.set_ylabel("queue depth")
    ax3.set_xlabel("seconds")
    fig.suptitle(CHARTS["7-burst"])
    return _save(fig, path)


def partitions(summary: Mapping[str, Any], path: Path) -> Path:
    rows = _rows(summary, "PT-04")
    p = [r["partitions"] for r in rows]
    fig, (ax, ax3) = plt.subplots(1, 2, figsize=(12, 4.5))
    ax.plot(p, [r.get("processed_per_s") or 0 for r in rows], "o-", label="orders processed/s (to terminal)")
    ax.plot(p, [r.get("messages_per_s") or 0 for r in rows], "s-", label="saga messages/s")
    ax.set_xlabel("partitions per topic")
    ax.set_ylabel("per second")
    ax.set_xticks(p)
    ax2 = ax.twinx()
    ax2.plot(p, [r.get("kafka_ceiling") or 0 for r in rows], "^--", color="grey", label="Kafka ProducerPerformance (ceiling)")
    ax2.set_ylabel("ceiling msg/s")
    lines = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax.legend(lines, [str(h.get_label()) for h in lines], fontsize=7, loc="upper left")
    ax.set_title("Throughput")
    width = 0.8 / max(len(rows), 1)
    for i, r in enumerate(rows):
        dist = r.get("order_events_per_partition") or {}
        if dist:
            total = sum(dist.values()) or 1
            ax3.bar(np.arange(len(dist)) + i * width, [v / total for v in dist.values()], width,
                    label=f"{r['partitions']} partition(s)")
    ax3.set_xlabel("partition")
    ax3.set_ylabel("share of order-events messages")
    ax3.set_title("Message distribution")
    ax3.legend(fontsize=7)
    fig.suptitle(CHARTS["8-partitions"])
    return _save(fig, path)


def tracing_cost(summary: Mapping[str, Any], path: Path) -> Path:
    rows = _rows(summary, "PT-06")
    entry = summary["tests"]["PT-06"]
    arms = entry.get("arms") or []
    if len(arms) < 2:
        raise NoData("PT-06 measured only one setting")
    labels = [a["tracing"] for a in arms]
    names = ["tracing off" if t == "off" else f"tracing at {t}" for t in labels]
    colors = ["#7f8c8d" if t == "off" else "#2471a3" for t in labels]
    x = np.arange(len(arms))
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.5))
    ax.bar(x, [a["ok_rate"] or 0 for a in arms], 0.55, color=colors, alpha=0.8, label="median")
    for i, t in enumerate(labels):
        mine = [r["ok_rate"] or 0 for r in rows if r["tracing"] == t]
        ax.plot([i] * len(mine), mine, "o", color="black", ms=4, label="each repeat" if i == 0 else None)
    cost = entry.get("cost") or {}
    if cost.get("throughput_ratio") is not None:
        ax.set_title(f"Accepted orders/s: on/off = {cost['throughput_ratio']:.2f} (medians), "
                     f"{cost.get('paired_median') or float('nan'):.2f} (per repeat)", fontsize=9)  # fmt: skip
    ax.set_xticks(x, names)
    ax.set_ylabel("async orders accepted/s (closed loop)")
    ax.legend(fontsize=8, loc="lower right")
    groups = list((arms[0].get("ms_per_order") or {}).keys())
    palette = plt.get_cmap("tab10")
    bottom = np.zeros(len(arms))
    for i, group in enumerate(groups):
        vals = np.array([(a.get("ms_per_order") or {}).get(group) or 0.0 for a in arms])
        ax2.bar(x, vals, 0.55, bottom=bottom, color=palette(i), label=group)
        bottom += vals
    ax2.set_xticks(x, names)
    ax2.set_ylabel("CPU ms per accepted order (medians)")
    ax2.set_title("CPU per order by component, whole platform", fontsize=9)
    ax2.set_ylim(0, max(bottom.max(), 1e-9) * 1.45)  # room for the legend above the bars
    ax2.legend(fontsize=7, loc="upper left", ncol=3)
    fig.suptitle(CHARTS["9-tracing-cost"])
    return _save(fig, path)


def draw_all(summary: Mapping[str, Any], tests: Mapping[str, Any], folder: Path) -> dict[str, dict[str, str]]:
    """Every chart: {name: {"title", "path"} or {"title", "missing": why}}."""
    folder.mkdir(parents=True, exist_ok=True)
    makers: dict[str, Callable[[Path], Path]] = {
        "1-concurrency-throughput": lambda p: concurrency(summary, p),
        "2-sync-vs-async": lambda p: sync_async(summary, p),
        "3-scaling": lambda p: scaling(summary, p),
        "4-event-latency": lambda p: event_latency(summary, p),
        "5-resource-heatmap": lambda p: resource_heatmap(summary, p),
        "6-percentiles": lambda p: percentiles(summary, tests, p),
        "7-burst": lambda p: burst(summary, p),
        "8-partitions": lambda p: partitions(summary, p),
        "9-tracing-cost": lambda p: tracing_cost(summary, p),
    }
    made: dict[str, dict[str, str]] = {}
    for name, make in makers.items():
        try:
            made[name] = {"title": CHARTS[name], "path": str(make(folder / f"{name}.png"))}
        except NoData as why:
            made[name] = {"title": CHARTS[name], "missing": str(why)}
        except Exception as exc:  # a chart that fails must not lose the run's results
            plt.close("all")
            made[name] = {"title": CHARTS[name], "missing": f"failed: {type(exc).__name__}: {exc}"}
    return made
