"""One self-contained HTML report: the charts inlined as PNG data, every figure absolute and as a
ratio to the same run's ceilings, the load generator's cost, the audits, the models' fit and
the caveats. No external file, script or font: it opens anywhere and can be mailed."""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from shopstream_tools.lab.runner import TITLES

CSS = """
body{font-family:system-ui,sans-serif;max-width:1150px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.85em}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}th{background:#f4f6f7}
td.l,th.l{text-align:left}.ok{color:#1e8449;font-weight:600}.bad{color:#c0392b;font-weight:600}
.note{background:#fef9e7;border-left:4px solid #f4d03f;padding:.5em 1em;margin:1em 0}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}code{font-size:.9em}
"""


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
    return f"<figure><img alt='{esc(chart['title'])}' src='data:image/png;base64,{data}'><figcaption>{esc(chart['title'])}</figcaption></figure>"


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


def test_section(
    test: str, entry: Mapping[str, Any], charts: Mapping[str, Mapping[str, str]], shown: set[str]
) -> str:
    parts = [f"<h2>{esc(test)} {esc(TITLES.get(test, ''))}</h2>"]
    if entry.get("skipped"):
        return parts[0] + f"<p class=note>Skipped: {esc(entry['skipped'])}</p>"
    if entry.get("error"):
        parts.append(f"<p class=note>Stopped by an error: {esc(entry['error'])}</p>")
    if entry.get("interrupted"):
        parts.append("<p class=note>Interrupted (Ctrl-C): the steps below are what was measured.</p>")
    rows = entry.get("rows") or ([entry["row"]] if entry.get("row") else [])
    if test == "PT-01":
        parts.append(table(rows, [*COMMON, ("x nginx-fixed", "x nginx", ".4f"), ("x pgbench-read-mix", "x pgbench", ".3f"), *LOADGEN, ("machine_cores", "machine cores", ".2f")]))
        sat = entry.get("saturation")
        if sat:
            parts.append(
                f"<p>Saturation point: <b>about {fmt(sat['users'])} users</b>, where throughput growing as at the lightest load "
                f"would reach the best measured, {fmt(sat['ok_rate'])} req/s (at {fmt(sat['best_at_users'])} users). Past it, more users only queue.</p>"
            )
        parts.append(image(charts["1-concurrency-throughput"], shown))
    elif test == "PT-02":
        parts.append(table(rows, [*COMMON, ("e2e_p50_ms", "accepted->confirmed p50", ",.0f"), ("e2e_p95_ms", "p95", ",.0f"), ("x nginx-fixed", "x nginx", ".4f"), ("x pgbench-order-path", "x pgbench", ".3f"), ("peak_outbox", "peak outbox", ",.0f"), ("peak_lag", "peak lag", ",.0f"), ("drain_seconds", "drain s", ".1f"), *LOADGEN]))
        outcomes = [{"step": r["step"], **{k: v for k, v in (r.get("outcomes") or {}).items()}} for r in rows]
        keys = sorted({k for o in outcomes for k in o if k != "step"})
        if keys:
            parts.append(table(outcomes, [("step", "outcomes of the step's orders", ""), *[(k, k, ",.0f") for k in keys]]))
        parts += [image(charts["2-sync-vs-async"], shown), image(charts["6-percentiles"], shown)]
    elif test == "PT-03":
        parts.append(table(rows, [*COMMON, ("efficiency", "efficiency", ".2f"), ("x nginx-fixed", "x nginx", ".4f"), *LOADGEN, ("machine_cores", "machine cores", ".2f")]))
        parts.append(model_block(entry))
        parts.append(image(charts["3-scaling"], shown))
    elif test == "PT-04":
        parts.append(table(rows, [("step", "step", ""), ("ok_rate", "accepted/s", ",.0f"), ("processed_per_s", "processed/s", ",.0f"), ("messages_per_s", "saga msg/s", ",.0f"), ("kafka_ceiling", "Kafka ceiling msg/s", ",.0f"), ("x kafka-producer", "x Kafka", ".3f"), ("e2e_p50_ms", "e2e p50 ms", ",.0f"), ("e2e_p95_ms", "e2e p95 ms", ",.0f"), ("peak_lag", "peak lag", ",.0f"), ("drain_seconds", "drain s", ".1f"), *LOADGEN]))
        bal = [{"step": r["step"], **{k: v for k, v in (r.get("balance") or {}).items()}} for r in rows]
        parts.append(table(bal, [("step", "order-events balance", ""), ("partitions", "partitions", ",.0f"), ("max_over_mean", "max/mean", ".2f"), ("cv", "coeff. of variation", ".2f")]))
        parts += [image(charts["8-partitions"], shown), image(charts["4-event-latency"], shown)]
    elif test == "PT-05":
        parts.append(table(rows, [*COMMON, ("x nginx-fixed", "x nginx", ".4f"), *LOADGEN]))
        parts.append(
            "<p>"
            f"Base p95 {fmt(entry.get('base_p95_ms'), ',.1f')} ms; peak p95 {fmt(entry.get('peak_p95_ms'), ',.1f')} ms; "
            f"error rate during the peak {fmt(entry.get('peak_error_rate'), '.2%')}; "
            f"throughput per second: base median {fmt(entry.get('base_rate'))}, peak median {fmt(entry.get('peak_rate'))} (coefficient of variation {fmt(entry.get('rate_cv'), '.2f')}); "
            f"<b>latency recovered {fmt(entry.get('recovery_seconds'), '.0f')} s</b> after the peak (p95 back under 1.5x the base for 3 s); "
            f"<b>backlog recovered {fmt(entry.get('backlog_recovery_seconds'), '.0f')} s</b> after it.</p>"
        )
        parts.append(image(charts["7-burst"], shown))
    elif test == "PT-06":
        parts.append(table(rows, [*COMMON[:6], ("e2e_p50_ms", "accepted->confirmed p50", ",.0f"), ("platform_ms_per_order", "platform CPU ms/order", ".2f"), ("zipkin_cores", "Zipkin cores", ".2f"), ("x pgbench-order-path", "x pgbench", ".3f"), *LOADGEN]))
        parts.append(table(entry.get("arms") or [], TRACING_ARMS))
        parts.append(tracing_block(entry))
        parts.append(image(charts["9-tracing-cost"], shown))
    parts.append(audit_block(entry.get("audit")))
    return "\n".join(parts)


