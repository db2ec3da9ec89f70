"""What the containers cost: the compose stack beside the local processes, in one run.

Each platform is started from nothing (the compose stack from images already built, the local one
from its data folder), timed until healthy, weighed (resident memory of every process, or of every
container), then given the same short open-loop load of signed-in async orders with vegeta, the
lab's tool, and drained. The figures of interest are the ratios compose / local: start time,
memory, the rate the platform answered at, the HTTP latencies and accepted -> ended.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shopstream.config import PROJECT_ROOT, Settings
from shopstream_tools.compose.stack import Stack, json_rows

COMPARE_DATA = PROJECT_ROOT / "data-containers" / "compare"
LOCAL_OFFSET = 12000  # the perf platform's ports and data folder: never the operator's platform
UNITS = {"b": 1, "kb": 1e3, "kib": 1024, "mb": 1e6, "mib": 1024**2, "gb": 1e9, "gib": 1024**3}


@dataclass
class Load:
    rate: float = 150.0
    seconds: float = 20.0
    drain_timeout: float = 180.0


def megabytes(usage: str) -> float:
    """``"58.2MB / 24.6GB"`` (podman and Docker's stats) -> 58.2: the used part, in MB."""
    match = re.match(r"\s*([\d.]+)\s*([a-zA-Z]+)", usage or "")
    if not match:
        return 0.0
    return float(match[1]) * UNITS.get(match[2].lower(), 0) / 1e6


def stack_memory_mb(stack: Stack) -> float:
    rows = json_rows(stack.engine.run("stats", "--no-stream", "--format", "json", capture=True))
    prefix = f"{stack.project}_"
    return round(sum(megabytes(str(row.get("mem_usage") or row.get("MemUsage") or ""))
                     for row in rows
                     if str(row.get("name") or row.get("Name") or "").startswith(prefix)), 1)  # fmt: skip


def local_memory_mb(settings: Settings) -> float:
    """Resident memory of every process of the local platform, children included (from /proc)."""
    from shopstream_tools.bench.cpu import read_proc_stats, tree
    from shopstream_tools.lab import testbed
    from shopstream_tools.runtime.processes import rss_bytes

    roots = [pid for pids in testbed.process_groups(settings).values() for pid in pids]
    return round(sum(rss_bytes(pid) for pid in tree(read_proc_stats(), roots)) / 1e6, 1)


def order_load(settings: Settings, folder: Path, load: Load) -> dict[str, Any]:
    """The same signed-in async orders as perf-check, open loop, then drained."""
    from shopstream_tools.lab import workload
    from shopstream_tools.perf import load as perf_load
    from shopstream_tools.perf import measure

    folder.mkdir(parents=True, exist_ok=True)
    work = workload.prepare(settings, folder, catalog=1000)
    gateway = f"http://127.0.0.1:{settings.gateway_port}"
    count = int(load.rate * load.seconds * 1.05) + 10
    targets = perf_load.order_targets(gateway, work.order_products, work.customers, count, work.tokens)
    started = time.time()
    answered = perf_load.open_loop(folder, "orders", targets, load.rate, load.seconds)
    drained = measure.wait_drained(settings, load.drain_timeout)
    statuses = answered.get("statuses", {})
    ok = sum(n for s, n in statuses.items() if s.startswith("2"))
    return {
        "accepted": ok,
        "accepted_per_s": round(ok / load.seconds, 1),
        "failures": answered.get("failures", 0),
        "http_ms": answered.get("latency_ms", {}),
        "drained_s": drained,
        "accepted_to_ended_ms": perf_load.saga_latency_ms(settings, started)["ended"],
    }


def run_local(load: Load) -> dict[str, Any]:
    """From an empty data folder, as the compose stack starts from empty volumes."""
    import shutil

    from shopstream_tools.lab import testbed
    from shopstream_tools.perf.check import PERF_OFFSET

    settings = testbed.lab_settings(Settings.from_env(), COMPARE_DATA / "platform", PERF_OFFSET)
    testbed.down(settings)
    shutil.rmtree(COMPARE_DATA / "platform", ignore_errors=True)
    started = time.monotonic()
    testbed.up(settings, log=lambda line: None)
    took = time.monotonic() - started
    memory = local_memory_mb(settings)
    try:
        return {"start_s": round(took, 1), "memory_mb": memory,
                **order_load(settings, COMPARE_DATA / "local", load)}  # fmt: skip
    finally:
        testbed.down(settings)


def run_compose(stack: Stack, load: Load) -> dict[str, Any]:
    stack.down(volumes=True)
    took = stack.up()
    memory = stack_memory_mb(stack)
    try:
        return {"start_s": round(took, 1), "memory_mb": memory,
                **order_load(stack.client_settings(), COMPARE_DATA / "compose", load)}  # fmt: skip
    finally:
        stack.down(volumes=True)


def ratios(compose: dict[str, Any], local: dict[str, Any]) -> dict[str, float | None]:
    def ratio(a: Any, b: Any) -> float | None:
        return round(a / b, 2) if isinstance(a, int | float) and b else None

    out = {
        key: ratio(compose[key], local[key]) for key in ("start_s", "memory_mb", "accepted_per_s")
    }
    for figure in ("http_ms", "accepted_to_ended_ms"):
        for p in ("p50", "p99"):
            out[f"{figure}_{p}"] = ratio(compose[figure].get(p), local[figure].get(p))
    return out


def compare(stack: Stack, load: Load) -> dict[str, Any]:
    COMPARE_DATA.mkdir(parents=True, exist_ok=True)
    local = run_local(load)
    compose = run_compose(stack, load)
    result = {"load": load.__dict__, "engine": stack.engine.name, "local": local,
              "compose": compose, "compose_over_local": ratios(compose, local)}  # fmt: skip
    (COMPARE_DATA / "compare.json").write_text(json.dumps(result, indent=1))
    return result


def table(result: dict[str, Any]) -> str:
    local, compose, ratio = result["local"], result["compose"], result["compose_over_local"]
    rows = [
        ("start to healthy, s", "start_s", "start_s"),
        ("resident memory, MB", "memory_mb", "memory_mb"),
        ("async orders accepted/s", "accepted_per_s", "accepted_per_s"),
    ]
    out = ["| | local | compose | compose ÷ local |", "|---|---:|---:|---:|"]
    out += [f"| {label} | {local[key]} | {compose[key]} | {ratio[r]} |" for label, key, r in rows]
    for figure, label in (("http_ms", "POST /orders"), ("accepted_to_ended_ms", "accepted → ended")):
        for p in ("p50", "p99"):
            out.append(f"| {label} {p}, ms | {local[figure].get(p)} | {compose[figure].get(p)} "
                       f"| {ratio[f'{figure}_{p}']} |")  # fmt: skip
    out.append(f"| failed requests | {local['failures']} | {compose['failures']} | |")
    return "\n".join(out)
