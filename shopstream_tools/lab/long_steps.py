"""What a long step shows that a short one cannot: whether the platform holds steady over minutes
(``python -m shopstream_tools.lab.long_steps RUN [--against SUMMARY] [--chart PNG] [--json OUT]``,
markdown on stdout).

Each step of at least two full minutes is cut into minutes: answered requests per second, the
p99 of a typical second (the median of the per-second p99s: the load tools keep one histogram
per step, so a minute's own p99 is not on record), CPU per answered request of the platform's own
processes (as the growth table counts it), the platform's memory (PSS) and the Kafka lag. Drift
compares the late minutes with the early ones (the first minute is the warm-up and left out);
memory growth is a least-squares slope over the step after its first minute. ``--against`` puts
the same steps of another run's ``summary.json`` (a quick-profile run) beside the long ones.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from shopstream_tools.lab.growth import NOT_PLATFORM, cpu_ms_per_op, platform_cores, step_kind

MINUTE = 60.0
STEADY = 0.10
"""A figure within this share of its early value over the step is steady."""
NOT_MEMORY = NOT_PLATFORM | {"zipkin"}


def platform_pss(sample: Mapping[str, Any]) -> dict[str, float]:
    return {k: v for k, v in (sample.get("pss_mb") or {}).items() if k not in NOT_MEMORY}


def _lag(sample: Mapping[str, Any]) -> float:
    lag = (sample.get("kafka") or {}).get("lag") or {}
    return float(sum(lag.values())) if isinstance(lag, dict) else 0.0


def minutes(step: Mapping[str, Any]) -> list[dict[str, float]]:
    """The step's full minutes of load, each with its figures. The load tool's seconds and the
    sampler's are counted from their own starts, a second or two apart: close enough for minutes."""
    timeline = step.get("load", {}).get("timeline") or []
    samples = step.get("samples") or []
    count = int(float(step.get("load_seconds") or 0.0) // MINUTE)
    out = []
    for k in range(count):
        lo, hi = k * MINUTE, (k + 1) * MINUTE
        seconds = [e for e in timeline if lo < e["t"] <= hi]
        answered = sum(e["requests"] - e["failures"] for e in seconds)
        p99s = [e["p99"] for e in seconds if e["requests"] and e.get("p99") is not None]
        window = [s for s in samples if lo < s["t"] <= hi]
        cores = (
            statistics.fmean(platform_cores(s.get("cpu") or {}) for s in window) if window else 0.0
        )
        out.append({
            "minute": k + 1,
            "rate": answered / MINUTE,
            "p99_ms": statistics.median(p99s) if p99s else float("nan"),
            "cpu_ms_per_op": 1000.0 * cores * MINUTE / answered if answered else float("nan"),
            "pss_mb": sum(platform_pss(window[-1]).values()) if window else float("nan"),
            "peak_lag": max((_lag(s) for s in window), default=0.0),
        })  # fmt: skip
    return out


def slope_mb_per_10_min(
    samples: Iterable[Mapping[str, Any]], after: float = MINUTE
) -> dict[str, float]:
    """Memory growth of each platform component (and ``total``), MB per 10 minutes."""
    points: dict[str, list[tuple[float, float]]] = {}
    for s in samples:
        if s["t"] <= after:
            continue
        pss = platform_pss(s)
        for name, mb in [*pss.items(), ("total", sum(pss.values()))]:
            points.setdefault(name, []).append((float(s["t"]), float(mb)))
    out = {}
    for name, xy in points.items():
        if len(xy) >= 2 and len({x for x, _ in xy}) >= 2:
            fit = statistics.linear_regression([x for x, _ in xy], [y for _, y in xy])
            out[name] = fit.slope * 600.0
    return out


def early_late(per_minute: list[dict[str, float]], key: str, span: int = 2) -> tuple[float, float]:
    """The mean of minutes 2..1+``span`` (the first is the warm-up) and of the last ``span``;
    both NaN when the step is too short for the two to be apart."""
    if len(per_minute) < 1 + 2 * span:
        return float("nan"), float("nan")
    early = statistics.fmean(m[key] for m in per_minute[1 : 1 + span])
    return early, statistics.fmean(m[key] for m in per_minute[-span:])


def drift(per_minute: list[dict[str, float]], key: str, span: int = 2) -> float:
    """Late ÷ early (``early_late``)."""
    early, late = early_late(per_minute, key, span)
    return late / early if early else float("nan")


def long_steps(run: Path) -> dict[str, dict[str, Any]]:
    """Every step of the run with at least two full minutes of load, by "PT-0N step"."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(run.glob("PT-0*.json")):
        for step in json.loads(path.read_text()).get("steps", []):
            per_minute = minutes(step) if step.get("load") else []
            if len(per_minute) >= 2:
                out[f"{step['test']} {step['step']}"] = {
                    "minutes": per_minute,
                    "memory": slope_mb_per_10_min(step.get("samples") or []),
                }
    return out


def _fmt(value: float, digits: int = 1) -> str:
    return "-" if value != value else f"{value:,.{digits}f}"


def drift_table(steps: Mapping[str, Mapping[str, Any]]) -> str:
    rows = [
        "| step | minutes | req/s early → late | p99 of a second, ms | CPU ms per request | "
        "platform memory, MB per 10 min | peak Kafka lag | |",
        "|---|---:|---|---|---|---:|---:|---|",
    ]
    for name, entry in steps.items():
        m = entry["minutes"]
        cells, moved = [], []
        for key, digits in (("rate", 1), ("p99_ms", 0), ("cpu_ms_per_op", 2)):
            early, late = early_late(m, key)
            ratio = late / early if early else float("nan")
            if ratio == ratio and abs(ratio - 1) > STEADY:
                moved.append(key)
            cells.append(f"{_fmt(early, digits)} → {_fmt(late, digits)} ({_fmt(ratio, 2)}x)")
        memory = entry["memory"].get("total", float("nan"))
        lag = max(x["peak_lag"] for x in m)
        verdict = "steady" if not moved else "moved: " + ", ".join(moved)
        rows.append(
            f"| {name} | {len(m)} | {' | '.join(cells)} | {_fmt(memory, 1)} | {lag:,.0f} | {verdict} |"
        )
    return "\n".join(rows)


def summary_steps(summary: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """A run's summary rows by step kind (open-loop steps run at each run's own rate)."""
    out: dict[str, Mapping[str, Any]] = {}
    for test, entry in summary.get("tests", {}).items():
        rows = entry.get("rows") or ([entry["row"]] if entry.get("row") else [])
        for row in rows:
            out[step_kind(f"{test} {row['step']}")] = row
    return out


def against_table(long: Mapping[str, Any], short: Mapping[str, Any]) -> str:
    """Whole-step figures of the long run's summary beside a short run's, step by step."""
    a, b = summary_steps(short), summary_steps(long)
    rows = [
        "| step | req/s short → long | p99 ms short → long | CPU ms per request short → long | "
        "accepted → ended p99 ms short → long |",
        "|---|---|---|---|---|",
    ]
    for name, row in b.items():
        if name not in a:
            continue
        s = a[name]
        pairs = [(s.get("ok_rate"), row.get("ok_rate"), 1), (s.get("p99_ms"), row.get("p99_ms"), 0),
                 (_cpu_ms(s), _cpu_ms(row), 2), (s.get("e2e_p99_ms"), row.get("e2e_p99_ms"), 0)]  # fmt: skip
        cells = [f"{_num(x, d)} → {_num(y, d)}" for x, y, d in pairs]
        rows.append(f"| {name} | {' | '.join(cells)} |")
    return "\n".join(rows)


def _num(value: Any, digits: int) -> str:
    return _fmt(float(value), digits) if value is not None else "-"


def _cpu_ms(row: Mapping[str, Any]) -> float:
    return cpu_ms_per_op(row.get("cpu_cores") or {}, float(row.get("ok_rate") or 0.0))


def _styles(names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """A shade of the mode's colour per step, darker with more users; open loops dashed."""
    from matplotlib import colormaps

    names = list(names)
    out: dict[str, dict[str, Any]] = {}
    for mode, cmap in (("sync", "Reds"), ("async", "Blues")):
        mine = [n for n in names if f" {mode} " in f"{n} "]
        for i, name in enumerate(mine):
            shade = colormaps[cmap](0.45 + 0.5 * i / max(len(mine) - 1, 1))
            out[name] = {"color": shade, "linestyle": "--" if "open loop" in name else "-"}
    for name in names:
        out.setdefault(name, {"color": "#1e8449", "linestyle": "-"})
    return out


