"""Time series for the console's charts: each panel's PromQL over a window, from Prometheus'
``query_range``, with its unit and the alert thresholds that apply to it.

A chart is addressed by its board and its panel's position (``/api/charts/{board}/{n}``), never by
free PromQL: the console draws what its boards define and is no open query proxy. Boards are the
health page's panels, the lab page's, and the provisioned Grafana dashboards (deploy/grafana).
Thresholds come from infra/prometheus/rules/alerts.yml: an alert's first comparison
(``<expr> > <number>``) is drawn on every panel that plots the same expression, recording rules
expanded, so a panel and its alert cannot drift apart silently.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import httpx
import yaml

from shopstream.config import PROJECT_ROOT, Settings
from shopstream_tools.console import health

RULES = PROJECT_ROOT / "infra" / "prometheus" / "rules"
WINDOWS = {300: "5 min", 900: "15 min", 1800: "30 min", 3600: "1 h", 10800: "3 h", 21600: "6 h"}
MAX_SERIES = 12
POINTS = 240  # per series: a step of window/240, 5 s at least (twice the scrape interval)

# Grafana's units (deploy/grafana) as the console's axis formatter knows them.
UNITS = {"s": "s", "ms": "ms", "bytes": "bytes", "Bps": "bytes/s", "ops": "/s", "reqps": "req/s",
         "percentunit": "%"}  # fmt: skip

# The live lab page: what the load generator (Prometheus' loadgen job, labelled with run and step)
# and the platform do while a lab run goes. Locust's series or vegeta's, whichever tool runs.
LAB_PANELS: list[tuple[str, str, str]] = [
    ("Steps over time", 'max by (step, tool) (up{job="loadgen"})', "running"),
    ("Request rate sent", "sum by (step) (rate(locust_requests_total[30s])) or sum by (step) (rate(request_seconds_count[30s]))", "req/s"),
    ("p99 latency as the generator saw it", "histogram_quantile(0.99, sum by (step, le) (rate(locust_request_duration_seconds_bucket[30s]))) or histogram_quantile(0.99, sum by (step, le) (rate(request_seconds_bucket[30s])))", "s"),
    ("Failures per second", 'sum by (step) (rate(locust_request_failures_total[30s])) or sum by (step) (rate(request_seconds_count{status!~"2..|3.."}[30s]))', "req/s"),
    ("Users (Locust steps)", "sum by (step) (locust_users)", "users"),
    ("Consumer lag", "group_topic:kafka_consumer_lag_messages:sum", "messages"),
    ("Outbox backlog", "max by (service) (outbox_pending_events)", "rows"),
    ("Reservations held", "max(product_reservations_held)", "orders"),
]  # fmt: skip


@dataclass
class Threshold:
    value: float
    alert: str
    op: str


@dataclass
class Chart:
    board: str
    index: int
    title: str
    expr: str
    unit: str
    legend: str = ""
    thresholds: list[Threshold] = field(default_factory=list)


def _grafana_unit(raw: str) -> str:
    if raw.startswith("suffix:"):
        return raw.removeprefix("suffix:").strip()
    return UNITS.get(raw, raw)


@cache
def boards() -> dict[str, list[Chart]]:
    found: dict[str, list[Chart]] = {
        "health": [
            Chart("health", i, t, e, u, " ".join("{{" + k + "}}" for k in keys))
            for i, (t, e, u, keys) in enumerate(health.PANELS)
        ],
        "lab": [Chart("lab", i, t, e, u) for i, (t, e, u) in enumerate(LAB_PANELS)],
    }
    for board in health.dashboards():
        charts: list[Chart] = []
        for panel in board["panels"]:
            unit = _grafana_unit(panel.get("fieldConfig", {}).get("defaults", {}).get("unit", ""))
            target = panel["targets"][0]  # every provisioned panel plots one query
            charts.append(
                Chart(board["uid"], len(charts), panel["title"], target["expr"], unit,
                      target.get("legendFormat", ""))
            )  # fmt: skip
        found[board["uid"]] = charts
    rules = _thresholds()
    for charts in found.values():
        for chart in charts:
            key = _normal(chart.expr)
            chart.thresholds = [t for expr, sel, t in rules if expr == key[0] and sel <= key[1]]
    return found


def chart(board: str, index: int) -> Chart | None:
    charts = boards().get(board, [])
    return charts[index] if 0 <= index < len(charts) else None


# --- thresholds from the alerting rules ----------------------------------------------------------

_SELECTOR = re.compile(r"\{([^}]*)\}")
_COMPARISON = re.compile(r"^(?P<expr>.+?)\s*(?P<op>>=|<=|>|<)\s*(?P<value>-?[0-9.]+(?:e-?[0-9]+)?)$")


@cache
def _recorded() -> dict[str, str]:
    doc = yaml.safe_load((RULES / "recording.yml").read_text())
    return {r["record"]: r["expr"] for g in doc["groups"] for r in g["rules"]}


def _normal(expr: str) -> tuple[str, frozenset[str]]:
    """An expression with recording rules expanded, its label selectors taken out and whitespace
    dropped; with the set of those selectors (a threshold for ``topic="dead-letter"`` applies to a
    panel that selects it, not to one of all topics)."""
    selectors = frozenset(m.strip() for s in _SELECTOR.findall(expr) for m in s.split(",") if m.strip())
    bare = _SELECTOR.sub("", expr)
    recorded = _recorded()
    bare = recorded.get(bare.strip(), bare)
    return re.sub(r"\s+", "", _SELECTOR.sub("", bare)), selectors


def _thresholds() -> list[tuple[str, frozenset[str], Threshold]]:
    doc = yaml.safe_load((RULES / "alerts.yml").read_text())
    found = []
    for group in doc["groups"]:
        for rule in group["rules"]:
            first = re.split(r"\s+(?:and|or|unless)\s+", rule["expr"].strip())[0]
            match = _COMPARISON.match(first)
            if match:
                expr, selectors = _normal(match["expr"])
                threshold = Threshold(float(match["value"]), rule["alert"], match["op"])
                found.append((expr, selectors, threshold))
    return found


# --- series --------------------------------------------------------------------------------------


def legend(template: str, labels: dict[str, str]) -> str:
    if template:
        out = template
        for key, value in labels.items():
            out = out.replace("{{" + key + "}}", value)
        return out
    shown = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "__name__")
    return shown or "value"


async def prometheus_for(settings: Settings, board: str) -> str:
    """Where a board's series are: the lab view reads the lab platform's Prometheus (this
    platform's port + the lab's offset) when one answers there, else this platform's."""
    if board == "lab":
        from shopstream_tools.lab.testbed import LAB_PORT_OFFSET

        lab = f"http://127.0.0.1:{settings.prometheus_port + LAB_PORT_OFFSET}"
        try:
            async with httpx.AsyncClient(timeout=1) as client:
                if (await client.get(f"{lab}/-/ready")).status_code == 200:
                    return lab
        except httpx.HTTPError:
            pass
    return health.base_url(settings)


