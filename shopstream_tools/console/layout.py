"""The console's page frame and the pieces every page is made of: navigation, style, the chart
controls, tables whose every cell is escaped, links and pretty-printed values."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any
from urllib.parse import quote

from shopstream_tools.console.access import signed_in_as
from shopstream_tools.console.charts import WINDOWS

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
header form.who{margin:0 0 0 auto;color:#c9d3e6}header form.who button{margin-left:6px}
"""


def page(title: str, active: str, body: str, refresh: int = 0, charts: str = "") -> str:
    """``charts``: how the page's charts refresh, "page" (reload the whole page: its tables too)
    or "charts" (in place); empty for a page without charts."""
    nav = "".join(
        f'<a href="{href}" class="{"on" if href == active else ""}">{escape(label)}</a>'
        for href, label in NAV
    )
    meta = f'<meta http-equiv="refresh" content="{refresh}">' if refresh else ""
    who = signed_in_as.get()
    if who:
        nav += (
            f'<form class=who method=post action="/sign-out">signed in as {escape(who)}'
            "<button>sign out</button></form>"
        )
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
        f"{body}<p class=muted>rendered {time.strftime('%H:%M:%S')}</p>"
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
