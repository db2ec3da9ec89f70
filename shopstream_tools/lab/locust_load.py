"""Locust (scenario users, closed loop), run as a child process with its own CPU measured:
``performance-tests/locust/shopstream_users.py`` records every request in HDR histograms and
writes them, a per-second timeline and status counts to a JSON file; while it runs it keeps a
one-line status file the lab shows as progress. Ctrl-C asks it to stop (SIGTERM) and what it
measured is kept."""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shopstream_tools.lab.hdr import Latencies
from shopstream_tools.lab.load import (
    LOCUST_SATURATED_CORES,
    LOCUSTFILE,
    Child,
    Progress,
    loadgen_record,
)
from shopstream_tools.lab.step_result import totals


@dataclass
class LocustPlan:
    """What the Locust users do (see the locustfile for each task)."""

    host: str
    weights: dict[str, int]  # task -> weight: search, by_id, list_orders, place_order
    data_file: Path  # JSON: product ids, order products, customers, search windows
    users: int = 10
    spawn_rate: float = 100.0
    seconds: float = 10.0
    think_seconds: float = 0.0
    mode: str = "async"  # orders' processing mode
    phases: Sequence[tuple[float, int]] = ()  # burst: (seconds, users) one after the other
    metrics_port: int = 0  # Prometheus metrics while it runs (0: none)

    def env(self, out: Path, status: Path) -> dict[str, str]:
        return {
            "LAB_WEIGHTS": ",".join(f"{k}={v}" for k, v in self.weights.items()),
            "LAB_DATA": str(self.data_file),
            "LAB_OUT": str(out),
            "LAB_STATUS": str(status),
            "LAB_THINK": str(self.think_seconds),
            "LAB_MODE": self.mode,
            "LAB_PHASES": json.dumps([[s, u, self.spawn_rate] for s, u in self.phases]),
            "LAB_METRICS_PORT": str(self.metrics_port or ""),
            "PYTHONUNBUFFERED": "1",
        }

    @property
    def duration(self) -> float:
        return sum(s for s, _ in self.phases) if self.phases else self.seconds


def run_locust(
    plan: LocustPlan,
    workdir: Path,
    name: str,
    stop: threading.Event,
    on_start: Callable[[int], None],
    progress: Progress,
) -> dict[str, Any]:
    out, status = workdir / f"{name}.locust.json", workdir / f"{name}.locust-status.json"
    argv = [
        sys.executable, "-m", "locust",
        "-f", str(LOCUSTFILE),
        "--headless",
        "--host", plan.host,
        "--only-summary",
        "--loglevel", "WARNING",
        "--stop-timeout", "0",
    ]  # fmt: skip
    if not plan.phases:
        argv += ["-u", str(plan.users), "-r", str(plan.spawn_rate), "-t", f"{plan.seconds:g}s"]
    child = Child(argv, workdir / f"{name}.locust.log", plan.env(out, status), signal.SIGTERM)
    last = [0.0]

    def tick(elapsed: float) -> None:
        if elapsed - last[0] >= 2.0:
            last[0] = elapsed
            try:
                progress({"elapsed": elapsed, **json.loads(status.read_text())})
            except (OSError, ValueError):
                progress({"elapsed": elapsed})

    done = child.run(stop, on_start, tick, deadline=plan.duration + 30)
    if not out.exists():
        raise RuntimeError(f"Locust wrote no results (exit {done.exit_code}); see {child.log}")
    raw = json.loads(out.read_text())
    saturated = done.cores >= LOCUST_SATURATED_CORES
    why = f"Locust used {done.cores:.2f} of the 1 core it can use" if saturated else ""
    return summarize_locust(raw) | {"loadgen": loadgen_record("locust", done, saturated, why)}


def summarize_locust(raw: dict[str, Any]) -> dict[str, Any]:
    """Totals, per-request-name HDR summaries and the timeline from the locustfile's JSON."""
    per_name: dict[str, Any] = {}
    everything = Latencies()
    for name, entry in raw["requests"].items():
        lat = Latencies.decode(entry["hdr"])
        everything.merge(lat)
        per_name[name] = {
            "requests": entry["count"],
            "failures": entry["failures"],
            "statuses": entry["statuses"],
            "latency_ms": lat.summary(),
            "spectrum_ms": lat.spectrum(),
            "hdr": entry["hdr"],
        }
    seconds = float(raw["seconds"])
    requests = sum(v["requests"] for v in per_name.values())
    failures = sum(v["failures"] for v in per_name.values())
    return {
        **totals("locust", seconds, requests, failures, everything),
        "per_name": per_name,
        "timeline": raw["timeline"],
        "users": raw.get("users"),
        "started_wall": raw.get("started_wall"),
    }