async def series(settings: Settings, c: Chart, window: int, now: float | None = None) -> dict[str, Any]:
    """The chart's series over the last ``window`` seconds, aligned on one time axis (uPlot's
    data layout: ``x`` then one list per series, ``None`` where a series has no sample)."""
    base = await prometheus_for(settings, c.board)
    end = now or time.time()
    step = max(5, window // POINTS)
    end -= end % step
    start = end - window
    params = {"query": c.expr, "start": str(start), "end": str(end), "step": str(step)}
    out: dict[str, Any] = {
        "title": c.title, "unit": c.unit, "window": window, "step": step, "x": [],
        "series": [], "error": "",
        "thresholds": [{"value": t.value, "alert": t.alert, "op": t.op} for t in c.thresholds],
    }  # fmt: skip
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            body = (await client.get("/api/v1/query_range", params=params)).json()
    except (httpx.HTTPError, ValueError) as exc:
        out["error"] = f"Prometheus at {base}: {exc}"
        return out
    if body.get("status") != "success":
        out["error"] = str(body.get("error", "query failed"))
        return out
    xs = list(range(int(start), int(end) + 1, step))
    slot = {x: i for i, x in enumerate(xs)}
    found = body["data"]["result"]
    # the series that matter most when there are too many: the largest latest values
    found.sort(key=_latest, reverse=True)
    for result in found[:MAX_SERIES]:
        values: list[float | None] = [None] * len(xs)
        for at, raw in result["values"]:
            i = slot.get(int(float(at)))
            value = _number(raw)
            if i is not None and value == value:  # NaN (no rate yet) is a gap, not a point
                values[i] = value
        out["series"].append({"label": legend(c.legend, result["metric"]), "values": values})
    out["x"] = xs
    out["hidden"] = max(0, len(found) - MAX_SERIES)
    return out


def _latest(result: dict[str, Any]) -> float:
    value = _number(result["values"][-1][1]) if result["values"] else 0.0
    return value if value == value else 0.0


def _number(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        return float("nan")
    return value if abs(value) != float("inf") else float("nan")
