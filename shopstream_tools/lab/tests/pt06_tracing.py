"""PT-06 Tracing cost: the same async order load with tracing off and at the configured sample
ratio, repeated with the order alternating so drift on the shared machine hits both alike; the
cost as a ratio of medians and per repeat, with the noise it sits in, and CPU per order by
component."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from shopstream_tools.lab import drivers, plotting, stats, testbed
from shopstream_tools.lab.context import Lab
from shopstream_tools.lab.figures import INSTANCE, step_row
from shopstream_tools.lab.html import COMMON, LOADGEN, esc, fmt, image, table
from shopstream_tools.lab.plan import Chart, PerformanceTest
from shopstream_tools.lab.plotting import plt
from shopstream_tools.lab.steps import measure

CHART = "9-tracing-cost"
CHART_TITLE = "Tracing cost: off vs the default sample ratio (PT-06)"


def run(lab: Lab) -> list[dict[str, Any]]:
    """The same async order load (closed loop, fixed users, no think time, same length) with
    tracing off and at the configured ratio, repeated with the order alternating (off, on; on,
    off; ...) so drift on the shared machine hits both alike. Every step starts from freshly
    restarted service processes, whichever the setting."""
    p = lab.profile
    ratio = lab.settings.tracing_sample_ratio
    arms: list[tuple[str, float | None]] = [("off", None), (f"{ratio:g}", ratio)]
    done = []
    try:
        for repeat in range(1, p.pt06_repeats + 1):
            for label, arm in arms if repeat % 2 else arms[::-1]:
                lab.check_stop()
                lab.settings = testbed.set_tracing(lab.settings, arm, lab.log)
                name = f"PT-06-{'off' if arm is None else 'on'}-r{repeat}"
                drive = drivers.locust(
                    lab, name, weights={"place_order": 1}, users=p.pt06_users,
                    spawn_rate=max(p.pt06_users, 1), seconds=p.pt06_seconds, think_seconds=0.0, mode="async",
                )  # fmt: skip
                params = {"tracing": label, "ratio": arm, "repeat": repeat, "users": p.pt06_users, "mode": "async"}
                record = measure(lab, "PT-06", f"tracing {label} #{repeat}", params, drive, p.pt06_seconds)
                drivers.attach_orders(lab, record)
                done.append(record)
    finally:  # the other tests measure the services without tracing, and without Zipkin
        lab.settings = testbed.set_tracing(lab.settings, None, lab.log)
        testbed.stop_zipkin(lab.settings)
    return done




# Not the platform's work: the machine total, the lab's own sampling, the load generator.
NOT_PLATFORM = ("machine", "lab", "loadgen")
# Where tracing's CPU lands: every process that makes spans, and the server that receives them.
TRACING_GROUPS = ("order instances", "product instances", "relays", "consumers", "postgres", "kafka", "zipkin", "gateway, prometheus")


def tracing_group(process: str) -> str:
    match = INSTANCE.match(process)
    if match:
        return f"{match.group(1)} instances"
    if process.endswith("-relay"):
        return "relays"
    if process.endswith("-consume"):
        return "consumers"
    return process if process in TRACING_GROUPS else "gateway, prometheus"


def analyse(steps: list[dict[str, Any]], ceil: Mapping[str, float | None], machine_cores: float) -> dict[str, Any]:
    """Tracing off against on, each a median over its repeats; the cost as the ratio of the
    medians, and as the median of each repeat's own on/off ratio (the two arms of a repeat ran
    back to back, so drift on the machine hits them alike)."""
    rows = []
    for s in steps:
        row = step_row(s, ceil, ["nginx-fixed", "pgbench-order-path"])
        cores = s.get("cpu_cores", {})
        ok = row["ok_rate"] or 0.0
        platform = sum(v for k, v in cores.items() if k not in NOT_PLATFORM)
        order = sum(v for k, v in cores.items() if INSTANCE.match(k) and k.startswith("order-"))
        row["platform_cores"] = platform
        row["zipkin_cores"] = cores.get("zipkin", 0.0)
        row["platform_ms_per_order"] = 1000 * platform / ok if ok else None
        row["order_ms_per_order"] = 1000 * order / ok if ok else None
        row["zipkin_ms_per_order"] = 1000 * row["zipkin_cores"] / ok if ok else None
        groups: dict[str, float] = dict.fromkeys(TRACING_GROUPS, 0.0)
        for name, value in cores.items():
            if name not in NOT_PLATFORM:
                groups[tracing_group(name)] += value
        row["ms_per_order"] = {g: 1000 * v / ok for g, v in groups.items()} if ok else {}
        conf = (s.get("orders") or {}).get("accepted_to_confirmed_ms") or {}
        row["e2e_p50_ms"] = conf.get("p50")
        row["e2e_p95_ms"] = conf.get("p95")
        rows.append(row)
    labels = list(dict.fromkeys(r["tracing"] for r in rows))
    keys = ("ok_rate", "p50_ms", "p95_ms", "e2e_p50_ms", "platform_ms_per_order", "order_ms_per_order",
            "zipkin_ms_per_order", "loadgen_cores", "other_cores", "x nginx-fixed", "x pgbench-order-path")  # fmt: skip
    arms = []
    for label in labels:
        mine = [r for r in rows if r["tracing"] == label]
        rates = [r["ok_rate"] for r in mine if r["ok_rate"]]
        arm: dict[str, Any] = {"tracing": label, "ratio": mine[0].get("ratio"), "repeats": len(mine)}
        arm |= {k: stats.median(r.get(k) for r in mine) for k in keys}
        arm["ms_per_order"] = {
            g: stats.median(r["ms_per_order"].get(g) for r in mine if r["ms_per_order"]) for g in TRACING_GROUPS
        }
        arm["ok_rate_min"] = min(rates, default=None)
        arm["ok_rate_max"] = max(rates, default=None)
        arms.append(arm)
    out: dict[str, Any] = {"rows": rows, "arms": arms}
    off = next((a for a in arms if a["tracing"] == "off"), None)
    on = next((a for a in arms if a["tracing"] != "off"), None)
    if off and on:
        paired = []
        for repeat in sorted({r["repeat"] for r in rows}):
            x_off = next((r["ok_rate"] for r in rows if r["repeat"] == repeat and r["tracing"] == "off"), None)
            x_on = next((r["ok_rate"] for r in rows if r["repeat"] == repeat and r["tracing"] != "off"), None)
            if x_off and x_on:
                paired.append(x_on / x_off)
        out["cost"] = {
            "tracing": on["tracing"],
            "throughput_ratio": stats.ratio(on["ok_rate"], off["ok_rate"]),
            "paired_ratios": paired,
            "paired_median": stats.median(paired),
            "p50_ratio": stats.ratio(on["p50_ms"], off["p50_ms"]),
            "p95_ratio": stats.ratio(on["p95_ms"], off["p95_ms"]),
            "cpu_per_order_ratio": stats.ratio(on["platform_ms_per_order"], off["platform_ms_per_order"]),
            # how far apart the repeats of the same setting were: the noise the ratio sits in
            "off_spread": stats.ratio(off["ok_rate_max"], off["ok_rate_min"]),
            "on_spread": stats.ratio(on["ok_rate_max"], on["ok_rate_min"]),
        }
    return out



def draw(summary: Mapping[str, Any], tests: Mapping[str, Any], path: Path) -> Path:
    rows = plotting.rows_of(summary, "PT-06")
    entry = summary["tests"]["PT-06"]
    arms = entry.get("arms") or []
    if len(arms) < 2:
        raise plotting.NoData("PT-06 measured only one setting")
    labels = [a["tracing"] for a in arms]
    names = ["tracing off" if t == "off" else f"tracing at {t}" for t in labels]
    colors = ["#7f8c8d" if t == "off" else "#2471a3" for t in labels]
    x = np.arange(len(arms))
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.5))
    ax.bar(x, [a["ok_rate"] or 0 for a in arms], 0.55, color=colors, alpha=0.8, label="median")
    for i, t in enumerate(labels):
        mine = [r["ok_rate"] or 0 for r in rows if r["tracing"] == t]
        ax.plot([i] * len(mine), mine, "o", color="black", ms=4, label="each repeat" if i == 0 else None)
    cost = entry.get("cost") or {}
    if cost.get("throughput_ratio") is not None:
        ax.set_title(f"Accepted orders/s: on/off = {cost['throughput_ratio']:.2f} (medians), "
                     f"{cost.get('paired_median') or float('nan'):.2f} (per repeat)", fontsize=9)  # fmt: skip
    ax.set_xticks(x, names)
    ax.set_ylabel("async orders accepted/s (closed loop)")
    ax.legend(fontsize=8, loc="lower right")
    groups = list((arms[0].get("ms_per_order") or {}).keys())
    palette = plt.get_cmap("tab10")
    bottom = np.zeros(len(arms))
    for i, group in enumerate(groups):
        vals = np.array([(a.get("ms_per_order") or {}).get(group) or 0.0 for a in arms])
        ax2.bar(x, vals, 0.55, bottom=bottom, color=palette(i), label=group)
        bottom += vals
    ax2.set_xticks(x, names)
    ax2.set_ylabel("CPU ms per accepted order (medians)")
    ax2.set_title("CPU per order by component, whole platform", fontsize=9)
    ax2.set_ylim(0, max(bottom.max(), 1e-9) * 1.45)  # room for the legend above the bars
    ax2.legend(fontsize=7, loc="upper left", ncol=3)
    fig.suptitle(CHART_TITLE)
    return plotting.save(fig, path)



def reading(summary: Mapping[str, Any]) -> str | None:
    cost = (summary.get("tests", {}).get("PT-06") or {}).get("cost")
    if not cost or cost.get("throughput_ratio") is None:
        return None
    noise = max(cost.get("off_spread") or 1, cost.get("on_spread") or 1)
    verdict = "within the noise" if abs(1 - cost["throughput_ratio"]) < noise - 1 else "beyond the noise"
    return (f"Tracing at {cost['tracing']} gives {cost['throughput_ratio']:.2f}x the orders/s of tracing off and "
            f"{cost.get('cpu_per_order_ratio') or 0:.2f}x the CPU per order; repeats of one setting differ by up to "
            f"{noise:.2f}x, so the cost is {verdict}.")  # fmt: skip


def section(entry: Mapping[str, Any], charts: Mapping[str, Mapping[str, str]], shown: set[str]) -> list[str]:
    rows = entry.get("rows") or []
    parts = [table(rows, [*COMMON[:6], ("e2e_p50_ms", "accepted->confirmed p50", ",.0f"), ("platform_ms_per_order", "platform CPU ms/order", ".2f"), ("zipkin_cores", "Zipkin cores", ".2f"), ("x pgbench-order-path", "x pgbench", ".3f"), *LOADGEN])]
    return [*parts, table(entry.get("arms") or [], TRACING_ARMS), tracing_block(entry), image(charts[CHART], shown)]


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



MARKDOWN = [*COMMON[:5], ("e2e_p50_ms", "accepted->confirmed p50 ms", ",.0f"), ("platform_ms_per_order", "platform CPU ms/order", ".2f"), ("zipkin_cores", "Zipkin cores", ".2f"), ("x pgbench-order-path", "x pgbench", ".3f"), ("prom_requests", "requests Prometheus saw", ",.0f"), ("loadgen", "load gen", ""), ("loadgen_cores", "its cores", ".2f"), ("other_cores", "other work, cores", ".2f")]
TEST = PerformanceTest("PT-06", "Tracing cost", run, analyse, {CHART: Chart(CHART_TITLE, draw, reading)}, section, MARKDOWN, needs_orders=True)
