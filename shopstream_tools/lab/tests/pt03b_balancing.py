"""PT-03b Gateway balancing: PT-03's closed-loop mix at 2 and 4 instances of each service under each
of the gateway's strategies (``gateway_balancing``: least connections, round robin, random with two
choices, hash by customer), one after the other in the same run, in rounds whose order alternates;
throughput, p99 and how evenly the instances were given the requests (their own request counters:
max/mean, coefficient of variation), medians over the rounds."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from shopstream_tools.lab import drivers, plotting, spread, stats, testbed
from shopstream_tools.lab.context import Lab
from shopstream_tools.lab.figures import step_row
from shopstream_tools.lab.html import LOADGEN, image, table
from shopstream_tools.lab.plan import Chart, PerformanceTest
from shopstream_tools.lab.plotting import plt
from shopstream_tools.lab.steps import measure

CHART = "12-balancing"
CHART_TITLE = "Gateway balancing strategies at 2 and 4 instances, medians of the rounds (PT-03b)"
COLORS = {"least_conn": "#2471a3", "round_robin": "#28b463", "random_two": "#f5b041", "customer_hash": "#884ea0"}


def run(lab: Lab) -> list[dict[str, Any]]:
    p = lab.profile
    users = p.pt03b_users or p.pt03_users
    weights = {**lab.read_weights(), **({"place_order": 1} if lab.order_service else {})}
    original = lab.settings
    scaled = testbed.services(lab.settings)
    done = []
    try:
        for n in p.pt03b_instances:
            lab.check_stop()
            for service in scaled:
                testbed.scale(lab.settings, service, n)
            for rnd, strategies in stats.rounds_of(p.pt03b_strategies, p.strategy_rounds):
                for strategy in strategies:
                    lab.check_stop()
                    lab.settings = testbed.set_balancing(lab.settings, strategy)
                    before = spread.instance_requests(lab.settings)
                    drive = drivers.locust(
                        lab, f"PT-03b-n{n}-{strategy}-r{rnd}", weights=weights, users=users,
                        spawn_rate=max(users, 1), seconds=p.pt03b_seconds, think_seconds=0.0,
                    )  # fmt: skip
                    params = {"instances": n, "strategy": strategy, "round": rnd, "users": users}
                    record = measure(lab, "PT-03b", f"{strategy}, {n} instances, round {rnd}", params, drive, p.pt03b_seconds)
                    record["instance_requests"] = spread.served(before, spread.instance_requests(lab.settings))
                    done.append(record)
    finally:
        if not lab.stop.is_set():
            lab.settings = testbed.set_balancing(lab.settings, original.gateway_balancing)
            for service in scaled:
                testbed.scale(lab.settings, service, int(getattr(original, f"{service}_instances", 1)))
    return done


def analyse(steps: list[dict[str, Any]], ceil: Mapping[str, float | None], machine_cores: float) -> dict[str, Any]:
    rows = []
    for s in steps:
        row = step_row(s, ceil, [])
        served = spread.by_service(s.get("instance_requests") or {})
        row["instance_requests"] = served
        for service, counts in served.items():
            bal = stats.balance(list(counts.values()))
            row[f"{service}_max_over_mean"] = bal["max_over_mean"]
            row[f"{service}_cv"] = bal["cv"]
        rows.append(row)
    return {"rows": rows, "compared": stats.medians_by(rows, ("instances", "strategy"), COMPARED)}


# the figures compared across strategies: medians over the rounds
COMPARED = ("ok_rate", "p50_ms", "p99_ms", "product_max_over_mean", "product_cv", "order_max_over_mean", "order_cv")


def compared(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    entry = summary.get("tests", {}).get("PT-03b") or {}
    rows = entry.get("compared") or []
    if not rows:
        raise plotting.NoData(entry.get("skipped") or "PT-03b did not run")
    return list(rows)


def draw(summary: Mapping[str, Any], tests: Mapping[str, Any], path: Path) -> Path:
    rows = compared(summary)
    counts = sorted({r["instances"] for r in rows})
    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.5))
    panels = (("ok_rate", "successful requests/s"), ("p99_ms", "p99 ms"), ("product_max_over_mean", "product instances: busiest / mean"))
    width = 0.8 / max(len(strategies), 1)
    x = np.arange(len(counts))
    for ax, (key, label) in zip(axes, panels, strict=True):
        for i, strategy in enumerate(strategies):
            by_n = {r["instances"]: r for r in rows if r["strategy"] == strategy}
            ax.bar(x + i * width, [(by_n.get(n) or {}).get(key) or 0 for n in counts], width,
                   label=strategy, color=COLORS.get(strategy))  # fmt: skip
        ax.set_xticks(x + width * (len(strategies) - 1) / 2, [f"{n} instances" for n in counts])
        ax.set_ylabel(label)
    axes[2].axhline(1.0, color="grey", ls="--", lw=1)
    axes[2].set_ylim(bottom=0.9 if all((r.get("product_max_over_mean") or 1) >= 1 for r in rows) else 0)
    axes[0].legend(fontsize=8)
    fig.suptitle(CHART_TITLE)
    return plotting.save(fig, path)


def reading(summary: Mapping[str, Any]) -> str | None:
    rows = [r for r in (summary.get("tests", {}).get("PT-03b") or {}).get("compared") or [] if r.get("ok_rate")]
    if not rows:
        return None
    parts = []
    for n in sorted({r["instances"] for r in rows}):
        at = [r for r in rows if r["instances"] == n]
        best = max(at, key=lambda r: r["ok_rate"])
        worst = min(at, key=lambda r: r["ok_rate"])
        evenest = min(at, key=lambda r: r.get("product_max_over_mean") or float("inf"))
        parts.append(f"at {n} instances {best['strategy']} served the most ({best['ok_rate']:,.0f}/s, "
                     f"{worst['strategy']} {worst['ok_rate']:,.0f}/s) and {evenest['strategy']} spread the "
                     f"product requests most evenly (busiest {evenest.get('product_max_over_mean') or 0:.2f}x the mean)")  # fmt: skip
    rounds = max(r.get("rounds") or 1 for r in rows)
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + f" (medians of {rounds} round(s))."


COLUMNS = [("step", "step", ""), ("ok_rate", "ok/s", ",.0f"), ("failures", "failures", ",.0f"), ("p50_ms", "p50 ms", ",.1f"),
           ("p99_ms", "p99 ms", ",.1f"), ("product_max_over_mean", "product max/mean", ".2f"), ("product_cv", "product CV", ".2f"),
           ("order_max_over_mean", "order max/mean", ".2f"), ("order_cv", "order CV", ".2f")]  # fmt: skip


def section(entry: Mapping[str, Any], charts: Mapping[str, Mapping[str, str]], shown: set[str]) -> list[str]:
    rows = entry.get("rows") or []
    note = ("<p>Each step changes only the gateway's <code>upstream</code> strategy (nginx reloaded gracefully); "
            "the spread is what each instance's own request counter says it answered during the step.</p>")  # fmt: skip
    medians = [{**r, "step": f"{r['strategy']}, {r['instances']} instances"} for r in entry.get("compared") or []]
    return [note, "<p>Medians over the rounds:</p>", table(medians, [*COLUMNS, ("rounds", "rounds", ",.0f")]),
            "<p>Every step:</p>", table(rows, [*COLUMNS, *LOADGEN]), image(charts[CHART], shown)]  # fmt: skip


MARKDOWN = [*COLUMNS, ("loadgen_cores", "load gen cores", ".2f"), ("other_cores", "other work, cores", ".2f")]
TEST = PerformanceTest("PT-03b", "Gateway balancing strategies", run, analyse, {CHART: Chart(CHART_TITLE, draw, reading)}, section, MARKDOWN, on_slides=False)
