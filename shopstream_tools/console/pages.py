"""The console's HTML: server-rendered pages, every value escaped. Tables need no script; charts
are drawn in the browser by uPlot (vendored under ``static/uplot``, served by the console itself:
no CDN) from ``/api/charts``, by ``static/charts.js``."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any
from urllib.parse import quote, urlencode

from shopstream_tools.console.alerts import AlertState, Notification
from shopstream_tools.console.charts import WINDOWS, Chart
from shopstream_tools.console.health import Pulse
from shopstream_tools.console.kafka_view import Broker, Group, Message, Topic

NAV = (
    ("/", "Health"),
    ("/kafka", "Kafka"),
    ("/kafka/groups", "Consumer groups"),
    ("/kafka/dead-letter", "Dead letters"),
    ("/orders", "Orders"),
    ("/alerts", "Alerts"),
    ("/dashboards", "Dashboards"),
    ("/lab", "Lab"),
)

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:10px 20px;display:flex;gap:24px;align-items:center}
header b{font-size:16px}header a{color:#c9d3e6;text-decoration:none}header a.on{color:#fff;font-weight:600}
main{padding:16px 20px}h1{font-size:20px;margin:4px 0 12px}h2{font-size:15px;margin:18px 0 6px}
table{border-collapse:collapse;background:#fff;margin-bottom:12px}
th,td{border:1px solid #dde1e8;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef1f5}td.n{text-align:right;font-variant-numeric:tabular-nums}
pre{margin:0;max-width:720px;white-space:pre-wrap;word-break:break-all;font-size:12px}
.bad{color:#b3261e;font-weight:600}.ok{color:#1e7b34}.muted{color:#6b7385}
.card{display:inline-block;vertical-align:top;margin:0 12px 12px 0}
form{margin:8px 0 14px}input{padding:4px 6px;width:320px}
.chart{background:#fff;border:1px solid #dde1e8;padding:8px;margin:0 10px 10px 0;width:580px;display:inline-block;vertical-align:top}
.chart h2{margin:0 0 4px}.chart-plot{width:570px;min-height:220px}.chart-note{font-size:12px;margin:2px 0}
.controls{margin:0 0 12px}.controls select{padding:2px 4px}
"""


def page(title: str, active: str, body: str, refresh: int = 0, charts: str = "") -> str:
    """``charts``: how the page's charts refresh, "page" (reload the whole page: its tables too)
    or "charts" (in place); empty for a page without charts."""
    nav = "".join(
        f'<a href="{href}" class="{"on" if href == active else ""}">{escape(label)}</a>'
        for href, label in NAV
    )
    meta = f'<meta http-equiv="refresh" content="{refresh}">' if refresh else ""
    head, attrs = "", ""
    if charts:
        head = (
            '<link rel=stylesheet href="/static/uplot/uPlot.min.css">'
            '<script src="/static/uplot/uPlot.iife.min.js"></script><script src="/static/charts.js"></script>'
        )
        attrs = f' data-reload="{charts}"'
        body = CONTROLS + body
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{escape(title)} · shopstream console</title>{meta}<style>{STYLE}</style>{head}</head>"
        f"<body{attrs}><header><b>shopstream console</b>{nav}</header><main><h1>{escape(title)}</h1>"
        f"{body}<p class=muted>read-only · rendered {time.strftime('%H:%M:%S')}</p>"
        "</main></body></html>"
    )


def _options(choices: dict[int, str]) -> str:
    return "".join(f'<option value="{k}">{escape(v)}</option>' for k, v in choices.items())


CONTROLS = (
    '<div class=controls><label>window <select id=chart-window>'
    + _options(WINDOWS)
    + '</select></label> <label>refresh <select id=chart-refresh>'
    + _options({0: "off", 10: "every 10 s", 15: "every 15 s", 30: "every 30 s", 60: "every minute"})
    + "</select></label></div>"
)


def chart(board: str, index: int, title: str, unit: str, extra: str = "") -> str:
    """A chart's frame; charts.js fills it from ``/api/charts/{board}/{index}``."""
    shown = escape(title) + (f" <span class=muted>({escape(unit)})</span>" if unit else "")
    return (
        f'<div class=chart data-src="/api/charts/{quote(board)}/{index}" data-title="{escape(title)}">'
        f"<h2>{shown}</h2><div class=chart-plot></div><p class=chart-note></p>{extra}</div>"
    )


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], cls: str = "") -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    if not body:
        body = f'<tr><td colspan="{len(headers)}" class=muted>none</td></tr>'
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


class Raw(str):
    """Markup already escaped by this module."""


def _cell(value: Any) -> str:
    if isinstance(value, Raw):
        return f"<td>{value}</td>"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"<td class=n>{_num(value)}</td>"
    return f"<td>{escape(str(value))}</td>"


