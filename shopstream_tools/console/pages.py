"""The console's HTML pages (health, alerts, orders, dashboards, lab; Kafka's are in ``kafka_pages``),
server-rendered from ``layout``, every value escaped. Tables need no script; charts
are drawn in the browser by uPlot (vendored under ``static/uplot``, served by the console itself:
no CDN) from ``/api/charts``, by ``static/charts.js``."""

from __future__ import annotations

from html import escape
from typing import Any

from shopstream_tools.console.alerts import AlertState, Notification
from shopstream_tools.console.charts import Chart
from shopstream_tools.console.health import Pulse
from shopstream_tools.console.layout import Raw, chart, link, page, pretty, table


def health(pulse: Pulse) -> str:
    parts: list[str] = []
    if not pulse.reachable:
        parts.append(f"<p class=bad>Prometheus is not reachable: {escape(pulse.error)}</p>")
    alerts = [
        (
            a["labels"].get("alertname", ""),
            a["labels"].get("severity", ""),
            a["annotations"].get("summary", ""),
            _when(a.get("activeAt", "")),
            a.get("alertmanager", "-"),
        )
        for a in pulse.alerts
    ]
    parts.append(
        "<h2>Firing alerts</h2>"
        + table(["alert", "severity", "summary", "since (UTC)", "Alertmanager"], alerts, "alerts")
        + '<p class=muted>as Prometheus evaluates them now; what Alertmanager notified: '
        '<a href="/alerts">alerts</a></p>'
    )
    for index, panel in enumerate(pulse.panels):
        rows = [
            [*(r.labels.get(k, "") for k in panel.keys), r.value] for r in panel.rows
        ]
        error = f"<p class=bad>{escape(panel.error)}</p>" if panel.error else ""
        now = table([*panel.keys, "now"], rows, "panel-" + _slug(panel.title))
        parts.append(chart("health", index, panel.title, panel.unit, error + now))
    return page("Health", "/", "".join(parts), charts="page")


def _when(stamp: str) -> str:
    """An RFC 3339 time as ``YYYY-MM-DD HH:MM:SS`` UTC; Alertmanager's zero time as empty."""
    from datetime import UTC, datetime

    if not stamp or stamp.startswith("0001-"):
        return ""
    try:
        at = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return stamp
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def alerts(states: list[AlertState], found: list[Notification], alertmanager_port: int) -> str:
    """Each alert's latest notified state, then the notifications, newest first."""
    current = [
        [
            Raw(f'<span class="{"bad" if s.status == "firing" else "ok"}">{escape(s.status)}</span>'),
            s.name,
            s.severity,
            ", ".join(f"{k}={v}" for k, v in sorted(s.labels.items())),
            s.summary,
            _when(s.since),
            _when(s.ended),
            _when(s.notified),
        ]
        for s in states
    ]
    log = [
        [
            _when(n.received_at),
            n.status,
            ", ".join(f"{a.labels.get('alertname', '?')} ({a.status})" for a in n.alerts),
        ]
        for n in reversed(found[-50:])
    ]
    if alertmanager_port:
        where = (
            f"Alertmanager on :{alertmanager_port} notifies this console; silence an alert with "
            f"<code>amtool --alertmanager.url=http://127.0.0.1:{alertmanager_port} silence add "
            "alertname=&lt;name&gt; -c &quot;why&quot; -d 2h</code>."
        )
    else:
        where = "No Alertmanager runs (<code>SHOPSTREAM_ALERTMANAGER_PORT=0</code>): nothing is notified."
    body = (
        f"<p>{where}</p><h2>Alerts, as last notified</h2>"
        + table(
            ["status", "alert", "severity", "labels", "summary", "since (UTC)", "resolved (UTC)", "notified (UTC)"],
            current,
            "notified-alerts",
        )
        + "<h2>Notifications, newest first</h2>"
        + table(["received (UTC)", "status", "alerts"], log, "notifications")
    )
    return page("Alerts", "/alerts", body, refresh=10)


