"""What the slide deck of a run says, slide by slide, from the run's summary and charts: the
architecture, the method, one slide per test with its chart and the sentence it proves, the
bottleneck, what async buys and what it costs, the numbers to remember. Only figures of the run;
a slide whose chart could not be drawn is left out. ``slides`` renders it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shopstream_tools.lab import charts, resources
from shopstream_tools.lab.html import esc
from shopstream_tools.lab.tests import REGISTRY


@dataclass
class Slide:
    title: str
    chart: str | None = None  # a chart's name (charts.CHARTS): the slide shows it, or is left out
    sentence: str | None = None
    points: list[str] = field(default_factory=list)  # short lines, large type
    numbers: list[tuple[str, str]] = field(default_factory=list)  # (big figure, what it is)
    picture: str | None = None  # inline SVG


def _rows(summary: Mapping[str, Any], test: str) -> list[dict[str, Any]]:
    entry = summary.get("tests", {}).get(test) or {}
    return list(entry.get("rows") or ([entry["row"]] if entry.get("row") else []))


def architecture() -> str:
    """The platform in one picture: boxes and arrows, drawn as SVG by this code."""
    boxes = {
        "clients": (0, 190, "load", "Locust · vegeta"),
        "gateway": (240, 190, "gateway", "nginx"),
        "order": (480, 90, "order-service", "202 at once"),
        "product": (480, 290, "product-service", "catalog · stock"),
        "pg": (720, 190, "PostgreSQL", "a DB per service"),
        "relay": (720, 10, "outbox relays", "row to message"),
        "kafka": (960, 90, "Kafka", "event topics"),
        "consumers": (960, 290, "saga consumers", "reserve · pay"),
    }
    arrows = [("clients", "gateway"), ("gateway", "order"), ("gateway", "product"), ("order", "pg"), ("product", "pg"),
              ("pg", "relay"), ("relay", "kafka"), ("kafka", "consumers"), ("consumers", "pg")]  # fmt: skip
    w, h = 200, 84
    out = ['<svg viewBox="0 0 1170 390" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="architecture">',
           '<defs><marker id="a" markerWidth="10" markerHeight="8" refX="9" refY="4" orient="auto"><path d="M0,0 L10,4 L0,8 z" fill="#555"/></marker></defs>']  # fmt: skip
    for src, dst in arrows:
        (x1, y1, *_), (x2, y2, *_) = boxes[src], boxes[dst]
        ax, ay = x1 + w / 2, y1 + h / 2
        bx, by = x2 + w / 2, y2 + h / 2
        # from the edge of one box to the edge of the other, along the line between their centres
        dx, dy = bx - ax, by - ay
        s = min(abs((w / 2) / dx) if dx else 9e9, abs((h / 2) / dy) if dy else 9e9)
        out.append(f'<line x1="{ax + dx * s:.0f}" y1="{ay + dy * s:.0f}" x2="{bx - dx * s:.0f}" y2="{by - dy * s:.0f}" stroke="#555" stroke-width="3" marker-end="url(#a)"/>')
    for x, y, name, what in boxes.values():
        out.append(f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="12" fill="#eaf2f8" stroke="#2471a3" stroke-width="2"/>')
        out.append(f'<text x="{x + w / 2}" y="{y + 36}" text-anchor="middle" font-size="22" font-weight="600" fill="#1a1a1a">{esc(name)}</text>')
        out.append(f'<text x="{x + w / 2}" y="{y + 64}" text-anchor="middle" font-size="17" fill="#333">{esc(what)}</text>')
    out.append("</svg>")
    return "".join(out)


def method(summary: Mapping[str, Any]) -> Slide:
    ceil = summary.get("ceilings") or {}
    names = {"nginx-fixed": "nginx", "pgbench-read-mix": "PostgreSQL reads", "pgbench-order-path": "order path in SQL", "kafka-producer": "Kafka"}
    limits = " · ".join(f"{label} {ceil[k]['median']:,.0f} {ceil[k]['unit']}" for k, label in names.items() if (ceil.get(k) or {}).get("median"))
    audits = [e.get("audit") or {} for e in summary.get("tests", {}).values() if not e.get("skipped")]
    passed = sum(1 for a in audits if a.get("passed"))
    points = [
        f"Ceilings in the same run: {limits}" if limits else "Ceilings measured in the same run",
        "Closed loop (users) for capacity; open loop (fixed rate) for latency",
        "HDR percentiles; CPU and memory of every process, every second",
        f"After each test an audit: {passed} of {len(audits)} passed (no stock oversold, every order ended, no event twice)",
    ]
    return Slide("How it was measured", points=points)


def bottleneck(summary: Mapping[str, Any]) -> Slide:
    rows = [r for r in resources.cost_rows(summary) if r["mode"] == "async"]
    if not rows:
        return Slide("The bottleneck", resources.COST, resources.cost_reading(summary))
    worst = max(rows, key=lambda r: r["users"] or 0)
    top = max(worst["ms"], key=lambda k: worst["ms"][k])
    share = worst["ms"][top] / worst["total"] if worst["total"] else 0
    sentence = f"{top}: {worst['ms'][top]:.1f} of {worst['total']:.1f} ms of CPU per async order ({share:.0%}) at {worst['users']} users."
    return Slide("The bottleneck", resources.COST, sentence)


def async_trade(summary: Mapping[str, Any]) -> Slide:
    closed = [r for r in _rows(summary, "PT-02") if r.get("loop") == "closed"]
    top = max((r.get("users") or 0 for r in closed), default=0)
    at = {r.get("mode"): r for r in closed if r.get("users") == top}
    opened = {r.get("mode"): r for r in _rows(summary, "PT-02") if r.get("loop") == "open"}
    cost = {r["mode"]: r for r in resources.cost_rows(summary) if r.get("users") == top}
    buys, costs = [], []
    s, a = at.get("sync"), at.get("async")
    if s and a and s.get("ok_rate") and a.get("ok_rate"):
        buys.append(f"{a['ok_rate'] / s['ok_rate']:.1f}x the orders/s at {top} users")
    so, ao = opened.get("sync"), opened.get("async")
    if so and ao and so.get("p99_ms") and ao.get("p99_ms"):
        buys.append(f"answer p99 {ao['p99_ms']:,.0f} ms, not {so['p99_ms']:,.0f} ms")
    if "sync" in cost and "async" in cost:
        buys.append(f"{cost['async']['total']:.1f} ms CPU per order, not {cost['sync']['total']:.1f} ms")
        pipeline = sum(v for k, v in cost["async"]["ms"].items() if "relay" in k or "consumer" in k)
        costs.append(f"{pipeline:.1f} ms CPU per order in relays and consumers")
    if ao and ao.get("e2e_p95_ms"):
        costs.append(f"confirmed p95 {ao['e2e_p95_ms']:,.0f} ms after the 202")
    lag = max((r.get("peak_lag") or 0 for r in _rows(summary, "PT-04")), default=0)
    if lag:
        costs.append(f"a queue to watch: lag up to {lag:,.0f} messages")
    costs.append("the client learns the outcome later")
    return Slide("What async buys, what it costs", points=[*(f"+ {b}" for b in buys), *(f"- {c}" for c in costs)])


def numbers(summary: Mapping[str, Any]) -> Slide:
    out: list[tuple[str, str]] = []
    pt01 = (summary.get("tests", {}).get("PT-01") or {}).get("saturation")
    if pt01:
        out.append((f"{pt01['ok_rate']:,.0f}/s", f"reads at best, saturated near {pt01['users']:,.0f} users"))
    closed = [r for r in _rows(summary, "PT-02") if r.get("loop") == "closed"]
    top = max((r.get("users") or 0 for r in closed), default=0)
    at = {r.get("mode"): r for r in closed if r.get("users") == top}
    if at.get("sync", {}).get("ok_rate") and at.get("async", {}).get("ok_rate"):
        out.append((f"{at['async']['ok_rate'] / at['sync']['ok_rate']:.1f}x", f"async orders/s over sync, {top} users"))
    cost = [r for r in resources.cost_rows(summary) if r["mode"] == "async"]
    if cost:
        out.append((f"{min(r['total'] for r in cost):.1f} ms", "CPU per async order, whole platform"))
    opened = {r.get("mode"): r for r in _rows(summary, "PT-02") if r.get("loop") == "open"}
    if (opened.get("async") or {}).get("e2e_p95_ms"):
        out.append((f"{opened['async']['e2e_p95_ms']:,.0f} ms", f"accepted to confirmed, p95 at {opened['async'].get('rate') or 0:g} orders/s"))
    burst = summary.get("tests", {}).get("PT-05") or {}
    if burst.get("recovery_seconds") is not None:
        out.append((f"{burst['recovery_seconds']:.0f} s", "back to normal after a burst"))
    tracing = (summary.get("tests", {}).get("PT-06") or {}).get("cost") or {}
    if tracing.get("throughput_ratio"):
        out.append((f"{tracing['throughput_ratio']:.2f}x", f"throughput with tracing at {tracing['tracing']}"))
    return Slide("Numbers to remember", numbers=out[:6])


def slides(summary: Mapping[str, Any], environment: Mapping[str, Any], drawn: Mapping[str, Mapping[str, str]]) -> list[Slide]:
    machine = environment.get("machine") or {}
    run = environment.get("run_id") or "?"
    deck = [
        Slide("shopstream under load", points=[f"Performance lab run {run}", f"{machine.get('cores', '?')} cores, profile {(environment.get('profile') or {}).get('name', '?')}, git {environment.get('git_revision', '?')}"]),
        Slide("The platform", picture=architecture(), sentence="Orders go in through the gateway; in async mode the saga runs over Kafka."),
        method(summary),
    ]
    # at most 15 slides: each test names the charts on its slides (``PerformanceTest.slides``)
    short = {"6-percentiles": "PT-02, PT-04 Percentiles per strategy",
             "4-event-latency": "PT-04 From accepted to confirmed"}  # fmt: skip
    for test in (t for t in REGISTRY.values() if t.on_slides):
        names = test.slide_charts
        for name in names:
            title = f"{test.id} {test.title}" if name == names[0] else short.get(name, charts.CHARTS[name])
            deck.append(Slide(title, name))
    deck += [bottleneck(summary), async_trade(summary), numbers(summary)]
    kept = []
    for slide in deck:
        if slide.chart:
            chart = drawn.get(slide.chart) or {}
            if "path" not in chart:
                continue
            slide.sentence = slide.sentence or chart.get("reading")
        if slide.chart or slide.points or slide.numbers or slide.picture:
            kept.append(slide)
    return kept