TRACING_ARMS = [
    ("tracing", "tracing (medians)", ""),
    ("repeats", "repeats", ",.0f"),
    ("ok_rate", "ok/s", ",.0f"),
    ("ok_rate_min", "min", ",.0f"),
    ("ok_rate_max", "max", ",.0f"),
    ("p50_ms", "p50 ms", ",.1f"),
    ("p95_ms", "p95 ms", ",.1f"),
    ("platform_ms_per_order", "platform CPU ms/order", ".2f"),
    ("zipkin_ms_per_order", "of it Zipkin", ".2f"),
    ("x nginx-fixed", "x nginx", ".4f"),
    ("x pgbench-order-path", "x pgbench", ".3f"),
    ("other_cores", "other work, cores", ".2f"),
]


def tracing_components(entry: Mapping[str, Any]) -> list[dict[str, Any]]:
    """CPU ms per order by component, one column per setting (medians of the repeats)."""
    arms = entry.get("arms") or []
    groups = list((arms[0].get("ms_per_order") or {}) if arms else [])
    return [{"component": g, **{a["tracing"]: (a.get("ms_per_order") or {}).get(g) for a in arms}} for g in groups]


def tracing_block(entry: Mapping[str, Any]) -> str:
    cost = entry.get("cost")
    if not cost:
        return "<p class=note>Tracing's cost needs both settings measured.</p>"
    arms = [a["tracing"] for a in entry.get("arms") or []]
    per = table(tracing_components(entry), [("component", "CPU ms per order (medians)", ""), *[(a, f"tracing {a}", ".2f") for a in arms]])
    paired = ", ".join(f"{r:.2f}" for r in cost.get("paired_ratios") or [])
    return (
        f"<p>With tracing at ratio {esc(cost['tracing'])}, the same async order load gave <b>{fmt(cost['throughput_ratio'], '.2f')}x</b> the "
        f"accepted orders/s of tracing off (ratio of the medians); each repeat's own on/off ratio: {esc(paired or '-')} "
        f"(median {fmt(cost.get('paired_median'), '.2f')}). p50 latency x{fmt(cost.get('p50_ratio'), '.2f')}, p95 x{fmt(cost.get('p95_ratio'), '.2f')}; "
        f"platform CPU per order x{fmt(cost.get('cpu_per_order_ratio'), '.2f')} (Zipkin, on these same cores, included).</p>"
        f"<p class=note>The noise: repeats of the same setting differed by up to x{fmt(cost.get('off_spread'), '.2f')} (off) and "
        f"x{fmt(cost.get('on_spread'), '.2f')} (on) between their slowest and fastest. A cost smaller than that spread is not "
        "resolved by this run; more repeats or longer steps (the full profile) narrow it.</p>" + per
    )


