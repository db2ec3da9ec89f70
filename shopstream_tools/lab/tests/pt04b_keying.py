"""PT-04b Partitioning strategies: PT-04's async order load on the default partition count, with the
order service keying its messages by order id, customer id and lead product in turn
(``order_partition_strategy``), in rounds whose order alternates; for each topic of the saga how evenly the step's messages spread
over the partitions (max/mean, coefficient of variation), orders processed per second, accepted ->
confirmed latency, and per-key order: the step's messages read back from Kafka, every order's on
one partition and in its version order.

order-events and payment-events follow the strategy; stock-events (the product service's answers)
are keyed by order id whatever the strategy."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from shopstream_tools.lab import drivers, orders, plotting, spread, stats, testbed
from shopstream_tools.lab.context import Lab
from shopstream_tools.lab.figures import SAGA_TOPICS, step_row
from shopstream_tools.lab.html import LOADGEN, image, table
from shopstream_tools.lab.plan import Chart, PerformanceTest
from shopstream_tools.lab.plotting import plt
from shopstream_tools.lab.steps import measure

CHART = "13-keying"
CHART_TITLE = "Partitioning strategies: balance, throughput, latency, medians of the rounds (PT-04b)"


def _drive(lab: Lab, name: str) -> Any:
    p = lab.profile
    if p.pt04_users:
        return drivers.closed_loop(lab, "PT-04", name, weights={"place_order": 1}, users=p.pt04_users,
                                   spawn_rate=max(p.pt04_users, 1), seconds=p.pt04_seconds, mode="async")  # fmt: skip
    return drivers.vegeta(lab, name, "async", p.pt04_rate, p.pt04_seconds)


def _read_back(lab: Lab, topic: str, start: Mapping[int, int], timeout: float) -> dict[str, Any]:
    """The per-key order check of the step's messages on ``topic``; not kept unless every one of
    them was read."""
    end = spread.high_watermarks(lab.settings, topic)
    check = spread.key_order(spread.read_between(lab.settings, topic, start, end, timeout))
    check["expected"] = sum(max(0, e - start.get(p, 0)) for p, e in end.items())
    check["kept"] = check["kept"] and check["messages"] == check["expected"]
    return check


def run(lab: Lab) -> list[dict[str, Any]]:
    p = lab.profile
    original = lab.settings
    done = []
    try:
        for rnd, strategy in ((r, s) for r, order in stats.rounds_of(p.pt04b_strategies, p.strategy_rounds) for s in order):
            lab.check_stop()
            lab.settings = testbed.set_order_partitioning(lab.settings, strategy, lab.log)
            start = {t: spread.high_watermarks(lab.settings, t) for t in SAGA_TOPICS}
            params = {"strategy": strategy, "round": rnd, "partitions": len(start["order-events"]),
                      **({"users": p.pt04_users} if p.pt04_users else {"rate": p.pt04_rate})}  # fmt: skip
            drive = _drive(lab, f"PT-04b-{strategy}-r{rnd}")
            record = measure(lab, "PT-04b", f"keyed by {strategy}, round {rnd}", params, drive, p.pt04_seconds)
            drivers.attach_orders(lab, record)
            since = datetime.fromisoformat(record["started_at"])
            completed, span = asyncio.run(orders.completed_per_second(lab.settings, since))
            record["processed"] = {"orders": completed, "seconds": span, "rate": completed / span if span else None}
            # a plan-length step carries a few hundred thousand messages: minutes to read, not seconds
            timeout = max(60.0, p.pt04_seconds)
            record["key_order"] = {t: _read_back(lab, t, start[t], timeout) for t in SAGA_TOPICS}
            done.append(record)
    finally:
        if not lab.stop.is_set():
            lab.settings = testbed.set_order_partitioning(lab.settings, original.order_partition_strategy, lab.log)
    return done


def analyse(steps: list[dict[str, Any]], ceil: Mapping[str, float | None], machine_cores: float) -> dict[str, Any]:
    rows = []
    for s in steps:
        row = step_row(s, ceil, [])
        messages = s.get("partition_messages") or {}
        row["per_partition"] = {t: [messages.get(t, {})[p] for p in sorted(messages.get(t, {}), key=int)] for t in SAGA_TOPICS}
        for topic in SAGA_TOPICS:
            bal = stats.balance([float(v) for v in row["per_partition"][topic]])
            short = topic.split("-")[0]
            row[f"{short}_max_over_mean"] = bal["max_over_mean"]
            row[f"{short}_cv"] = bal["cv"]
        row["processed_per_s"] = (s.get("processed") or {}).get("rate")
        conf = (s.get("orders") or {}).get("accepted_to_confirmed_ms") or {}
        row["e2e_p50_ms"], row["e2e_p99_ms"] = conf.get("p50"), conf.get("p99")
        checks = s.get("key_order") or {}
        row["key_order"] = checks
        row["order_kept"] = bool(checks) and all(c.get("kept") for c in checks.values())
        row["keys"] = (checks.get("order-events") or {}).get("keys")
        rows.append(row)
    return {"rows": rows, "compared": [{**m, "order_kept": all(r["order_kept"] for r in rows if r["strategy"] == m["strategy"])}
                                       for m in stats.medians_by(rows, ("strategy",), COMPARED)]}  # fmt: skip


# the figures compared across strategies: medians over the rounds
COMPARED = ("ok_rate", "processed_per_s", "e2e_p50_ms", "e2e_p99_ms", "keys", "order_max_over_mean", "order_cv",
            "payment_max_over_mean", "payment_cv", "stock_max_over_mean", "stock_cv")  # fmt: skip


def compared(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    entry = summary.get("tests", {}).get("PT-04b") or {}
    rows = entry.get("compared") or []
    if not rows:
        raise plotting.NoData(entry.get("skipped") or "PT-04b did not run")
    return list(rows)


def draw(summary: Mapping[str, Any], tests: Mapping[str, Any], path: Path) -> Path:
    rows = compared(summary)
    names = [r["strategy"] for r in rows]
    x = np.arange(len(rows))
    fig, (ax, ax2, ax3) = plt.subplots(1, 3, figsize=(14, 4.5))
    width = 0.8 / len(SAGA_TOPICS)
    for i, topic in enumerate(SAGA_TOPICS):
        short = topic.split("-")[0]
        ax.bar(x + i * width, [r.get(f"{short}_max_over_mean") or 0 for r in rows], width, label=topic)
    ax.axhline(1.0, color="grey", ls="--", lw=1)
    ax.set_ylim(bottom=0.9)  # busiest / mean is 1 at best
    ax.set_xticks(x + width, names)
    ax.set_ylabel("busiest partition / mean (1 = even)")
    ax.set_title("Balance per topic")
    ax.legend(fontsize=7)
    ax2.bar(x - 0.2, [r.get("ok_rate") or 0 for r in rows], 0.4, label="accepted/s")
    ax2.bar(x + 0.2, [r.get("processed_per_s") or 0 for r in rows], 0.4, label="processed/s")
    ax2.set_xticks(x, names)
    ax2.set_ylabel("orders per second")
    ax2.set_title("Throughput")
    ax2.legend(fontsize=7)
    ax3.bar(x - 0.2, [r.get("e2e_p50_ms") or 0 for r in rows], 0.4, label="p50")
    ax3.bar(x + 0.2, [r.get("e2e_p99_ms") or 0 for r in rows], 0.4, label="p99")
    ax3.set_xticks(x, [f"{n}\n{'order kept' if r.get('order_kept') else 'ORDER BROKEN'}" for n, r in zip(names, rows, strict=True)])
    ax3.set_ylabel("accepted -> confirmed, ms")
    ax3.set_title("End-to-end latency, per-key order")
    ax3.legend(fontsize=7)
    fig.suptitle(CHART_TITLE)
    return plotting.save(fig, path)


def reading(summary: Mapping[str, Any]) -> str | None:
    rows = [r for r in (summary.get("tests", {}).get("PT-04b") or {}).get("compared") or [] if r.get("order_max_over_mean")]
    if not rows:
        return None
    even = min(rows, key=lambda r: r["order_max_over_mean"])
    skew = max(rows, key=lambda r: r["order_max_over_mean"])
    kept = all(r.get("order_kept") for r in rows)
    return (f"Keyed by {even['strategy']}, order-events spread most evenly (busiest partition {even['order_max_over_mean']:.2f}x the mean), "
            f"by {skew['strategy']} least ({skew['order_max_over_mean']:.2f}x); every order's messages stayed on one partition in order: "
            f"{'yes, under every strategy' if kept else 'NO, see the table'}.")  # fmt: skip


COLUMNS = [("step", "step", ""), ("ok_rate", "accepted/s", ",.0f"), ("processed_per_s", "processed/s", ",.0f"),
           ("e2e_p50_ms", "e2e p50 ms", ",.0f"), ("e2e_p99_ms", "e2e p99 ms", ",.0f"), ("keys", "keys", ",.0f"),
           ("order_max_over_mean", "order-events max/mean", ".2f"), ("order_cv", "order-events CV", ".2f"),
           ("payment_max_over_mean", "payment-events max/mean", ".2f"), ("stock_max_over_mean", "stock-events max/mean", ".2f"),
           ("order_kept", "per-key order kept", "")]  # fmt: skip


CHECK_COLUMNS = [("step", "step", ""), ("topic", "topic", ""), ("messages", "messages", ",.0f"), ("orders", "orders", ",.0f"),
                 ("keys", "keys", ",.0f"), ("split", "split", ",.0f"), ("out_of_order", "out of order", ",.0f"), ("kept", "kept", "")]  # fmt: skip


def section(entry: Mapping[str, Any], charts: Mapping[str, Mapping[str, str]], shown: set[str]) -> list[str]:
    rows = entry.get("rows") or []
    checks = [{"step": r["step"], "topic": t, **{k: v for k, v in c.items() if k != "examples"}}
              for r in rows for t, c in (r.get("key_order") or {}).items()]  # fmt: skip
    note = "<p>Per-key order, read back from Kafka (the step's messages): orders on more than one partition, and orders whose version went down.</p>"
    medians = [{**r, "step": f"keyed by {r['strategy']}"} for r in entry.get("compared") or []]
    return [f"<p>Medians over the rounds:</p>{table(medians, [*COLUMNS, ('rounds', 'rounds', ',.0f')])}<p>Every step:</p>",
            table(rows, [*COLUMNS, *LOADGEN]), note, table(checks, CHECK_COLUMNS), image(charts[CHART], shown)]  # fmt: skip


TEST = PerformanceTest("PT-04b", "Partitioning strategies", run, analyse, {CHART: Chart(CHART_TITLE, draw, reading)}, section, COLUMNS, needs_orders=True, on_slides=False)
