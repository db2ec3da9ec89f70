"""JMeter as the lab's load generator, beside Locust: the same PT-01..PT-04 request mix
(performance-tests/jmeter/PT-0N.jmx), run by the jmeter-maven-plugin, summarized in the fields the
lab reports for a Locust step (requests, failures, rate, p50/p95/p99 ms), with the generator's
own CPU. ``python -m shopstream_tools.lab.jmeter compare --port 8080`` runs one step with each
tool, one after the other, under the machine's benchmark lock, and prints both side by side.

A tool's CPU is what its process tree used (``RUSAGE_CHILDREN`` around it): for JMeter that
includes Maven starting the plugin (a few CPU-seconds, measured alone with ``--users 0``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from shopstream.config import PROJECT_ROOT
from shopstream_tools.lab.hdr import Latencies

JMETER = PROJECT_ROOT / "performance-tests" / "jmeter"
LOCUSTFILE = PROJECT_ROOT / "performance-tests" / "locust" / "shopstream_users.py"
PT01_WEIGHTS = "search=3,by_id=6,list_orders=1"  # the lab's read mix; PT-01.jmx has the same


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, float]:
    cpu, wall = _children_cpu(), time.monotonic()
    subprocess.run(argv, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    return _children_cpu() - cpu, time.monotonic() - wall


def summarize_csv(path: Path, seconds: float) -> dict[str, Any]:
    """JMeter's results file as the lab's step summary (the discovery request left out)."""
    latencies: list[float] = []
    failures = 0
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            if row["label"].startswith("discover"):
                continue
            latencies.append(float(row["elapsed"]))
            failures += row["success"] != "true"
    hist = Latencies.of_ms(latencies)
    return _summary(len(latencies), failures, seconds, hist)


def _summary(count: int, failures: int, seconds: float, hist: Latencies) -> dict[str, Any]:
    return {
        "requests": count,
        "failures": failures,
        "rate": round(count / seconds, 1) if seconds else None,
        "p50_ms": hist.percentile_ms(50) if hist.count else None,
        "p95_ms": hist.percentile_ms(95) if hist.count else None,
        "p99_ms": hist.percentile_ms(99) if hist.count else None,
    }


def run_jmeter(plan: str, host: str, port: int, users: int, seconds: int, mode: str = "async") -> dict[str, Any]:
    argv = ["mvn", "-B", "-q", "verify", f"-Djmeter.plan={plan}", f"-Djmeter.host={host}",
            f"-Djmeter.port={port}", f"-Djmeter.users={users}", f"-Djmeter.duration={seconds}",
            "-Djmeter.rampup=1", f"-Djmeter.mode={mode}"]  # fmt: skip
    cpu, wall = _timed(argv, JMETER)
    results = JMETER / "target" / "jmeter" / "results" / f"{plan}.csv"
    result = summarize_csv(results, seconds) if users else {}
    return {"tool": "jmeter", "users": users, "seconds": seconds, "cpu_s": round(cpu, 2), "wall_s": round(wall, 1), **result}


def run_locust(host: str, port: int, users: int, seconds: int, weights: str = PT01_WEIGHTS) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="locust-") as tmp:
        out = Path(tmp) / "out.json"
        env = {**os.environ, "LAB_WEIGHTS": weights, "LAB_OUT": str(out)}
        env.pop("LAB_DATA", None)  # on its own: finds its products by search
        argv = [str(PROJECT_ROOT / ".venv" / "bin" / "locust"), "-f", str(LOCUSTFILE),
                "--host", f"http://{host}:{port}", "--headless", "-u", str(users), "-r", str(users),
                "-t", f"{seconds}s", "--only-summary"]  # fmt: skip
        cpu, wall = _timed(argv, Path(tmp), env)
        found = json.loads(out.read_text())
    hist = Latencies()
    count = failures = 0
    for entry in found["requests"].values():
        hist.merge(Latencies.decode(entry["hdr"]))
        count += entry["count"]
        failures += entry["failures"]
    return {"tool": "locust", "users": users, "seconds": seconds, "cpu_s": round(cpu, 2), "wall_s": round(wall, 1),
            **_summary(count, failures, seconds, hist)}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("action", choices=["compare"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--users", type=int, default=10)
    p.add_argument("--seconds", type=int, default=30)
    p.add_argument("--out", type=Path, help="also write the rows as JSON here")
    args = p.parse_args()
    rows = [
        run_locust(args.host, args.port, args.users, args.seconds),
        run_jmeter("PT-01", args.host, args.port, args.users, args.seconds),
    ]
    rows.append({**run_jmeter("PT-01", args.host, args.port, 0, 1), "tool": "jmeter startup only"})
    for row in rows:
        print(json.dumps(row))
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
