#!/usr/bin/env python
"""The local platform's memory: every process `up` started, with its children (granian workers,
PostgreSQL backends, nginx workers), as resident set size. Samples every second for --seconds and
reports each process's peak and the peak of the sum, as a Markdown table: PSS (shared pages
divided among their sharers: sums to the memory really used) and RSS (what `status` shows).

    .venv/bin/python scripts/measure_memory.py --seconds 30 > /tmp/idle.md
    .venv/bin/python scripts/measure_memory.py --seconds 40 --load > /tmp/load.md

``--load`` drives the platform while sampling, the same way each time so figures compare: wrk
(2 threads, 32 connections) on a full-text search through the gateway, plus 6 clients placing
orders without pause (4 in 5 async, 1 in 5 sync) on the first 50 products of the catalog.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx

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


SEARCH = "/products?q=wireless+headphones&limit=20"
ADDRESS = {"name": "Ada Lovelace", "line1": "12 Analytical Row", "line2": "", "city": "London",
           "postal_code": "NW1 6XE", "country": "GB"}  # fmt: skip


async def _place_orders(base: str, seconds: float, clients: int) -> int:
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        products = (await http.get("/products?limit=50&sort=newest")).json()["items"]
        ids = [p["id"] for p in products if p["in_stock"]]
        deadline = time.monotonic() + seconds
        placed = 0

        async def client(n: int) -> None:
            nonlocal placed
            while time.monotonic() < deadline:
                mode = "sync" if placed % 5 == 0 else "async"
                body = {
                    "customer_id": str(uuid.uuid4()),
                    "shipping_address": ADDRESS,
                    "lines": [{"product_id": ids[(placed + n) % len(ids)], "quantity": 1}],
                }
                response = await http.post(f"/orders?mode={mode}", json=body)
                placed += response.status_code in (201, 202)

        await asyncio.gather(*(client(n) for n in range(clients)))
        return placed


def drive(settings: Settings, seconds: float) -> threading.Thread:
    """Starts the load in the background; it ends by itself after ``seconds``."""
    base = f"http://127.0.0.1:{settings.gateway_port}"
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk not found: run scripts/bootstrap.sh")
    searches = subprocess.Popen(
        [wrk, "-t2", "-c32", f"-d{int(seconds)}s", base + SEARCH], stdout=subprocess.DEVNULL
    )

    def orders() -> None:
        placed = asyncio.run(_place_orders(base, seconds, clients=6))
        searches.wait()
        print(f"<!-- load: {placed} orders placed in {seconds:.0f} s, wrk on {SEARCH} -->")

    thread = threading.Thread(target=orders, daemon=True)
    thread.start()
    return thread


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--load", action="store_true", help="drive the platform while sampling")
    args = parser.parse_args()
    settings = Settings.from_env()
    load = drive(settings, args.seconds + 5) if args.load else None
    if load:
        time.sleep(5)  # pools and caches fill first: sample the steady state
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
    if load:
        load.join()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