def memory_table(summary: Mapping[str, Any]) -> str:
    """Peak memory per component over each test's steps (the per-second samples, RSS and PSS, are
    in the CSVs)."""
    hm = summary.get("heatmap") or {}
    cols, rss = hm.get("columns") or [], hm.get("pss_mb") or {}
    if not cols or not rss:
        return ""
    tests = sorted({c.split(" ", 1)[0] for c in cols})
    rows = []
    for name in sorted(rss):
        row: dict[str, Any] = {"component": name}
        for test in tests:
            values = [v for c, v in zip(cols, rss[name], strict=True) if c.startswith(test) and v is not None]
            row[test] = max(values) if values else None
        rows.append(row)
    return "<p>Peak memory per test (MB, PSS of each process tree: PostgreSQL's backends and nginx's workers included, shared pages split; instances added up):</p>" + table(
        rows, [("component", "component", ""), *[(t, t, ",.0f") for t in tests]]
    )


def model_block(entry: Mapping[str, Any]) -> str:
    out = [
        "<p class=note><b>This machine has 2 cores: it cannot show scaling past 2 instances.</b> "
        "Every instance, PostgreSQL, Kafka, the gateway and the load generator share them, so 4 and 8 "
        "instances here measure contention for the cores, not the design. What 4 and 8 would give on a "
        "machine with the cores for them is predicted below by a model fitted on the measured points, "
        "with its error.</p>"
    ]
    usl = entry.get("usl")
    if usl:
        out.append(
            f"<p><b>Universal Scalability Law</b> fitted here: lambda={fmt(usl['lambda'])} req/s, sigma={usl['sigma']:.3f} (contention), "
            f"kappa={usl['kappa']:.4f} (coherency); mean absolute error {usl['mape']:.1%}, R²={fmt(usl['r_squared'], '.3f')}. "
            "It describes this machine, whose shared resource is its 2 cores.</p>"
        )
    demand = entry.get("demand")
    if demand:
        d = [{"tier": k, "ms": v, "low": demand["spread_ms"][k][0], "high": demand["spread_ms"][k][1]} for k, v in demand["demands_ms"].items()]
        out.append("<p><b>Service demand</b> (CPU ms each request costs each tier, median over the steps, measured from /proc):</p>")
        out.append(table(d, [("tier", "tier", ""), ("ms", "CPU ms/request", ".3f"), ("low", "min", ".3f"), ("high", "max", ".3f")]))
        out.append(
            f"<p>On this machine the bound min(cores left by other work / total demand, instances / instance demand) misses the measured points by "
            f"{demand['mape_here']:.1%} on average:</p>"
        )
        out.append(table(demand["here"], [("instances", "instances", ",.0f"), ("measured", "measured/s", ",.0f"), ("model", "model/s", ",.0f"), ("error", "error", ".1%"), ("other_cores", "cores used by other work", ".2f")]))
        shared = ", ".join(f"{k} {v:g}" for k, v in demand["larger_machine"].items())
        out.append(f"<p>Prediction for a larger machine (a core per instance; shared tiers with cores: {esc(shared)}; the load generator elsewhere). The range comes from the demands' spread over the steps:</p>")
        out.append(table(demand["predict"], [("instances", "instances", ",.0f"), ("throughput", "predicted/s", ",.0f"), ("low", "low", ",.0f"), ("high", "high", ",.0f"), ("bottleneck", "bottleneck", "")]))
    return "\n".join(out)


