"""The charts of the test plan, drawn from a run's summary as PNG files. Each test's own charts are
in its module (``shopstream_tools.lab.tests``); here the one spanning every test, the resource
heatmap, and ``draw_all``:

1. concurrency vs throughput, with the saturation point (PT-01)
2. sync vs async: throughput bars and latency lines (PT-02)
3. instances vs throughput, with ideal scaling and the models (PT-03)
4. end-to-end event latency: per-stage breakdown, and consumer lag over time (PT-02, PT-04)
5. resource heatmap per component (every step of every test)
6. percentile distribution per strategy (PT-02 open loop: sync vs async)
7. burst response curve, with recovery and queue depth (PT-05)
8. partitions vs throughput, with the message distribution (PT-04)
9. tracing's cost: throughput and CPU per order, tracing off vs on, every repeat (PT-06)

A chart whose test did not run (or measured nothing) is not drawn; ``draw_all`` says why.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from shopstream_tools.lab.plan import Chart
from shopstream_tools.lab.plotting import NoData, plt, save
from shopstream_tools.lab.tests import REGISTRY

HEATMAP = "5-resource-heatmap"


def resource_heatmap(summary: Mapping[str, Any], tests: Mapping[str, Any], path: Path) -> Path:
    hm = summary.get("heatmap") or {}
    cols = hm.get("columns") or []
    cpu = hm.get("cpu") or {}
    if not cols or not cpu:
        raise NoData("no step was sampled")
    names = sorted(cpu, key=lambda k: -np.nanmean([v if v is not None else np.nan for v in cpu[k]] or [0]))
    data = np.array([[v if v is not None else np.nan for v in cpu[n]] for n in names], dtype=float)
    fig, ax = plt.subplots(figsize=(max(8, 0.55 * len(cols) + 3), 0.38 * len(names) + 2.5))
    im = ax.imshow(data, aspect="auto", cmap="YlOrRd", vmin=0, vmax=max(1.0, float(np.nanmax(data))))
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xticks(range(len(cols)), cols, rotation=60, ha="right", fontsize=7)
    for i in range(len(names)):
        for j in range(len(cols)):
            if not np.isnan(data[i, j]) and data[i, j] >= 0.05:
                ax.text(j, i, f"{data[i, j]:.2f}", ha="center", va="center", fontsize=6)
    fig.colorbar(im, ax=ax, label="mean cores while the load ran")
    ax.set_title(CHARTS[HEATMAP])
    return save(fig, path)


ACROSS_TESTS = {HEATMAP: Chart("CPU per component, every step", resource_heatmap)}
ALL: dict[str, Chart] = dict(
    sorted([*ACROSS_TESTS.items(), *((n, c) for t in REGISTRY.values() for n, c in t.charts.items())])
)
CHARTS = {name: chart.title for name, chart in ALL.items()}


def draw_all(summary: Mapping[str, Any], tests: Mapping[str, Any], folder: Path) -> dict[str, dict[str, str]]:
    """Every chart: {name: {"title", "path"} or {"title", "missing": why}}."""
    folder.mkdir(parents=True, exist_ok=True)
    made: dict[str, dict[str, str]] = {}
    for name, chart in ALL.items():
        try:
            made[name] = {"title": chart.title, "path": str(chart.draw(summary, tests, folder / f"{name}.png"))}
        except NoData as why:
            made[name] = {"title": chart.title, "missing": str(why)}
        except Exception as exc:  # a chart that fails must not lose the run's results
            plt.close("all")
            made[name] = {"title": chart.title, "missing": f"failed: {type(exc).__name__}: {exc}"}
    return made
