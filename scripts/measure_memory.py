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

from shopstream import auth
from shopstream.config import Settings
from shopstream_tools.runtime import platform, processes


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


def _shared_segment_kb(pid: int) -> int:
    """Size of the shared memory segments ``pid`` maps (PostgreSQL's buffers: ``/dev/zero``)."""
    size, shared = 0, False
    try:
        for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
            fields = line.split()
            if "-" in fields[0] and len(fields) >= 5:  # a mapping's header line
                name = fields[5] if len(fields) > 5 else ""
                shared = fields[1].endswith("s") and name.startswith(
                    ("/dev/zero", "/dev/shm", "/SYSV")
                )
            elif shared and fields[0] == "Size:":
                size += int(fields[1])
    except OSError:
        pass
    return size


def tree_shared_once_mb(pid: int | None) -> float:
    """RSS with shared memory counted once: each process's own and file-backed pages, plus the
    shared segment's resident pages at most once (no more than the segment's size). An upper
    bound of the memory really used, and the figure a budget in 'RSS' means."""
    if not pid or not processes.alive(pid):
        return 0.0
    tree = [pid, *children(pid)]
    own = sum(processes.status_kb(p, "RssAnon") + processes.status_kb(p, "RssFile") for p in tree)
    shmem = sum(processes.status_kb(p, "RssShmem") for p in tree)
    return (own + min(shmem, _shared_segment_kb(pid) or shmem)) / 1024


def tree_mb(pid: int | None, measure: Callable[[int], int]) -> float:
    if not pid or not processes.alive(pid):
        return 0.0
    return sum(measure(p) for p in [pid, *children(pid)]) / 2**20


def sample(settings: Settings) -> dict[str, tuple[float, float, float]]:
    return {
        row.name: (
            tree_mb(row.pid, pss_bytes),
            tree_mb(row.pid, processes.rss_bytes),
            tree_shared_once_mb(row.pid),
        )
        for row in platform.status(settings)
        if row.pid
    }


SEARCH = "/products?q=wireless+headphones&limit=20"
ADDRESS = {"name": "Ada Lovelace", "line1": "12 Analytical Row", "line2": "", "city": "London",
           "postal_code": "NW1 6XE", "country": "GB"}  # fmt: skip


async def _place_orders(base: str, seconds: float, clients: int) -> int:
    token = auth.admin_token(Settings.from_env())  # an operator may order for any customer
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, timeout=30, headers=headers) as http:
        # Orders drain stock: take products that still have some, spread over the price range.
        products = (await http.get("/products?in_stock=true&limit=100&sort=price_asc")).json()
        ids = [p["id"] for p in products["items"] if p["stock"] >= 50]
        if not ids:
            raise SystemExit("no product has stock left: `shopstream reset && shopstream seed`")
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
    total = [0.0, 0.0, 0.0]
    deadline = time.monotonic() + args.seconds
    while True:
        now = sample(settings)
        for name, figures in now.items():
            peak = peaks.setdefault(name, [0.0, 0.0, 0.0])
            peak[:] = [max(old, new) for old, new in zip(peak, figures, strict=True)]
        for column in range(3):
            total[column] = max(total[column], sum(v[column] for v in now.values()))
        if time.monotonic() >= deadline:
            break
        time.sleep(1)
    print("| process (with its children) | peak PSS MB | peak RSS MB | peak RSS, shared once MB |")
    print("|---|---:|---:|---:|")
    for name, (pss, rss, once) in sorted(peaks.items(), key=lambda kv: -kv[1][0]):
        print(f"| {name} | {pss:.0f} | {rss:.0f} | {once:.0f} |")
    pss, rss, once = total
    print(f"| **all (peak of the sum)** | **{pss:.0f}** | **{rss:.0f}** | **{once:.0f}** |")
    if load:
        load.join()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
