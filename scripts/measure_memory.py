#!/usr/bin/env python
"""The local platform's memory: every process `up` started, with its children (granian workers,
PostgreSQL backends, nginx workers), as resident set size. Samples every second for --seconds and
reports each process's peak and the peak of the sum, as a Markdown table: PSS (shared pages
divided among their sharers: sums to the memory really used) and RSS (what `status` shows).

    .venv/bin/python scripts/measure_memory.py --seconds 30 > /tmp/idle.md
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

from shopstream.config import Settings
from shopstream.runtime import platform, processes


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids = (task / "children").read_text().split()
        except OSError:
            continue
        for kid in map(int, kids):
            found += [kid, *children(kid)]
    return found


def pss_bytes(pid: int) -> int:
    """Proportional set size: shared pages (PostgreSQL's shared buffers, libraries) are divided
    among the processes sharing them, so the sum over processes is the memory really used."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return processes.rss_bytes(pid)


def tree_mb(pid: int | None, measure: Callable[[int], int]) -> float:
    if not pid or not processes.alive(pid):
        return 0.0
    return sum(measure(p) for p in [pid, *children(pid)]) / 2**20


def sample(settings: Settings) -> dict[str, tuple[float, float]]:
    return {
        row.name: (tree_mb(row.pid, pss_bytes), tree_mb(row.pid, processes.rss_bytes))
        for row in platform.status(settings)
        if row.pid
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    settings = Settings.from_env()
    peaks: dict[str, list[float]] = {}
    total = [0.0, 0.0]
    deadline = time.monotonic() + args.seconds
    while True:
        now = sample(settings)
        for name, (pss, rss) in now.items():
            peak = peaks.setdefault(name, [0.0, 0.0])
            peak[0], peak[1] = max(peak[0], pss), max(peak[1], rss)
        total[0] = max(total[0], sum(v[0] for v in now.values()))
        total[1] = max(total[1], sum(v[1] for v in now.values()))
        if time.monotonic() >= deadline:
            break
        time.sleep(1)
    print("| process (with its children) | peak PSS MB | peak RSS MB |")
    print("|---|---:|---:|")
    for name, (pss, rss) in sorted(peaks.items(), key=lambda kv: -kv[1][0]):
        print(f"| {name} | {pss:.0f} | {rss:.0f} |")
    print(f"| **all (peak of the sum)** | **{total[0]:.0f}** | **{total[1]:.0f}** |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
