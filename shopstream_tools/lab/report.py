"""One self-contained HTML report: the charts inlined as PNG data, every figure absolute and as a
ratio to the same run's ceilings, the load generator's cost, the audits, the models' fit and
the caveats. No external file, script or font: it opens anywhere and can be mailed."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shopstream_tools.lab.html import COMMON, audit_block, esc, fmt, image, md_table, table
from shopstream_tools.lab.tests import REGISTRY
from shopstream_tools.lab.tests.pt06_tracing import TRACING_ARMS, tracing_components

CSS = """
body{font-family:system-ui,sans-serif;max-width:1150px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.85em}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}th{background:#f4f6f7}
td.l,th.l{text-align:left}.ok{color:#1e8449;font-weight:600}.bad{color:#c0392b;font-weight:600}
.note{background:#fef9e7;border-left:4px solid #f4d03f;padding:.5em 1em;margin:1em 0}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}.reading{font-weight:600;margin:.2em 0 1.2em}code{font-size:.9em}
"""



def test_section(
    test: str, entry: Mapping[str, Any], charts: Mapping[str, Mapping[str, str]], shown: set[str]
) -> str:
    known = REGISTRY.get(test)
    parts = [f"<h2>{esc(test)} {esc(known.title if known else '')}</h2>"]
    if entry.get("skipped"):
        return parts[0] + f"<p class=note>Skipped: {esc(entry['skipped'])}</p>"
    if entry.get("error"):
        parts.append(f"<p class=note>Stopped by an error: {esc(entry['error'])}</p>")
    if entry.get("interrupted"):
        parts.append("<p class=note>Interrupted (Ctrl-C): the steps below are what was measured.</p>")
    if known:
        parts += known.section(entry, charts, shown)
    parts.append(audit_block(entry.get("audit")))
    return "\n".join(parts)


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
    parts += [image(charts[c], shown) for c in ("5-resource-heatmap", "11-memory-over-time") if c in charts]
    parts.append(memory_table(summary))
    # drawn from another test's figures while the test that shows it did not run
    parts += [image(c, shown) for c in charts.values() if "path" in c and c["title"] not in shown]
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
def markdown(summary: Mapping[str, Any]) -> str:
    """The run's main tables in Markdown (figures, ratios, load generator cost, audits)."""
    out = []
    csum = summary.get("ceilings", {})
    out.append(md_table(
        [{"name": k, "median": v["median"], "unit": v["unit"], "rounds": " / ".join(fmt(x) for x in v["rounds"]), "lg": v.get("loadgen_cores")} for k, v in csum.items()],
        [("name", "ceiling", ""), ("median", "median", ",.0f"), ("unit", "unit", ""), ("rounds", "per round", ""), ("lg", "generator cores", ".2f")],
    ))  # fmt: skip
    for test, entry in summary.get("tests", {}).items():
        rows = entry.get("rows") or ([entry["row"]] if entry.get("row") else [])
        out.append(f"**{test}**\n\n" + md_table(rows, REGISTRY[test].markdown if test in REGISTRY else COMMON))
        if test == "PT-06" and entry.get("arms"):
            out.append(md_table(entry["arms"], TRACING_ARMS))
            arms = [a["tracing"] for a in entry["arms"]]
            out.append(md_table(tracing_components(entry), [("component", "CPU ms per order (medians)", ""), *[(a, f"tracing {a}", ".2f") for a in arms]]))
        audit = entry.get("audit") or {}
        if audit.get("checks"):
            out.append("audit: " + "; ".join(f"{k} {'ok' if c['passed'] else 'FAILED'} ({c['detail']})" for k, c in audit["checks"].items()))
    return "\n\n".join(out)
