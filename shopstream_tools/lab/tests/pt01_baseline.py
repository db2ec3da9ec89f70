"""PT-01 Baseline: concurrency vs throughput. Locust users reading the catalog (search, by id,
the customer's orders) with think time, at growing user counts; the saturation point is where
throughput growing as at the lightest load would reach the best measured."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shopstream_tools.lab import drivers, plotting, stats
from shopstream_tools.lab.context import Lab
from shopstream_tools.lab.figures import step_row
from shopstream_tools.lab.html import COMMON, LOADGEN, fmt, image, table
from shopstream_tools.lab.plan import Chart, PerformanceTest
from shopstream_tools.lab.plotting import plt
from shopstream_tools.lab.steps import measure

CHART = "1-concurrency-throughput"
CHART_TITLE = "Concurrency vs throughput (PT-01)"


def run(lab: Lab) -> list[dict[str, Any]]:
    p = lab.profile
    done = []
    for users in p.pt01_users:
        drive = drivers.closed_loop(
            lab, "PT-01", f"PT-01-u{users}", weights=lab.read_weights(), users=users,
            spawn_rate=max(users, 1), seconds=p.pt01_seconds, think_seconds=p.pt01_think,
        )  # fmt: skip
        done.append(measure(lab, "PT-01", f"users={users}", {"users": users, "think_s": p.pt01_think}, drive, p.pt01_seconds, drain=False))
    return done



def analyse(steps: list[dict[str, Any]], ceil: Mapping[str, float | None], machine_cores: float) -> dict[str, Any]:
    rows = [step_row(s, ceil, ["nginx-fixed", "pgbench-read-mix"]) for s in steps]
    points = [(float(r["users"]), float(r["ok_rate"] or 0)) for r in rows]
    knee = stats.saturation_point(points)
    best = max(rows, key=lambda r: r["ok_rate"] or 0) if rows else None
    return {
        "rows": rows,
        "saturation": (
            {"users": knee, "ok_rate": best["ok_rate"], "best_at_users": best["users"]}
            if knee is not None and best
            else None
        ),
        "ideal": stats.ideal_line(points),
    }



def draw(summary: Mapping[str, Any], tests: Mapping[str, Any], path: Path) -> Path:
    rows = plotting.rows_of(summary, "PT-01")
    entry = summary["tests"]["PT-01"]
    users = [r["users"] for r in rows]
    rate = [r["ok_rate"] or 0 for r in rows]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(users, rate, "o-", color="#2471a3", label="measured throughput")
    ideal = entry.get("ideal") or []
    if ideal:
        ax.plot([n for n, _ in ideal], [x for _, x in ideal], "--", color="grey", label="linear from the first point")
    sat = entry.get("saturation")
    if sat:
        ax.axvline(sat["users"], color="#c0392b", ls=":", label=f"saturation: ~{sat['users']:.0f} users ({sat['ok_rate']:,.0f} req/s at best)")
        ax.axhline(sat["ok_rate"], color="#c0392b", ls=":", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("concurrent users (log)")
    ax.set_ylabel("successful requests/s")
    ax.set_ylim(0, max(rate) * 1.3 if max(rate) > 0 else 1)
    ax2 = ax.twinx()
    ax2.plot(users, [r["p95_ms"] or 0 for r in rows], "s--", color="#d68910", label="p95 latency")
    ax2.set_ylabel("p95 latency (ms)")
    lines = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax.legend(lines, [str(h.get_label()) for h in lines], loc="upper left", fontsize=8)
    ax.set_title(CHART_TITLE)
    return plotting.save(fig, path)



def reading(summary: Mapping[str, Any]) -> str | None:
    entry = summary.get("tests", {}).get("PT-01") or {}
    rows, sat = entry.get("rows") or [], entry.get("saturation")
    if not rows or not sat:
        return None
    last = rows[-1]
    return (f"Reads stop scaling at about {sat['users']:,.0f} users ({sat['ok_rate']:,.0f} req/s at best, "
            f"{max((r.get('x pgbench-read-mix') or 0) for r in rows):.0%} of what PostgreSQL alone serves); past it only "
            f"latency grows (p95 {last.get('p95_ms') or 0:,.0f} ms at {last['users']} users).")  # fmt: skip


def section(entry: Mapping[str, Any], charts: Mapping[str, Mapping[str, str]], shown: set[str]) -> list[str]:
    rows = entry.get("rows") or []
    parts = [table(rows, [*COMMON, ("x nginx-fixed", "x nginx", ".4f"), ("x pgbench-read-mix", "x pgbench", ".3f"), *LOADGEN, ("machine_cores", "machine cores", ".2f")])]
    sat = entry.get("saturation")
    if sat:
        parts.append(
            f"<p>Saturation point: <b>about {fmt(sat['users'])} users</b>, where throughput growing as at the lightest load "
            f"would reach the best measured, {fmt(sat['ok_rate'])} req/s (at {fmt(sat['best_at_users'])} users). Past it, more users only queue.</p>"
        )
    parts.append(image(charts[CHART], shown))
    return parts


MARKDOWN = [*COMMON, ("x nginx-fixed", "x nginx", ".4f"), ("x pgbench-read-mix", "x pgbench", ".3f"), ("loadgen", "load gen", ""), ("loadgen_cores", "its cores", ".2f"), ("other_cores", "other work, cores", ".2f")]
TEST = PerformanceTest("PT-01", "Baseline: concurrency vs throughput", run, analyse, {CHART: Chart(CHART_TITLE, draw, reading)}, section, MARKDOWN)
