"""The charts of the test plan, drawn from a run's summary as PNG files. Each test's own charts are
in its module (``shopstream_tools.lab.tests``), the resource charts in ``resources``; here the
percentiles across processing strategies, and ``draw_all``:

1. concurrency vs throughput, with the saturation point (PT-01)
2. sync vs async: throughput and latency; CPU and memory per process per mode and user count (PT-02)
3. instances vs throughput, with ideal scaling and the models (PT-03)
4. end-to-end event latency: per-stage breakdown, and consumer lag until it is back to zero (PT-02, PT-04)
5. heatmaps of CPU and memory per component (every step of every test)
6. p50/p90/p95/p99 per processing strategy: sync, async, async on each partition count (PT-02, PT-04)
7. burst response curve, with recovery and queue depth (PT-05)
8. partitions vs throughput, with the message distribution (PT-04)
9. tracing's cost: throughput and CPU per order, tracing off vs on, every repeat (PT-06)
10. CPU per order by stage of the pipeline (PT-02)
11. memory over the run, per component

Each chart comes with the one sentence it proves (``Chart.reading``), computed from the same
figures; the report prints it under the chart and the slide deck puts it on the slide. A chart
whose test did not run (or measured nothing) is not drawn; ``draw_all`` says why.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from shopstream_tools.lab import resources
from shopstream_tools.lab.plan import Chart
from shopstream_tools.lab.plotting import NoData, plt, save
from shopstream_tools.lab.tests import REGISTRY

PERCENTILES = "6-percentiles"
PERCENTILES_TITLE = "Latency percentiles per processing strategy (PT-02, PT-04)"
LEVELS = (("p50_ms", "p50"), ("p90_ms", "p90"), ("p95_ms", "p95"), ("p99_ms", "p99"))


def strategies(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per strategy compared: sync and async at the same open-loop rate (PT-02), async on
    each partition count at the same rate (PT-04)."""
    tests = summary.get("tests", {})
    out = []
    for r in (tests.get("PT-02") or {}).get("rows") or []:
        if r.get("loop") == "open":
            out.append({**r, "strategy": f"{r.get('mode')}, open loop {r.get('rate') or 0:g}/s"})
    for r in (tests.get("PT-04") or {}).get("rows") or []:
        out.append({**r, "strategy": f"async, {r.get('partitions')} partition(s), {r.get('rate') or 0:g}/s"})
    return [r for r in out if r.get("p50_ms")]


def percentiles(summary: Mapping[str, Any], tests: Mapping[str, Any], path: Path) -> Path:
    rows = strategies(summary)
    if not rows:
        raise NoData("neither PT-02's open-loop steps nor PT-04 ran")
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(13, 4.8))
    x = np.arange(len(rows))
    width = 0.8 / len(LEVELS)
    shades = plt.get_cmap("Blues")(np.linspace(0.35, 0.95, len(LEVELS)))
    for i, (key, label) in enumerate(LEVELS):
        ax.bar(x + (i - 1.5) * width, [r.get(key) or 0 for r in rows], width, color=shades[i], label=label)
    ax.set_xticks(x, [r["strategy"] for r in rows], rotation=25, ha="right", fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("response latency (ms, log)")
    ax.set_title("Response: POST /orders answered", fontsize=10)
    ax.legend(fontsize=8)
    e2e = [r for r in rows if r.get("e2e_p50_ms")]
    if e2e:
        x2 = np.arange(len(e2e))
        keys = (("e2e_p50_ms", "p50"), ("e2e_p95_ms", "p95"), ("e2e_p99_ms", "p99"))
        for i, (key, label) in enumerate(keys):
            ax2.bar(x2 + (i - 1) * 0.27, [r.get(key) or 0 for r in e2e], 0.27, color=shades[i + 1], label=label)
        ax2.set_xticks(x2, [r["strategy"] for r in e2e], rotation=25, ha="right", fontsize=8)
        ax2.set_yscale("log")
        ax2.legend(fontsize=8)
    else:
        ax2.text(0.5, 0.5, "no order reached a terminal state", ha="center", transform=ax2.transAxes)
    ax2.set_ylabel("accepted -> confirmed (ms, log)")
    ax2.set_title("End to end: accepted to confirmed", fontsize=10)
    fig.suptitle(PERCENTILES_TITLE)
    return save(fig, path)


def percentiles_reading(summary: Mapping[str, Any]) -> str | None:
    rows = {r.get("mode"): r for r in strategies(summary) if r["strategy"].endswith("/s") and "open" in r["strategy"]}
    sync, asyn = rows.get("sync"), rows.get("async")
    if sync and asyn and sync.get("p99_ms") and asyn.get("p99_ms"):
        return (f"At the same {asyn.get('rate') or 0:g} orders/s, async answers p99 in {asyn['p99_ms']:,.0f} ms against sync's "
                f"{sync['p99_ms']:,.0f} ms; its orders are confirmed p99 {asyn.get('e2e_p99_ms') or 0:,.0f} ms after acceptance.")  # fmt: skip
    return None


ACROSS_TESTS = {
    resources.HEATMAP: Chart(resources.HEATMAP_TITLE, resources.resource_heatmap, resources.heatmap_reading),
    PERCENTILES: Chart(PERCENTILES_TITLE, percentiles, percentiles_reading),
    resources.COST: Chart(resources.COST_TITLE, resources.cost_per_stage, resources.cost_reading),
    resources.MEMORY: Chart(resources.MEMORY_TITLE, resources.memory_over_time, resources.memory_reading),
}
ALL: dict[str, Chart] = dict(
    sorted(
        [*ACROSS_TESTS.items(), *((n, c) for t in REGISTRY.values() for n, c in t.charts.items())],
        key=lambda item: (int(item[0].split("-", 1)[0]), item[0]),
    )
)
CHARTS = {name: chart.title for name, chart in ALL.items()}


def draw_all(summary: Mapping[str, Any], tests: Mapping[str, Any], folder: Path) -> dict[str, dict[str, str]]:
    """Every chart: {name: {"title", "path", "reading"} or {"title", "missing": why}}."""
    folder.mkdir(parents=True, exist_ok=True)
    made: dict[str, dict[str, str]] = {}
    for name, chart in ALL.items():
        try:
            made[name] = {"title": chart.title, "path": str(chart.draw(summary, tests, folder / f"{name}.png"))}
        except NoData as why:
            made[name] = {"title": chart.title, "missing": str(why)}
            continue
        except Exception as exc:  # a chart that fails must not lose the run's results
            plt.close("all")
            made[name] = {"title": chart.title, "missing": f"failed: {type(exc).__name__}: {exc}"}
            continue
        try:
            reading = chart.reading(summary)
        except Exception as exc:  # a sentence that fails must not lose the chart
            reading = f"(no reading: {type(exc).__name__}: {exc})"
        if reading:
            made[name]["reading"] = reading
    return made
