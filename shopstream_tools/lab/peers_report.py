"""The peers comparison's arithmetic: Locust's stats CSV read back, which rows are valid (no
failed request), each peer's figures as ratios to shopstream's, the Markdown table and the chart of
docs/performance/peers.md."""

from __future__ import annotations

import contextlib
import csv
import io
from pathlib import Path
from typing import Any

METRICS = ("rps", "p50_ms", "p99_ms", "cpu_ms_per_op", "rss_mb")
LABELS = {"rps": "requests/s", "p50_ms": "p50 ms", "p99_ms": "p99 ms",
          "cpu_ms_per_op": "CPU ms per request", "rss_mb": "RSS MB"}  # fmt: skip
# what a peer's work is set against on shopstream's side (its order: the sync one, answered
# when the order is placed, as a peer's checkout is)
BASE_WORK = {"order": "order_sync"}


def locust_row(stats_csv: str, name: str) -> dict[str, float]:
    """Throughput, median, 99th percentile and failures of one request name."""
    for row in csv.DictReader(io.StringIO(stats_csv)):
        if row["Name"] == name:
            count = int(row["Request Count"])
            return {
                "count": float(count),
                "rps": float(row["Requests/s"]),
                "p50_ms": _number(row["50%"]),  # N/A when no request of the name completed
                "p99_ms": _number(row["99%"]),
                "failures": float(row["Failure Count"]),
                "error_pct": 100.0 * int(row["Failure Count"]) / count if count else 0.0,
            }
    raise ValueError(f"no request named {name!r} in the Locust stats")


def flow_failures(stats_csv: str) -> float:
    """Failed requests of the whole step (an order's basket, shipping, payment...), without the
    `order flow` timer's own, which repeats a failure of the flow's request as its own."""
    failed = locust_row(stats_csv, "Aggregated")["failures"]
    with contextlib.suppress(ValueError):
        failed -= locust_row(stats_csv, "order flow")["failures"]
    return failed


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 0.0


def valid(figures: dict[str, Any]) -> bool:
    """A row counts only if work was done and no request of it failed (for an order: none of
    the requests that make it, basket, shipping and payment included)."""
    return (
        figures.get("count", 0) > 0
        and not figures.get("failures")
        and not figures.get("flow_failures")
        and not figures.get("behind")
    )


def fell_behind(figures: dict[str, Any], rate: float, seconds: float, pacing: float) -> bool:
    """An open-loop step stopped being open: fewer than 90% of the offered operations ended, or
    the slowest answers took longer than a user's pacing (its next start came late)."""
    p99 = max(figures.get("p99_ms", 0.0), figures.get("flow", {}).get("p99_ms", 0.0))
    return bool(figures.get("count", 0) < 0.9 * rate * seconds or p99 > 1000 * pacing)


def ratio(peer: float, base: float) -> float | None:
    """peer / shopstream; None where shopstream's figure is zero (no meaningful ratio)."""
    return peer / base if base else None


def ratios(
    results: dict[str, dict[str, dict[str, Any]]], base: str = "shopstream"
) -> dict[str, Any]:
    """{peer: {work: {metric: ratio}}} for each work both the peer and the base ran validly."""
    out: dict[str, Any] = {}
    for peer, works in results.items():
        if peer == base:
            continue
        for work, figures in works.items():
            kind, at, users = work.partition("@")  # by_id@500: the step at 500 users
            ref = results.get(base, {}).get(BASE_WORK.get(kind, kind) + at + users)
            if ref is None or not valid(ref) or not valid(figures):
                continue
            out.setdefault(peer, {})[work] = {
                m: ratio(figures[m], ref[m]) for m in METRICS if m in figures and m in ref
            }
    return out


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    if 0 < abs(value) < 0.01:  # a peer's throughput can be a ten-thousandth of shopstream's
        return f"{value:.2g}"
    if abs(value) < 10 and digits:
        return f"{value:.{max(digits, 2)}f}"
    return f"{value:,.0f}"


def table(results: dict[str, dict[str, dict[str, Any]]]) -> str:
    """Per work, each platform's figures and, for the peers, throughput and CPU per request as
    multiples of shopstream's; an invalid row (a failed request) says so and has no ratio."""
    rel = ratios(results)
    head = ["work", "platform", *(LABELS[m] for m in METRICS), "errors", "valid",
            "throughput vs shopstream", "CPU per request vs shopstream"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    works = _closed(results)
    for work in works:
        for platform, figures in results.items():
            row = figures.get(work)
            if row is None:
                continue
            r = rel.get(platform, {}).get(work, {})
            errors = f"{int(row.get('failures', 0))}" + (
                f" (+{int(row['flow_failures'] - row.get('failures', 0))} in the flow)"
                if row.get("flow_failures", 0) > row.get("failures", 0)
                else ""
            )
            cells = [work, platform, *(_fmt(row.get(m)) for m in METRICS), errors,
                     "yes" if valid(row) else "**no**",
                     _fmt(r.get("rps")) if r else "", _fmt(r.get("cpu_ms_per_op")) if r else ""]  # fmt: skip
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _closed(results: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    """The closed-loop works (by_id, by_id@500, ...), in the order they ran."""
    every = dict.fromkeys(w for figures in results.values() for w in figures)
    return [w for w in every if not w.endswith("@open")]


def open_table(results: dict[str, dict[str, dict[str, Any]]]) -> str:
    """The open-loop steps: offered and achieved rate, latency (a peer's order: the whole flow,
    first request to last), the cores the platform kept busy (its idle cost included, which at a
    low rate is most of its CPU per operation)."""
    head = ["work", "platform", "offered/s", "done/s", "p50 ms", "p99 ms", "cores busy",
            "CPU ms per op", "errors", "valid"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    works = dict.fromkeys(w for figures in results.values() for w in figures if w.endswith("@open"))
    for work in works:
        for platform, figures in results.items():
            row = figures.get(work)
            if row is None:
                continue
            timing = row.get("flow", row)
            errors = int(max(row.get("failures", 0), row.get("flow_failures", 0)))
            why = " (fell behind)" if row.get("behind") else ""
            cells = [work.removesuffix("@open"), platform, _fmt(row.get("offered_rps")),
                     _fmt(row.get("rps")), _fmt(timing.get("p50_ms")), _fmt(timing.get("p99_ms")),
                     _fmt(row.get("cores")), _fmt(row.get("cpu_ms_per_op")), str(errors),
                     ("yes" if valid(row) else "**no**") + why]  # fmt: skip
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def chart(results: dict[str, dict[str, dict[str, Any]]], path: Path) -> Path:
    """Throughput, p99 and CPU per request of the valid rows, platforms side by side per work
    (log scales: the platforms differ by orders of magnitude)."""
    from shopstream_tools.lab.plotting import plt, save

    works = _closed(results)
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.2))
    width = 0.8 / max(len(results), 1)
    for i, (platform, figures) in enumerate(results.items()):
        xs = [n + i * width for n in range(len(works))]
        for ax, metric in zip(axes, ("rps", "p99_ms", "cpu_ms_per_op"), strict=True):
            values = [
                figures[w][metric] if w in figures and valid(figures[w]) else 0.0 for w in works
            ]
            ax.bar(xs, values, width, label=platform)
    for ax, metric in zip(axes, ("rps", "p99_ms", "cpu_ms_per_op"), strict=True):
        ax.set_xticks([n + 0.4 - width / 2 for n in range(len(works))], works, rotation=40, ha="right")
        ax.set_title(f"{LABELS[metric]} (log)")
        ax.set_yscale("log")
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend()
    return save(fig, path)
