"""Where the machine's CPU and memory went, across every test: the heatmaps of CPU and memory per
component and step (chart 5), memory over the whole run (chart 11), and what one order costs
each stage of the pipeline in CPU (chart 10, the figure the performance work is steered by)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from shopstream_tools.lab.figures import INSTANCE
from shopstream_tools.lab.plotting import NoData, plt, save

HEATMAP, COST, MEMORY = "5-resource-heatmap", "10-cost-per-stage", "11-memory-over-time"
HEATMAP_TITLE = "CPU and memory per component, every step"
COST_TITLE = "CPU per order by stage of the pipeline (PT-02)"
MEMORY_TITLE = "Memory over the run, per component"

# The pipeline's stages in the order an order meets them; the lab's own processes are not stages.
STAGES = ("gateway", "order-service HTTP", "order outbox relay", "product saga consumer", "product outbox relay",
          "order saga consumer", "product-service HTTP", "PostgreSQL", "Kafka", "observability")  # fmt: skip
STAGE_COLORS = {name: plt.get_cmap("tab10")(i) for i, name in enumerate(STAGES)}
NOT_THE_PLATFORM = ("machine", "lab", "loadgen")


def stage(process: str) -> str:
    match = INSTANCE.match(process)
    if match:
        return f"{match.group(1)}-service HTTP"
    service, _, kind = process.partition("-")
    if kind.startswith("relay"):
        return f"{service} outbox relay"
    if kind.startswith("consume"):
        return f"{service} saga consumer"
    return {"gateway": "gateway", "postgres": "PostgreSQL", "kafka": "Kafka"}.get(process, "observability")


def cost_rows(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """CPU ms per order by stage, for each closed-loop step of PT-02 (cores while the load ran,
    divided by the orders answered per second)."""
    out = []
    for r in (summary.get("tests", {}).get("PT-02") or {}).get("rows") or []:
        ok = r.get("ok_rate") or 0.0
        if r.get("loop") != "closed" or ok <= 0 or not r.get("cpu_cores"):
            continue
        ms: dict[str, float] = dict.fromkeys(STAGES, 0.0)
        for name, cores in r["cpu_cores"].items():
            if name not in NOT_THE_PLATFORM:
                ms[stage(name)] += 1000 * cores / ok
        out.append({"step": r["step"], "mode": r.get("mode"), "users": r.get("users"), "ms": ms, "total": sum(ms.values())})
    return out


def cost_per_stage(summary: Mapping[str, Any], tests: Mapping[str, Any], path: Path) -> Path:
    rows = cost_rows(summary)
    if not rows:
        raise NoData("PT-02 measured no closed-loop step with CPU samples")
    fig, ax = plt.subplots(figsize=(10, 0.5 * len(rows) + 2.4))
    labels = [r["step"] for r in rows]
    left = np.zeros(len(rows))
    for name in STAGES:
        vals = np.array([r["ms"][name] for r in rows])
        ax.barh(labels, vals, left=left, color=STAGE_COLORS[name], label=name)
        left += vals
    for i, r in enumerate(rows):
        ax.text(r["total"], i, f" {r['total']:.1f} ms", va="center", fontsize=8)
    ax.set_xlabel("CPU ms per order answered (all platform processes; load generator excluded)")
    ax.set_xlim(0, left.max() * 1.25)
    ax.invert_yaxis()
    ax.legend(fontsize=7, ncol=5, loc="upper center", bbox_to_anchor=(0.5, -0.18))
    ax.set_title(COST_TITLE)
    return save(fig, path)


def cost_reading(summary: Mapping[str, Any]) -> str | None:
    rows = cost_rows(summary)
    if not rows:
        return None
    by_mode = {m: min((r for r in rows if r["mode"] == m), key=lambda r: r["total"], default=None) for m in ("sync", "async")}
    a, s = by_mode["async"], by_mode["sync"]
    best = a or s
    assert best is not None
    top = max(best["ms"], key=lambda k: best["ms"][k])
    text = f"An {best['mode']} order costs {best['total']:.1f} ms of CPU across the platform at best ({best['step']}); {top} is the largest stage ({best['ms'][top]:.1f} ms)"
    if a and s:
        text += f"; a sync order costs {s['total']:.1f} ms"
    return text + "."


def _heat(ax: Any, names: list[str], cols: list[str], data: np.ndarray, cmap: str, fmt: str, floor: float) -> Any:
    im = ax.imshow(data, aspect="auto", cmap=cmap, vmin=0, vmax=max(floor, float(np.nanmax(data)) if data.size else floor))
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xticks(range(len(cols)), cols, rotation=60, ha="right", fontsize=7)
    for i in range(len(names)):
        for j in range(len(cols)):
            if not np.isnan(data[i, j]) and data[i, j] >= floor / 20:
                ax.text(j, i, format(data[i, j], fmt), ha="center", va="center", fontsize=6)
    return im


def _matrix(table: Mapping[str, list[float | None]]) -> tuple[list[str], np.ndarray]:
    names = sorted(table, key=lambda k: -np.nanmean([v if v is not None else np.nan for v in table[k]] or [0]))
    return names, np.array([[v if v is not None else np.nan for v in table[n]] for n in names], dtype=float)


def resource_heatmap(summary: Mapping[str, Any], tests: Mapping[str, Any], path: Path) -> Path:
    hm = summary.get("heatmap") or {}
    cols, cpu, mem = hm.get("columns") or [], hm.get("cpu") or {}, hm.get("pss_mb") or {}
    if not cols or not cpu:
        raise NoData("no step was sampled")
    panels = [("cpu", cpu)] + ([("mem", mem)] if mem else [])
    height = sum(0.38 * len(t) + 2.6 for _, t in panels)
    fig, axes = plt.subplots(len(panels), 1, figsize=(max(8, 0.55 * len(cols) + 3), height), squeeze=False)
    for ax, (kind, table) in zip(axes[:, 0], panels, strict=True):
        names, data = _matrix(table)
        if kind == "cpu":
            im = _heat(ax, names, cols, data, "YlOrRd", ".2f", 1.0)
            fig.colorbar(im, ax=ax, label="mean cores while the load ran")
            ax.set_title(f"CPU (cores; the machine has {summary.get('machine_cores') or 2:g})", fontsize=10)
        else:
            im = _heat(ax, names, cols, data, "Blues", ".0f", 100.0)
            fig.colorbar(im, ax=ax, label="peak PSS (MB)")
            ax.set_title("Memory (peak PSS of each process tree, MB)", fontsize=10)
    fig.suptitle(HEATMAP_TITLE)
    return save(fig, path)


def heatmap_reading(summary: Mapping[str, Any]) -> str | None:
    hm = summary.get("heatmap") or {}
    cpu, mem = hm.get("cpu") or {}, hm.get("pss_mb") or {}
    platform = {k: v for k, v in cpu.items() if k not in ("lab", "loadgen", "other work on the machine")}
    if not platform:
        return None
    mean = {k: float(np.nanmean([x if x is not None else np.nan for x in v])) for k, v in platform.items()}
    top = max(mean, key=lambda k: mean[k])
    text = f"{top} uses the most CPU ({mean[top]:.2f} cores on average over the steps)"
    if mem:
        peak = {k: max((x for x in v if x is not None), default=0.0) for k, v in mem.items()}
        big = max(peak, key=lambda k: peak[k])
        text += f"; {big} holds the most memory ({peak[big]:,.0f} MB PSS at its peak)"
    return text + "."


def _timeline(summary: Mapping[str, Any]) -> tuple[list[float], dict[str, list[float | None]], list[tuple[float, str]], str]:
    tl = summary.get("memory_timeline") or {}
    if tl.get("t"):
        found = [(float(at), str(test)) for at, test in tl.get("tests") or []]
        return tl["t"], tl["pss_mb"], found, "seconds of measured load"
    hm = summary.get("heatmap") or {}  # a summary from before the timeline: peak of each step, in order
    cols = hm.get("columns") or []
    if not cols or not hm.get("pss_mb"):
        raise NoData("no memory was sampled")
    starts: list[tuple[float, str]] = []
    for i, c in enumerate(cols):
        test = c.split(" ", 1)[0]
        if not starts or starts[-1][1] != test:
            starts.append((float(i), test))
    return [float(i) for i in range(len(cols))], hm["pss_mb"], starts, "step of the run (peak of each step)"


def memory_over_time(summary: Mapping[str, Any], tests: Mapping[str, Any], path: Path) -> Path:
    t, pss, starts, xlabel = _timeline(summary)
    peaks = {k: max((v for v in vals if v is not None), default=0.0) for k, vals in pss.items()}
    shown = sorted((k for k in peaks if k not in ("lab",)), key=lambda k: -peaks[k])[:8]
    fig, ax = plt.subplots(figsize=(11, 4.8))
    for name in shown:
        ax.plot(t, [v if v is not None else np.nan for v in pss[name]], label=name, lw=1.4)
    for at, test in starts:
        ax.axvline(at, color="grey", lw=0.6, ls=":")
        ax.text(at, 1.0, f" {test}", transform=ax.get_xaxis_transform(), va="top", fontsize=8, color="grey")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("PSS (MB)")
    ax.set_ylim(0, max(peaks[n] for n in shown) * 1.15 if shown else 1)
    ax.legend(fontsize=7, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    ax.set_title(MEMORY_TITLE)
    return save(fig, path)


def memory_reading(summary: Mapping[str, Any]) -> str | None:
    try:
        _, pss, _, _ = _timeline(summary)
    except NoData:
        return None
    spans = {k: [v for v in vals if v is not None] for k, vals in pss.items() if k != "lab"}
    spans = {k: v for k, v in spans.items() if v}
    if not spans:
        return None
    big = max(spans, key=lambda k: max(spans[k]))
    grew = max(spans, key=lambda k: max(spans[k]) - min(spans[k]))
    return (f"{big} holds the most memory ({min(spans[big]):,.0f}-{max(spans[big]):,.0f} MB PSS); {grew} moves the most "
            f"({max(spans[grew]) - min(spans[grew]):,.0f} MB between its lowest and highest).")  # fmt: skip
