"""PT-05 Burst: a base load, a peak of many more users, the base again; how far latency and errors
rise during the peak, and how long after it latency and the backlog (outbox, consumer lag) take
to come back."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shopstream_tools.lab import drivers, plotting, stats
from shopstream_tools.lab.context import Lab
from shopstream_tools.lab.figures import backlog_series, cv, step_row
from shopstream_tools.lab.html import COMMON, LOADGEN, fmt, image, table
from shopstream_tools.lab.plan import Chart, PerformanceTest
from shopstream_tools.lab.plotting import plt
from shopstream_tools.lab.steps import measure

CHART = "7-burst"
CHART_TITLE = "Burst response and recovery (PT-05)"


def run(lab: Lab) -> list[dict[str, Any]]:
    p = lab.profile
    weights = {**lab.read_weights(), **({"place_order": 1} if lab.order_service else {})}
    phases = [
        (p.pt05_base_seconds, p.pt05_base_users),
        (p.pt05_peak_seconds, p.pt05_peak_users),
        (p.pt05_recovery_seconds, p.pt05_base_users),
    ]
    total = sum(s for s, _ in phases)
    drive = drivers.locust(
        lab, "PT-05", weights=weights, phases=phases, spawn_rate=max(p.pt05_peak_users, 1),
        think_seconds=p.pt05_think,
    )  # fmt: skip
    record = measure(lab, "PT-05", "burst", {"phases": phases, "think_s": p.pt05_think}, drive, total)
    drivers.attach_orders(lab, record)
    return [record]


def analyse(steps: list[dict[str, Any]], ceil: Mapping[str, float | None], machine_cores: float) -> dict[str, Any]:
    if not steps:
        return {}
    s = steps[0]
    load = s.get("load", {})
    phases = s.get("params", {}).get("phases") or []
    base_s = float(phases[0][0]) if phases else 0.0
    peak_end = base_s + (float(phases[1][0]) if len(phases) > 1 else 0.0)
    timeline = load.get("timeline", [])
    shift = 0.0
    if load.get("started_wall") and s.get("sampler_started_wall"):
        shift = float(load["started_wall"]) - float(s["sampler_started_wall"])
    times = [float(e["t"]) for e in timeline]
    p95 = [e.get("p95") for e in timeline]
    base = stats.median(v for t, v in zip(times, p95, strict=True) if 1 <= t <= base_s)
    threshold = 1.5 * base if base else None
    recovery = (
        stats.recovery_seconds(times, p95, peak_end, threshold) if threshold is not None else None
    )
    peak = [e for e in timeline if base_s < e["t"] <= peak_end]
    peak_requests = sum(e["requests"] for e in peak)
    peak_failures = sum(e["failures"] for e in peak)
    series = backlog_series(s)
    b_times = [t - shift for t, _, _ in series]
    b_total = [o + lag for _, o, lag in series]
    base_backlog = max((v for t, v in zip(b_times, b_total, strict=True) if t <= base_s), default=0.0)
    backlog_recovery = stats.recovery_seconds(b_times, b_total, peak_end, max(base_backlog, 10.0))
    rates = [e["requests"] for e in timeline]
    return {
        "row": step_row(s, ceil, ["nginx-fixed"]),
        "base_p95_ms": base,
        "threshold_ms": threshold,
        "peak_end_s": peak_end,
        "base_end_s": base_s,
        "recovery_seconds": recovery,
        "backlog_recovery_seconds": backlog_recovery,
        "peak_error_rate": peak_failures / peak_requests if peak_requests else None,
        "peak_p95_ms": max((e.get("p95") or 0 for e in peak), default=None),
        "peak_rate": stats.median(e["requests"] for e in peak) if peak else None,
        "base_rate": stats.median(e["requests"] for e in timeline if 1 <= e["t"] <= base_s),
        "rate_cv": (cv(rates) if rates else None),
        "timeline": timeline,
        "backlog": [(t, o, lag) for (t, o, lag) in ((bt, o, lag) for bt, (_, o, lag) in zip(b_times, series, strict=True))],
    }



def draw(summary: Mapping[str, Any], tests: Mapping[str, Any], path: Path) -> Path:
    entry = summary.get("tests", {}).get("PT-05") or {}
    timeline = entry.get("timeline") or []
    if not timeline:
        raise plotting.NoData(entry.get("skipped") or "PT-05 did not run")
    t = [e["t"] for e in timeline]
    fig, (ax, ax3) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True)
    ax.plot(t, [e["requests"] for e in timeline], color="#2471a3", label="requests/s")
    ax.plot(t, [e["failures"] for e in timeline], color="#c0392b", label="failures/s")
    ax.set_ylabel("per second")
    ax.axvspan(entry.get("base_end_s", 0), entry.get("peak_end_s", 0), color="#fdebd0", alpha=0.6, label="peak users")
    ax2 = ax.twinx()
    ax2.plot(t, [e.get("p95") for e in timeline], color="#d68910", label="p95 latency (ms)")
    ax2.set_ylabel("p95 latency (ms)")
    if entry.get("threshold_ms"):
        ax2.axhline(entry["threshold_ms"], color="#d68910", ls=":", lw=1)
    rec = entry.get("recovery_seconds")
    if rec is not None:
        ax.axvline(entry["peak_end_s"] + rec, color="#28b463", ls="--", label=f"recovered after {rec:.0f}s")
    lines = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax.legend(lines, [str(h.get_label()) for h in lines], fontsize=7, loc="upper left")
    backlog = entry.get("backlog") or []
    if backlog:
        ax3.plot([b[0] for b in backlog], [b[1] for b in backlog], label="outbox rows not yet published")
        ax3.plot([b[0] for b in backlog], [b[2] for b in backlog], label="consumer lag (messages)")
        ax3.legend(fontsize=7)
    ax3.axvspan(entry.get("base_end_s", 0), entry.get("peak_end_s", 0), color="#fdebd0", alpha=0.6)
    ax3.set_ylabel("queue depth")
    ax3.set_xlabel("seconds")
    fig.suptitle(CHART_TITLE)
    return plotting.save(fig, path)



def reading(summary: Mapping[str, Any]) -> str | None:
    e = summary.get("tests", {}).get("PT-05") or {}
    if not e.get("timeline"):
        return None
    rec, brec = e.get("recovery_seconds"), e.get("backlog_recovery_seconds")
    return (f"A {e.get('peak_rate') or 0:,.0f} req/s peak took p95 from {e.get('base_p95_ms') or 0:,.0f} to {e.get('peak_p95_ms') or 0:,.0f} ms "
            f"with {e.get('peak_error_rate') or 0:.1%} errors; latency was back "
            + (f"{rec:.0f} s" if rec is not None else "only after the run")
            + " after the peak, the backlog "
            + (f"{brec:.0f} s." if brec is not None else "not within the step."))  # fmt: skip


def section(entry: Mapping[str, Any], charts: Mapping[str, Mapping[str, str]], shown: set[str]) -> list[str]:
    rows = [entry["row"]] if entry.get("row") else []
    parts = [table(rows, [*COMMON, ("x nginx-fixed", "x nginx", ".4f"), *LOADGEN])]
    parts.append(
        "<p>"
        f"Base p95 {fmt(entry.get('base_p95_ms'), ',.1f')} ms; peak p95 {fmt(entry.get('peak_p95_ms'), ',.1f')} ms; "
        f"error rate during the peak {fmt(entry.get('peak_error_rate'), '.2%')}; "
        f"throughput per second: base median {fmt(entry.get('base_rate'))}, peak median {fmt(entry.get('peak_rate'))} (coefficient of variation {fmt(entry.get('rate_cv'), '.2f')}); "
        f"<b>latency recovered {fmt(entry.get('recovery_seconds'), '.0f')} s</b> after the peak (p95 back under 1.5x the base for 3 s); "
        f"<b>backlog recovered {fmt(entry.get('backlog_recovery_seconds'), '.0f')} s</b> after it.</p>"
    )
    parts.append(image(charts[CHART], shown))
    return parts


MARKDOWN = [*COMMON, ("x nginx-fixed", "x nginx", ".4f"), ("loadgen", "load gen", ""), ("loadgen_cores", "its cores", ".2f"), ("other_cores", "other work, cores", ".2f")]
TEST = PerformanceTest("PT-05", "Burst", run, analyse, {CHART: Chart(CHART_TITLE, draw, reading)}, section, MARKDOWN)
