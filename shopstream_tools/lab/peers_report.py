"""The peers comparison's arithmetic: Locust's stats CSV read back, each peer's figures as ratios
to shopstream's, the Markdown table and the chart of docs/performance/peers.md."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

METRICS = ("rps", "p50_ms", "p99_ms", "error_pct", "cpu_ms_per_op", "rss_mb")


def locust_row(stats_csv: str, name: str) -> dict[str, float]:
    """Throughput, median, 99th percentile and error share of one request name."""
    for row in csv.DictReader(io.StringIO(stats_csv)):
        if row["Name"] == name:
            count = int(row["Request Count"])
            return {
                "count": float(count),
                "rps": float(row["Requests/s"]),
                "p50_ms": float(row["50%"]),
                "p99_ms": float(row["99%"]),
                "error_pct": 100.0 * int(row["Failure Count"]) / count if count else 0.0,
            }
    raise ValueError(f"no request named {name!r} in the Locust stats")


def ratio(peer: float, base: float) -> float | None:
    """peer / shopstream; None where shopstream's figure is zero (no meaningful ratio)."""
    return peer / base if base else None


def ratios(
    results: dict[str, dict[str, dict[str, float]]], base: str = "shopstream"
) -> dict[str, Any]:
    """{peer: {work: {metric: ratio}}} for each work the peer and the base both ran; the base's
    sync order is what a peer's order is set against."""
    out: dict[str, Any] = {}
    for peer, works in results.items():
        if peer == base:
            continue
        for work, figures in works.items():
            ref = results[base].get(work) or results[base].get(f"{work}_sync")
            if ref is None:
                continue
            out.setdefault(peer, {})[work] = {
                m: ratio(figures[m], ref[m]) for m in METRICS if m in figures and m in ref
            }
    return out


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def table(results: dict[str, dict[str, dict[str, float]]]) -> str:
    head = "| platform | work | " + " | ".join(METRICS) + " |"
    lines = [head, "|" + "---|" * (len(METRICS) + 2)]
    for platform, works in results.items():
        for work, figures in works.items():
            cells = " | ".join(_fmt(figures.get(m)) for m in METRICS)
            lines.append(f"| {platform} | {work} | {cells} |")
    for peer, works in ratios(results).items():
        for work, figures in works.items():
            cells = " | ".join(_fmt(figures.get(m)) for m in METRICS)
            lines.append(f"| {peer} / shopstream | {work} | {cells} |")
    return "\n".join(lines) + "\n"


def chart(results: dict[str, dict[str, dict[str, float]]], path: Path) -> None:
    """Throughput and CPU per operation, platforms side by side, per kind of work."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    works = sorted({w for figures in results.values() for w in figures})
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    width = 0.8 / max(len(results), 1)
    for i, (platform, figures) in enumerate(results.items()):
        xs = [n + i * width for n in range(len(works))]
        for ax, metric in zip(axes, ("rps", "cpu_ms_per_op"), strict=True):
            ax.bar(xs, [figures.get(w, {}).get(metric, 0.0) for w in works], width, label=platform)
    for ax, title in zip(
        axes, ("throughput (requests/s)", "CPU per operation (ms, log)"), strict=True
    ):
        ax.set_xticks([n + 0.4 - width / 2 for n in range(len(works))], works, rotation=20)
        ax.set_title(title)
    axes[1].set_yscale("log")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