def write(
    path: Path,
    environment: Mapping[str, Any],
    ceilings: Mapping[str, list[dict[str, Any]]],
    summary: Mapping[str, Any],
    tests: Mapping[str, Any],
    charts: Mapping[str, Mapping[str, str]],
) -> Path:
    machine = environment.get("machine", {})
    csum = summary.get("ceilings", {})
    crow = [
        {"name": k, "median": v["median"], "unit": v["unit"], "rounds": " / ".join(fmt(x) for x in v["rounds"]), "lg": v.get("loadgen_cores")}
        for k, v in csum.items()
    ]  # fmt: skip
    parts = [
        "<!doctype html><html><head><meta charset=utf-8>",
        f"<title>shopstream lab {esc(environment.get('run_id'))}</title><style>{CSS}</style></head><body>",
        f"<h1>shopstream performance lab: run {esc(environment.get('run_id'))}</h1>",
        f"<p>Profile <b>{esc(environment.get('profile', {}).get('name'))}</b>; tests {esc(' '.join(environment.get('tests', [])))}; "
        f"{fmt(environment.get('seconds'), '.0f')} s; git {esc(environment.get('git_revision'))}{' (with uncommitted changes)' if environment.get('git_dirty') else ''}; "
        f"{esc(machine.get('cores'))} cores ({esc(machine.get('cpu_model'))}), load average before {esc(machine.get('load_average_before'))}, after {esc(environment.get('load_average_after'))}.</p>",
    ]
    if environment.get("interrupted"):
        parts.append("<p class=note><b>Interrupted with Ctrl-C</b>: what follows is what was measured until then.</p>")
    parts.append(
        "<p class=note>Every figure is measured on one shared 2-core machine where the load generator, the "
        "services, PostgreSQL, Kafka and the gateway compete for the same cores; absolute figures drift with "
        "what else runs, so each is also given as a ratio to ceilings measured in this same run. Percentiles come from "
        "HDR histograms (Locust: closed-loop scenario users; vegeta: open loop at a constant rate, latency counted from "
        "each request's scheduled time, so no coordinated omission). The load generator's own CPU is in every table.</p>"
    )
    scraped = summary.get("loadgen_scraped") or {}
    if scraped.get("steps"):
        parts.append(
            f"<p>Prometheus scraped the load generator (job <code>loadgen</code>, listed while it ran) in {scraped['scraped']} of {scraped['steps']} steps; "
            f"in those, its request counter reached {fmt(scraped.get('share_of_requests'), '.0%')} of what the generator counted itself "
            "(a new target is scraped only a few seconds after it is listed, so the first seconds of each step are missed).</p>"
        )
    if summary.get("loadgen_saturated"):
        parts.append("<p class=note><b>The load generator saturated</b> in: " + esc("; ".join(summary["loadgen_saturated"])) + ". Those steps measure the generator as much as the system.</p>")
    parts.append("<h2>Ceilings (same run, same machine)</h2>")
    parts.append(table(crow, [("name", "ceiling", ""), ("median", "median", ",.0f"), ("unit", "unit", ""), ("rounds", "per round", ""), ("lg", "generator cores", ".2f")]))
    commands = {k: v[0].get("command", "") for k, v in ceilings.items() if v}
    parts.append("<details><summary>ceiling commands</summary><pre>" + esc("\n".join(f"{k}: {c}" for k, c in commands.items())) + "</pre></details>")
    shown: set[str] = set()
    for test, entry in summary.get("tests", {}).items():
        parts.append(test_section(test, entry, charts, shown))
    parts.append("<h2>Resources</h2>")
    parts.append(image(charts["5-resource-heatmap"], shown))
    parts.append(memory_table(summary))
    if "path" in charts.get("4-event-latency", {}) and charts["4-event-latency"]["title"] not in shown:
        parts.append(image(charts["4-event-latency"], shown))
    missing = [c for c in charts.values() if "path" not in c and c["title"] not in shown]
    if missing:
        parts.append("<h2>Charts not drawn</h2>" + "".join(image(c) for c in missing))
    parts.append("<h2>Environment</h2><pre>" + esc(_environment_text(environment)) + "</pre>")
    parts.append("</body></html>")
    path.write_text("\n".join(parts))
    return path


def _environment_text(env: Mapping[str, Any]) -> str:
    lines = [f"{k}: {v}" for k, v in (env.get("versions") or {}).items()]
    lines.append("")
    lines += [f"{k}={v}" for k, v in sorted((env.get("settings") or {}).items())]
    return "\n".join(lines)


