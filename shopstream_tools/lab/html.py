"""HTML (and Markdown) pieces of the report: escaping, number formats, tables, inlined charts,
the audit's verdict, the columns every test's table shares."""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def esc(value: Any) -> str:
    return html.escape(str(value))


def fmt(value: Any, spec: str = ",.0f") -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        try:
            return format(value, spec)
        except ValueError:
            return str(value)
    return esc(value)


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str, str]]) -> str:
    """columns: (key, header, format spec; "" for text)."""
    head = "".join(f"<th{' class=l' if not spec else ''}>{esc(h)}</th>" for _, h, spec in columns)
    body = []
    for r in rows:
        cells = []
        for key, _, spec in columns:
            v = r.get(key)
            cells.append(f"<td class=l>{esc(v) if v is not None else '-'}</td>" if not spec else f"<td>{fmt(v, spec)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def image(chart: Mapping[str, str], shown: set[str] | None = None) -> str:
    if shown is not None:
        shown.add(chart["title"])
    if "path" not in chart:
        return f"<p class=note>Chart <b>{esc(chart['title'])}</b> not drawn: {esc(chart.get('missing'))}</p>"
    data = base64.b64encode(Path(chart["path"]).read_bytes()).decode()
    reading = f"<p class=reading>{esc(chart['reading'])}</p>" if chart.get("reading") else ""
    return f"<figure><img alt='{esc(chart['title'])}' src='data:image/png;base64,{data}'><figcaption>{esc(chart['title'])}</figcaption>{reading}</figure>"


def audit_block(result: Mapping[str, Any] | None) -> str:
    if not result:
        return "<p class=note>No audit.</p>"
    if result.get("passed") is None:
        return f"<p class=note>Audit not run: {esc(result.get('skipped'))}</p>"
    verdict = "<span class=ok>passed</span>" if result["passed"] else "<span class=bad>FAILED</span>"
    rows = [
        {"check": name, "result": "ok" if c["passed"] else "FAILED", "detail": c["detail"],
         "examples": "; ".join(c.get("examples") or [])}
        for name, c in result.get("checks", {}).items()
    ]  # fmt: skip
    drained = result.get("drained_seconds")
    tail = f" In-flight work finished {drained:.1f} s after the last load." if drained is not None else " <b>In-flight work did not finish within the drain timeout.</b>"
    return f"<p>Consistency audit {verdict}.{tail}</p>" + table(
        rows, [("check", "check", ""), ("result", "result", ""), ("detail", "detail", ""), ("examples", "examples", "")]
    )


COMMON = [
    ("step", "step", ""),
    ("ok_rate", "ok/s", ",.0f"),
    ("failures", "failures", ",.0f"),
    ("p50_ms", "p50 ms", ",.1f"),
    ("p95_ms", "p95 ms", ",.1f"),
    ("p99_ms", "p99 ms", ",.1f"),
    ("p99.9_ms", "p99.9 ms", ",.1f"),
]
LOADGEN = [
    ("loadgen", "load gen", ""),
    ("loadgen_cores", "its cores", ".2f"),
    ("loadgen_saturated", "saturated", ""),
    ("other_cores", "other work, cores", ".2f"),
]



def md_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str, str]]) -> str:
    head = "| " + " | ".join(h for _, h, _ in columns) + " |"
    rule = "|" + "|".join("---" if not spec else "---:" for _, _, spec in columns) + "|"
    body = [
        "| " + " | ".join(str(r.get(k) if r.get(k) is not None else "-") if not spec else fmt(r.get(k), spec) for k, _, spec in columns) + " |"
        for r in rows
    ]  # fmt: skip
    return "\n".join([head, rule, *body])