def chart(steps: Mapping[str, Mapping[str, Any]], path: Path) -> Path:
    """Minute by minute, one line per long step: rate, a typical second's p99, CPU per request,
    the platform's memory and the Kafka lag."""
    from shopstream_tools.lab import plotting

    fig, axes = plotting.plt.subplots(3, 2, figsize=(13, 11), sharex=True)
    panels = (("rate", "answered requests/s"), ("p99_ms", "p99 of a typical second (ms, log)"),
              ("cpu_ms_per_op", "platform CPU ms per request"), ("pss_mb", "platform memory, PSS MB"),
              ("peak_lag", "Kafka lag, peak of the minute (messages, log)"))  # fmt: skip
    styles = _styles(steps)
    for ax, (key, title) in zip(axes.flat, panels, strict=False):
        for name, entry in steps.items():
            m = entry["minutes"]
            ax.plot([x["minute"] for x in m], [x[key] for x in m], marker=".", label=name,
                    **styles[name])  # fmt: skip
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        if key in ("p99_ms", "peak_lag"):
            ax.set_yscale("log")
    for ax in axes[-1]:
        ax.set_xlabel("minute of the step")
    handles, labels = axes[0][0].get_legend_handles_labels()
    axes[-1][-1].axis("off")
    axes[-1][-1].legend(handles, labels, loc="center", fontsize=9)
    fig.suptitle("Long steps minute by minute: steady state, drift, memory, backlog")
    return plotting.save(fig, path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m shopstream_tools.lab.long_steps")
    parser.add_argument("run", type=Path, help="a lab run's folder (its PT-0N.json)")
    parser.add_argument("--against", type=Path, help="another run's summary.json, e.g. quick")
    parser.add_argument("--chart", type=Path, help="write the minute-by-minute chart here")
    parser.add_argument("--json", type=Path, help="write the minutes and memory slopes here")
    args = parser.parse_args(argv)
    steps = long_steps(args.run)
    print(drift_table(steps))
    if args.against:
        long = json.loads((args.run / "summary.json").read_text())
        print()
        print(against_table(long, json.loads(args.against.read_text())))
    if args.chart:
        chart(steps, args.chart)
    if args.json:
        args.json.write_text(json.dumps(steps, indent=1) + "\n")


if __name__ == "__main__":
    main()