def _slug(title: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in title.lower()).split())


def _timeline(stamps: dict[str, str]) -> list[list[Any]]:
    """Each saga stage with its time and the milliseconds since the order was accepted."""
    from datetime import datetime

    parsed = []
    for stage, when in stamps.items():
        try:
            parsed.append((datetime.fromisoformat(when.replace("Z", "+00:00")), stage, when))
        except ValueError:
            continue
    parsed.sort()
    if not parsed:
        return []
    first = parsed[0][0]
    return [[stage, when, round((at - first).total_seconds() * 1000, 1)] for at, stage, when in parsed]


def orders(
    order_id: str, order: dict[str, Any] | None, events: list[dict[str, Any]], note: str, trace: str
) -> str:
    form = (
        '<form action="/orders" method="get"><label>order id <input name="id" '
        f'value="{escape(order_id)}" placeholder="a UUID"></label> <button>find</button></form>'
    )
    parts = [form]
    if note:
        parts.append(f"<p class=muted>{escape(note)}</p>")
    if order is not None:
        summary = [
            [k, order.get(k, "")]
            for k in ("id", "status", "outcome", "mode", "version", "total_cents", "customer_id", "reason")
            if order.get(k) is not None
        ]
        parts.append("<h2>Order</h2>" + table(["field", "value"], summary, "order"))
        parts.append(
            "<h2>Saga timeline</h2>"
            + table(["stage", "at", "ms since first"], _timeline(order.get("timestamps") or {}), "timeline")
        )
    if order is not None:
        rows = [
            [e.get("version", ""), e.get("type", ""), e.get("occurred_at", ""), pretty(e.get("data", {}))]
            for e in events
        ]
        parts.append(
            "<h2>Event stream (event store)</h2>"
            + table(["version", "type", "occurred at", "data"], rows, "events")
        )
        if trace:
            parts.append(
                f'<p><a class=trace href="{escape(trace)}">its trace in Zipkin</a> '
                "<span class=muted>(when it was sampled)</span></p>"
            )
    return page("Orders", "/orders", "".join(parts))


def dashboards_index(boards: list[dict[str, Any]]) -> str:
    rows = [
        [link(f"/dashboards/{b['uid']}", b["title"]), len(b["panels"]), b.get("description", "")]
        for b in boards
    ]
    body = (
        "<p>The provisioned Grafana dashboards (deploy/grafana/dashboards), evaluated live against "
        "this platform's Prometheus: every panel as a time series over the chosen window, with its "
        "unit and, where an alert watches the same figure, the alert's threshold.</p>"
        + table(["dashboard", "panels", "about"], rows, "dashboards")
    )
    return page("Dashboards", "/dashboards", body)


def dashboard(board: dict[str, Any], charts: list[Chart]) -> str:
    about = f"<p class=muted>{escape(board.get('description', ''))}</p>"
    drawn = "".join(chart(c.board, c.index, c.title, c.unit) for c in charts)
    return page(board["title"], "/dashboards", about + drawn, charts="charts")


def lab(charts: list[Chart], prometheus: str, steps: list[list[Any]]) -> str:
    """While a lab run goes: its load generator's step, rate and p99, and the platform's lag and
    backlog, over time. The lab lists its generator as Prometheus' ``loadgen`` target."""
    running = (
        f"<p class=muted>from the Prometheus at <code>{escape(prometheus)}</code> (the lab "
        "platform's when it runs, else this platform's)</p><h2>Load generator now</h2>"
        + table(["run", "step", "tool", "target"], steps, "lab-steps")
        + "<p class=muted>The lab (<code>shopstream lab run</code>) lists each step's load generator "
        "as Prometheus' <code>loadgen</code> target while it runs; nothing listed: no lab run now "
        "(the charts still show the window's past).</p>"
    )
    drawn = "".join(chart(c.board, c.index, c.title, c.unit) for c in charts)
    return page("Lab run", "/lab", running + drawn, charts="charts")