def _num(value: float) -> str:
    if isinstance(value, int):
        return f"{value:,}"
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def link(href: str, text: str) -> Raw:
    return Raw(f'<a href="{escape(href)}">{escape(text)}</a>')


def pretty(value: Any) -> Raw:
    text = json.dumps(value, indent=2, ensure_ascii=False) if not isinstance(value, str) else value
    return Raw(f"<pre>{escape(text)}</pre>")


# --- views --------------------------------------------------------------------------------------


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


def kafka(cluster_id: str, brokers: list[Broker], topics: list[Topic]) -> str:
    broker_rows = [[b.id, f"{b.host}:{b.port}", "yes" if b.controller else ""] for b in brokers]
    topic_rows = [
        [
            link(f"/kafka/topics/{quote(t.name)}", t.name),
            len(t.partitions),
            max((len(p.replicas) for p in t.partitions), default=0),
            t.messages,
            sum(p.high for p in t.partitions),
        ]
        for t in topics
        if not t.internal
    ]
    body = (
        f"<p>cluster <code>{escape(cluster_id)}</code></p><h2>Brokers</h2>"
        + table(["id", "address", "controller"], broker_rows, "brokers")
        + "<h2>Topics</h2>"
        + table(["topic", "partitions", "replication", "messages", "log-end offsets"], topic_rows, "topics")
    )
    return page("Kafka", "/kafka", body)


def topic(t: Topic, sizes: dict[int, float]) -> str:
    rows = [
        [
            p.id,
            p.leader,
            ", ".join(map(str, p.replicas)),
            ", ".join(map(str, p.isr)),
            p.low,
            p.high,
            p.messages,
            _size(sizes.get(p.id)),
            link(f"/kafka/topics/{quote(t.name)}/messages?partition={p.id}", "latest messages"),
        ]
        for p in t.partitions
    ]
    headers = ["partition", "leader", "replicas", "ISR", "log start", "log end", "messages", "size", ""]
    return page(f"Topic {t.name}", "/kafka", table(headers, rows, "partitions"))


def _size(value: float | None) -> str:
    if value is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return "-"


def _message_rows(messages: list[Message], with_reason: bool) -> list[list[Any]]:
    rows = []
    for m in messages:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(m.timestamp_ms / 1000))
        headers = {k: v for k, v in m.headers.items() if not (with_reason and k.startswith("dlq."))}
        row: list[Any] = [m.offset, when, m.key or ""]
        if with_reason:
            origin = (
                f"{m.headers.get('dlq.original_topic', '?')}/{m.headers.get('dlq.original_partition', '?')}"
                f"@{m.headers.get('dlq.original_offset', '?')}"
            )
            row += [
                Raw(f'<span class="bad reason">{escape(m.dlq_reason)}</span>'),
                origin,
                m.headers.get("dlq.consumer_group", ""),
                m.headers.get("dlq.attempts", ""),
            ]
        row += [pretty(headers) if headers else "", pretty(m.value)]
        rows.append(row)
    return rows


def messages(topic_name: str, partition: int, limit: int, found: list[Message], partitions: int) -> str:
    choose = " ".join(
        f'<a href="/kafka/topics/{quote(topic_name)}/messages?{urlencode({"partition": p, "limit": limit})}">{p}</a>'
        if p != partition
        else f"<b>{p}</b>"
        for p in range(partitions)
    )
    body = (
        f"<p>partition: {choose} · the latest {limit}, newest first</p>"
        + table(["offset", "time (UTC)", "key", "headers", "value"], _message_rows(found, False), "messages")
    )
    return page(f"{topic_name} / partition {partition}", "/kafka", body)


def groups(found: list[Group]) -> str:
    parts = []
    summary = [[g.id, g.state, g.members, g.lag] for g in found]
    parts.append(table(["group", "state", "members", "lag"], summary, "groups"))
    for g in found:
        rows = [
            [p.topic, p.partition, "-" if p.committed is None else p.committed, p.end, p.lag]
            for p in g.partitions
        ]
        parts.append(
            f'<h2 id="{escape(g.id)}">{escape(g.id)}</h2>'
            + table(["topic", "partition", "committed", "log end", "lag"], rows, f"group-{g.id}")
        )
    return page("Consumer groups", "/kafka/groups", "".join(parts))


def dead_letters(found: list[Message], total: int, limit: int) -> str:
    body = (
        f"<p>{total} message(s) waiting in the dead-letter topic; the newest {min(limit, total)} below. "
        "After fixing the cause: <code>shopstream dlq replay --dry-run</code>, then "
        "<code>shopstream dlq replay</code>.</p>"
        + table(
            ["offset", "time (UTC)", "key", "reason", "from", "group", "attempts", "headers", "value"],
            _message_rows(found, True),
            "dead-letters",
        )
    )
    return page("Dead letters", "/kafka/dead-letter", body)


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