# --- the same figures as Markdown, for docs/performance/README.md ----------------------------------
def _md(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str, str]]) -> str:
    head = "| " + " | ".join(h for _, h, _ in columns) + " |"
    rule = "|" + "|".join("---" if not spec else "---:" for _, _, spec in columns) + "|"
    body = [
        "| " + " | ".join(str(r.get(k) if r.get(k) is not None else "-") if not spec else fmt(r.get(k), spec) for k, _, spec in columns) + " |"
        for r in rows
    ]  # fmt: skip
    return "\n".join([head, rule, *body])


def markdown(summary: Mapping[str, Any]) -> str:
    """The run's main tables in Markdown (figures, ratios, load generator cost, audits)."""
    out = []
    csum = summary.get("ceilings", {})
    out.append(_md(
        [{"name": k, "median": v["median"], "unit": v["unit"], "rounds": " / ".join(fmt(x) for x in v["rounds"]), "lg": v.get("loadgen_cores")} for k, v in csum.items()],
        [("name", "ceiling", ""), ("median", "median", ",.0f"), ("unit", "unit", ""), ("rounds", "per round", ""), ("lg", "generator cores", ".2f")],
    ))  # fmt: skip
    lg = [("loadgen", "load gen", ""), ("loadgen_cores", "its cores", ".2f"), ("other_cores", "other work, cores", ".2f")]
    specs: dict[str, list[tuple[str, str, str]]] = {
        "PT-01": [*COMMON, ("x nginx-fixed", "x nginx", ".4f"), ("x pgbench-read-mix", "x pgbench", ".3f"), *lg],
        "PT-02": [*COMMON[:5], ("p99_ms", "p99 ms", ",.0f"), ("e2e_p50_ms", "accepted->confirmed p50 ms", ",.0f"), ("e2e_p95_ms", "p95 ms", ",.0f"), ("x pgbench-order-path", "x pgbench", ".3f"), ("peak_lag", "peak lag", ",.0f"), ("drain_seconds", "drain s", ".1f"), *lg],
        "PT-03": [*COMMON[:6], ("efficiency", "efficiency", ".2f"), ("x nginx-fixed", "x nginx", ".4f"), *lg, ("machine_cores", "machine cores", ".2f")],
        "PT-04": [("step", "step", ""), ("ok_rate", "accepted/s", ",.0f"), ("processed_per_s", "processed/s", ",.0f"), ("messages_per_s", "saga msg/s", ",.0f"), ("kafka_ceiling", "Kafka ceiling msg/s", ",.0f"), ("x kafka-producer", "x Kafka", ".4f"), ("e2e_p50_ms", "e2e p50 ms", ",.0f"), ("e2e_p95_ms", "e2e p95 ms", ",.0f"), ("peak_lag", "peak lag", ",.0f"), ("drain_seconds", "drain s", ".1f")],
        "PT-05": [*COMMON, ("x nginx-fixed", "x nginx", ".4f"), *lg],
        "PT-06": [*COMMON[:5], ("e2e_p50_ms", "accepted->confirmed p50 ms", ",.0f"), ("platform_ms_per_order", "platform CPU ms/order", ".2f"), ("zipkin_cores", "Zipkin cores", ".2f"), ("x pgbench-order-path", "x pgbench", ".3f"), ("prom_requests", "requests Prometheus saw", ",.0f"), *lg],
    }  # fmt: skip
    for test, entry in summary.get("tests", {}).items():
        rows = entry.get("rows") or ([entry["row"]] if entry.get("row") else [])
        out.append(f"**{test}**\n\n" + _md(rows, specs.get(test, COMMON)))
        if test == "PT-06" and entry.get("arms"):
            out.append(_md(entry["arms"], TRACING_ARMS))
            arms = [a["tracing"] for a in entry["arms"]]
            out.append(_md(tracing_components(entry), [("component", "CPU ms per order (medians)", ""), *[(a, f"tracing {a}", ".2f") for a in arms]]))
        audit = entry.get("audit") or {}
        if audit.get("checks"):
            out.append("audit: " + "; ".join(f"{k} {'ok' if c['passed'] else 'FAILED'} ({c['detail']})" for k, c in audit["checks"].items()))
    return "\n\n".join(out)
