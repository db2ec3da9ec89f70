"""Running a load generator (wrk or pgbench) to its end, and what it measured, in common units.

HTTP load comes from wrk with the scripts in ``performance-tests/wrk/``; their ``done()`` prints
one JSON line that ``parse_wrk`` reads.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shopstream.config import PROJECT_ROOT
from shopstream_tools.bench.cpu import CLOCK_TICKS_PER_SECOND, parse_proc_stat

WRK_DIR = PROJECT_ROOT / "performance-tests" / "wrk"
WRK_THREADS = 2
# the scripts send it, so the gateway's access log tells the benchmark's requests apart
USER_AGENT = "shopstream-bench"


@dataclass
class LoadResult:
    """One measurement by wrk or pgbench, in common units."""

    requests: int
    seconds: float
    errors: dict[str, int] = field(default_factory=dict)
    latency_ms: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


_WRK_JSON = re.compile(r"^BENCH_JSON (\{.*\})\s*$", re.MULTILINE)


def parse_wrk(output: str) -> LoadResult:
    """The JSON line that the scripts' done() prints (see performance-tests/wrk/common.lua)."""
    match = _WRK_JSON.search(output)
    if not match:
        raise ValueError("wrk printed no BENCH_JSON line (did the Lua script fail?)")
    data = json.loads(match.group(1))
    latency = {k: float(v) / 1000 for k, v in data["latency_us"].items()}
    return LoadResult(
        requests=int(data["requests"]),
        seconds=int(data["duration_us"]) / 1e6,
        errors={f"wrk_{k}": int(v) for k, v in data["errors"].items()},
        latency_ms=latency,
    )


def wrk_argv(
    wrk: str, connections: int, seconds: int, script: str, url: str, *script_args: str
) -> list[str]:
    argv = [
        wrk,
        f"-t{WRK_THREADS}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(WRK_DIR / script),
        url,
    ]
    return [*argv, "--", *script_args] if script_args else argv


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of values, sorted or not."""
    if not values:
        raise ValueError("percentile of nothing")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # ceil(n * p / 100), at least the first
    return ordered[int(min(rank, len(ordered))) - 1]


def latency_summary(latencies_ms: Sequence[float]) -> dict[str, float]:
    """Raw latencies (pgbench's) summed up with the percentiles that wrk's scripts report."""
    if not latencies_ms:
        return {}
    return {
        "mean": statistics.fmean(latencies_ms),
        "p50": percentile(latencies_ms, 50),
        "p90": percentile(latencies_ms, 90),
        "p99": percentile(latencies_ms, 99),
        "p99.9": percentile(latencies_ms, 99.9),
        "max": max(latencies_ms),
    }


def run_measured(argv: list[str], out: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run a load generator to its end; its exit code, wall time and CPU from /proc/<pid>/stat.

    The CPU is read from the exited (not yet reaped) process, so it covers the whole run; the
    kernel's rusage from reaping it is kept beside it as a cross-check.
    """
    with out.open("w") as sink:
        started = time.monotonic()
        proc = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT, env=env)
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
        wall = time.monotonic() - started
        try:
            times = parse_proc_stat(Path(f"/proc/{proc.pid}/stat").read_text())
            ticks = times.own
        except (OSError, ValueError):
            ticks = -1
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    rusage_seconds = usage.ru_utime + usage.ru_stime
    cpu_seconds = ticks / CLOCK_TICKS_PER_SECOND if ticks >= 0 else rusage_seconds
    return {
        "exit_code": proc.returncode,
        "wall_seconds": round(wall, 3),
        "cpu_seconds": round(cpu_seconds, 3),
        "cpu_seconds_rusage": round(rusage_seconds, 3),
        "cores": round(cpu_seconds / wall, 3) if wall > 0 else 0.0,
    }
