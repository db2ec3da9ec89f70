"""The load generator as a Prometheus target while it runs.

Each generator serves its own metrics: Locust from the locustfile (``prometheus_client``, on the
port in ``LAB_METRICS_PORT``), vegeta with ``attack -prometheus-addr``. When one starts, the lab
lists it in the ``loadgen`` job's discovery file (``shopstream_tools.runtime.prometheus``), labelled
with the run and step; when it stops, the file is emptied again, so Prometheus never scrapes a
generator that is gone. After the step the lab asks Prometheus what it saw, and keeps it beside
the generator's own count: Prometheus applies a new target a few seconds after the file changes
(its discovery batches updates every 5 s), so it misses a step's first seconds, and a step of a
few seconds may not be scraped at all.
"""

from __future__ import annotations

import json
import os
import socket
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from shopstream.config import Settings

# Each tool's counter of the requests it sent (one series per name/method/status).
REQUEST_COUNTERS = {"locust": "locust_requests_total", "vegeta": "request_seconds_count"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _file(settings: Settings) -> Path:
    from shopstream_tools.runtime import prometheus

    return prometheus.targets_dir(settings) / f"{prometheus.LOADGEN_JOB}.json"


def _write(settings: Settings, groups: list[dict[str, Any]]) -> None:
    path = _file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".lab-tmp")
    tmp.write_text(json.dumps(groups, indent=1))
    os.replace(tmp, path)  # Prometheus never reads half a file


def labels(run: str, step: str, tool: str) -> dict[str, str]:
    return {"process": "loadgen", "tool": tool, "run": run, "step": step}


def register(settings: Settings, port: int, run: str, step: str, tool: str) -> None:
    if settings.prometheus_port:
        _write(settings, [{"targets": [f"127.0.0.1:{port}"], "labels": labels(run, step, tool)}])


def unregister(settings: Settings) -> None:
    if settings.prometheus_port:
        _write(settings, [])


def _selector(run: str, step: str) -> str:
    def quoted(value: str) -> str:
        return json.dumps(value)  # a PromQL string literal: the same escapes as JSON's

    return f'job="loadgen",run={quoted(run)},step={quoted(step)}'


def query(settings: Settings, promql: str, timeout: float = 5.0) -> float | None:
    """An instant query's single value (the first series'), None when it has none."""
    url = f"http://127.0.0.1:{settings.prometheus_port}/api/v1/query?" + urllib.parse.urlencode(
        {"query": promql}
    )
    with urllib.request.urlopen(url, timeout=timeout) as response:
        result = json.loads(response.read())["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def seen(settings: Settings, run: str, step: str, tool: str, seconds: float) -> dict[str, Any]:
    """What Prometheus scraped of this step's generator: scrapes, how many of them found it up,
    and the requests its counter had reached at the last scrape."""
    if not settings.prometheus_port:
        return {"skipped": "Prometheus is not running"}
    sel = _selector(run, step)
    window = f"[{max(int(seconds) + 30, 60)}s]"
    try:
        scrapes = query(settings, f"count_over_time(up{{{sel}}}{window})")
        up = query(settings, f"sum_over_time(up{{{sel}}}{window})")
        requests = query(
            settings, f"sum(max_over_time({REQUEST_COUNTERS[tool]}{{{sel}}}{window}))"
        )
    except (OSError, ValueError, KeyError) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {"scrapes": int(scrapes or 0), "up": int(up or 0), "requests": requests}
