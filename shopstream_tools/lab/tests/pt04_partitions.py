"""PT-04 Kafka partitions: the async order load at a fixed rate on 1, 3, 6, 12 partitions per topic,
with Kafka's own producer ceiling on each; orders processed per second, saga messages per second,
how evenly the order events spread, and each stage's time from accepted to confirmed."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from shopstream_tools.lab import ceilings, drivers, orders, plotting, stats, testbed
from shopstream_tools.lab.context import Lab
from shopstream_tools.lab.figures import backlog_series, step_row
from shopstream_tools.lab.html import LOADGEN, image, table
from shopstream_tools.lab.plan import Chart, PerformanceTest
from shopstream_tools.lab.plotting import plt
from shopstream_tools.lab.steps import measure

PARTITIONS, EVENT_LATENCY = "8-partitions", "4-event-latency"
PARTITIONS_TITLE = "Partitions vs throughput (PT-04)"
EVENT_LATENCY_TITLE = "End-to-end event latency and consumer lag (PT-02, PT-04)"
SAGA_TOPICS = ("order-events", "stock-events", "payment-events")


def run(lab: Lab) -> list[dict[str, Any]]:
    p = lab.profile
    done = []
    original = lab.settings
    try:
        for partitions in p.pt04_partitions:
            lab.check_stop()
            lab.settings = testbed.set_partitions(lab.settings, partitions, lab.log)
            ceiling = ceilings.kafka_producer(lab.settings, partitions, p.kafka_records, lab.raw, lab.stop)
            lab.log(f"  kafka producer on {partitions} partition(s): {ceiling['rate']:,.0f} msg/s")
            if lab.order_service and p.pt04_users:  # the plan: users placing async orders
                drive = drivers.closed_loop(
                    lab, "PT-04", f"PT-04-p{partitions}", weights={"place_order": 1}, users=p.pt04_users,
                    spawn_rate=max(p.pt04_users, 1), seconds=p.pt04_seconds, mode="async",
                )  # fmt: skip
            elif lab.order_service:
                drive = drivers.vegeta(lab, f"PT-04-p{partitions}", "async", p.pt04_rate, p.pt04_seconds)
            else:  # without orders, the product events of a catalog change stand in
                drive = drivers.locust(lab, f"PT-04-p{partitions}", weights=lab.read_weights(), users=20, spawn_rate=20, seconds=p.pt04_seconds)
            params = {"partitions": partitions, **({"users": p.pt04_users} if p.pt04_users else {"rate": p.pt04_rate})}
            record = measure(lab, "PT-04", f"partitions={partitions}", params, drive, p.pt04_seconds)
            record["kafka_ceiling"] = ceiling
            drivers.attach_orders(lab, record)
            if lab.order_service:
                since = datetime.fromisoformat(record["started_at"])
                completed, span = asyncio.run(orders.completed_per_second(lab.settings, since))
                record["processed"] = {"orders": completed, "seconds": span, "rate": completed / span if span else None}
            done.append(record)
    finally:
        if not lab.stop.is_set():
            lab.settings = testbed.set_partitions(original, testbed.DEFAULT_PARTITIONS, lab.log)
    return done


def analyse(steps: list[dict[str, Any]], ceil: Mapping[str, float | None], machine_cores: float) -> dict[str, Any]:
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
        row["e2e_p99_ms"] = conf.get("p99")
        series = backlog_series(s)
        row["peak_lag"] = max((lag for _, _, lag in series), default=0)
        row["lag_series"] = [(t, lag) for t, _, lag in series]
        rows.append(row)
    return {"rows": rows}



def draw_partitions(summary: Mapping[str, Any], tests: Mapping[str, Any], path: Path) -> Path:
    rows = plotting.rows_of(summary, "PT-04")
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
    fig.suptitle(PARTITIONS_TITLE)
    return plotting.save(fig, path)



def draw_event_latency(summary: Mapping[str, Any], tests: Mapping[str, Any], path: Path) -> Path:
    bars: list[tuple[str, dict[str, Any]]] = []
    for test in ("PT-02", "PT-04"):
        for r in (summary.get("tests", {}).get(test) or {}).get("rows") or []:
            stages = r.get("stages_p50_ms") or {}
            if (test == "PT-04" or r.get("mode") == "async") and any(stages.values()):
                bars.append((f"{test} {r['step']}", stages))
    lag_rows = (summary.get("tests", {}).get("PT-04") or {}).get("rows") or []
    if not bars and not lag_rows:
        raise plotting.NoData("no async orders were measured (PT-02, PT-04)")
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.8))
    if bars:
        bottom = np.zeros(len(bars))
        for stage, color in plotting.STAGE_COLORS.items():
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
        series = [tuple(p) for p in r.get("lag_series") or []]
        if not series:
            continue
        (line,) = ax2.plot([t for t, _ in series], [v for _, v in series], label=f"{r['partitions']} partition(s)")
        zero = drained_at(r)
        if zero is not None and series[-1][1] > 0:  # the drain saw lag 0 after the last sample
            ax2.plot([series[-1][0], zero], [series[-1][1], 0], ls="--", color=line.get_color())
        if zero is not None:
            ax2.plot([zero], [0], "o", color=line.get_color(), ms=5)
    ax2.set_xlabel("seconds into the step")
    ax2.set_ylabel("consumer lag (messages, all groups)")
    ax2.set_ylim(bottom=0)
    ax2.set_title("Consumer lag until back to zero (dot: drained) (PT-04)", fontsize=10)
    if lag_rows:
        ax2.legend(fontsize=8)
    fig.suptitle(EVENT_LATENCY_TITLE)
    return plotting.save(fig, path)



def drained_at(row: Mapping[str, Any]) -> float | None:
    """Seconds into the step when nothing was in flight any more: the load's end plus the drain (a
    summary from before load_seconds was kept: the last sample, taken as the drain ended)."""
    if row.get("drain_seconds") is None:
        return None
    if row.get("load_seconds") is not None:
        return float(row["load_seconds"]) + float(row["drain_seconds"])
    series = row.get("lag_series") or []
    return float(series[-1][0]) if series else None


def event_latency_reading(summary: Mapping[str, Any]) -> str | None:
    rows = [r for r in (summary.get("tests", {}).get("PT-04") or {}).get("rows") or [] if r.get("e2e_p50_ms")]
    if not rows:
        return None
    first = rows[0]
    stages = first.get("stages_p50_ms") or {}
    slow = max(stages, key=lambda k: stages[k] or 0) if stages else None
    best = min(rows, key=lambda r: r["e2e_p50_ms"])
    text = f"On {first['partitions']} partition(s) an order is confirmed p50 {first['e2e_p50_ms']:,.0f} ms after acceptance"
    if slow:
        text += f", most of it in '{slow}' ({stages[slow]:,.0f} ms)"
    text += f"; on {best['partitions']}: {best['e2e_p50_ms']:,.0f} ms"
    if best.get("drain_seconds") is not None:
        text += f", lag back to zero {best['drain_seconds']:.1f} s after the load"
    return text + "."


def partitions_reading(summary: Mapping[str, Any]) -> str | None:
    rows = [r for r in (summary.get("tests", {}).get("PT-04") or {}).get("rows") or [] if r.get("processed_per_s")]
    if len(rows) < 2:
        return None
    a, b = rows[0], rows[-1]
    use = max((r.get("x kafka-producer") or 0 for r in rows), default=0)
    return (f"From {a['partitions']} to {b['partitions']} partitions orders processed go from {a['processed_per_s']:,.0f} "
            f"to {b['processed_per_s']:,.0f}/s at the same offered rate; the saga's messages never reached {use:.1%} of what "
            "Kafka alone carries on this machine.")  # fmt: skip


def section(entry: Mapping[str, Any], charts: Mapping[str, Mapping[str, str]], shown: set[str]) -> list[str]:
    rows = entry.get("rows") or []
    parts = [table(rows, [("step", "step", ""), ("ok_rate", "accepted/s", ",.0f"), ("processed_per_s", "processed/s", ",.0f"), ("messages_per_s", "saga msg/s", ",.0f"), ("kafka_ceiling", "Kafka ceiling msg/s", ",.0f"), ("x kafka-producer", "x Kafka", ".3f"), ("e2e_p50_ms", "e2e p50 ms", ",.0f"), ("e2e_p95_ms", "e2e p95 ms", ",.0f"), ("peak_lag", "peak lag", ",.0f"), ("drain_seconds", "drain s", ".1f"), *LOADGEN])]
    bal = [{"step": r["step"], **{k: v for k, v in (r.get("balance") or {}).items()}} for r in rows]
    parts.append(table(bal, [("step", "order-events balance", ""), ("partitions", "partitions", ",.0f"), ("max_over_mean", "max/mean", ".2f"), ("cv", "coeff. of variation", ".2f")]))
    return [*parts, image(charts[PARTITIONS], shown), image(charts[EVENT_LATENCY], shown)]


MARKDOWN = [("step", "step", ""), ("ok_rate", "accepted/s", ",.0f"), ("processed_per_s", "processed/s", ",.0f"), ("messages_per_s", "saga msg/s", ",.0f"), ("kafka_ceiling", "Kafka ceiling msg/s", ",.0f"), ("x kafka-producer", "x Kafka", ".4f"), ("e2e_p50_ms", "e2e p50 ms", ",.0f"), ("e2e_p95_ms", "e2e p95 ms", ",.0f"), ("peak_lag", "peak lag", ",.0f"), ("drain_seconds", "drain s", ".1f")]
TEST = PerformanceTest(
    "PT-04", "Kafka partitions", run, analyse,
    {EVENT_LATENCY: Chart(EVENT_LATENCY_TITLE, draw_event_latency, event_latency_reading), PARTITIONS: Chart(PARTITIONS_TITLE, draw_partitions, partitions_reading)},
    section, MARKDOWN, slides=(PARTITIONS, EVENT_LATENCY),
)  # fmt: skip
