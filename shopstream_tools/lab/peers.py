"""`shopstream lab peers`: the same short work against shopstream and each peer, one Locust run
per (platform, work), CPU and memory of every process of the platform counted (its PostgreSQL
backends included, found by database name), then the oversell check. Run it under the bench lock."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from shopstream_tools.lab import peers_report

ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = ROOT / "performance-tests" / "locust" / "peers.py"
WORK = {  # platform -> {work: (Locust user class, request name)}
    "shopstream": {"by_id": ("ShopstreamById", "by_id"), "search": ("ShopstreamSearch", "search"),
                   "category": ("ShopstreamCategory", "category"),
                   "order_sync": ("ShopstreamOrderSync", "order sync"),
                   "order_async": ("ShopstreamOrderAsync", "order async")},
    "oscar": {"by_id": ("OscarById", "by_id"), "search": ("OscarSearch", "search"),
              "category": ("OscarCategory", "category"), "order": ("OscarOrder", "order")},
    "medusa": {"by_id": ("MedusaById", "by_id"), "search": ("MedusaSearch", "search"),
               "category": ("MedusaCategory", "category"), "order": ("MedusaOrder", "order")},
}  # fmt: skip
# An open-loop user starts its work once every PACING_SECONDS: an answer slower than that delays
# its next start, which `peers_report.fell_behind` catches (the loop was no longer open).
PACING_SECONDS = 30.0
DATABASES = {"shopstream": ("product", "order"), "oscar": ("oscar",), "medusa": ("medusa",)}


def _pid(path: Path) -> int:
    return int(path.read_text().split()[0])


def processes(platform: str, roots: list[int], postmaster: int) -> list[psutil.Process]:
    """The platform's process trees (without the shared postmaster's) and its database backends."""
    found: list[psutil.Process] = []
    for root in roots:
        top = psutil.Process(root)
        for proc in [top, *top.children(recursive=True)]:
            # a process may end while the tree is read (a worker, a closed connection's backend)
            with contextlib.suppress(psutil.Error):
                if proc.pid == postmaster or postmaster in {p.pid for p in proc.parents()}:
                    continue
                found.append(proc)
    for backend in psutil.Process(postmaster).children():
        with contextlib.suppress(psutil.Error):
            words = " ".join(backend.cmdline()).split()
            if len(words) > 2 and words[2] in DATABASES[platform]:
                found.append(backend)
    return found


def _cpu(procs: list[psutil.Process]) -> dict[int, float]:
    out = {}
    for proc in procs:
        try:
            t = proc.cpu_times()
            out[proc.pid] = t.user + t.system
        except psutil.Error:
            pass
    return out


def _rss_mb(procs: list[psutil.Process]) -> float:
    total = 0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total / 2**20


def settle(find: Callable[[], list[psutil.Process]], idle_cores: float = 0.25,
           longest: float = 120.0) -> float:  # fmt: skip
    """Wait until the processes are idle (under `idle_cores` of CPU over 2 s), at most `longest`
    seconds, and say how long that took. Locust stops its users at the end of a step, but a
    server keeps working off the requests already queued (Oscar's gunicorn: up to a search per
    user, seconds each): that work would otherwise land in the next step's time and CPU."""
    started = time.monotonic()
    while time.monotonic() - started < longest:
        before = _cpu(find())
        time.sleep(2.0)
        after = _cpu(find())
        if sum(after[p] - before.get(p, after[p]) for p in after) / 2.0 < idle_cores:
            break
    return time.monotonic() - started


def measure(platform: str, host: str, user_class: str, name: str, users: int, seconds: int,
            find: Callable[[], list[psutil.Process]], out: Path,
            everyone: Callable[[], list[psutil.Process]] | None = None,
            rate: float = 0.0) -> dict[str, Any]:  # fmt: skip
    """One Locust step. `rate` > 0: an open loop at that many operations per second (users each
    paced at PACING_SECONDS, all started at once at random phases) instead of `users` users."""
    settled = settle(everyone or find)
    before = _cpu(find())
    if rate:
        users = max(1, round(rate * PACING_SECONDS))
    prefix = out / f"{platform}-{user_class}-{f'open{rate:g}' if rate else users}"
    env = {**os.environ, "PEERS_CATEGORIES": "Books,Electronics,Garden",
           "PEERS_DATA": str(out / "peers-data.json"),
           "PEERS_PACING": str(PACING_SECONDS) if rate else "",
           "PEERS_STATUSES": f"{prefix}_statuses.json"}  # fmt: skip
    spawn = users if rate else max(users // 5, 1)
    subprocess.run(
        [str(ROOT / ".venv" / "bin" / "locust"), "-f", str(LOCUSTFILE), user_class, "--headless",
         "-u", str(users), "-r", str(spawn), "-t", f"{seconds}s", "-H", host,
         "--csv", str(prefix), "--only-summary"],
        check=False, capture_output=True, env=env,
    )  # fmt: skip
    procs = find()  # again: database backends opened during the step count from zero
    after = _cpu(procs)
    cpu_s = sum(after[p] - before.get(p, 0.0) for p in after)
    stats = Path(f"{prefix}_stats.csv").read_text()
    try:
        figures: dict[str, Any] = peers_report.locust_row(stats, name)
    except ValueError:  # not one request finished within the step: an invalid row, not a crash
        figures = {"count": 0.0, "rps": 0.0, "failures": 0.0, "note": "no request completed"}
    # an order is several requests on the peers (basket or cart, shipping, payment, checkout):
    # a failure of any of them is a failed order
    figures["flow_failures"] = peers_report.flow_failures(stats)
    figures["cpu_ms_per_op"] = 1000 * cpu_s / figures["count"] if figures["count"] else 0.0
    figures["cores"] = cpu_s / seconds
    figures["rss_mb"] = _rss_mb(procs)
    figures["settled_s"] = round(settled, 1)
    statuses = Path(f"{prefix}_statuses.json")
    if statuses.exists():  # exact percentiles and the statuses, from the Locust file's listener
        by_name = json.loads(statuses.read_text())
        figures.update(by_name.get(name, {}))
        if "order flow" in by_name:  # a peer's whole order, first request to last
            figures["flow"] = by_name["order flow"]
    if rate:  # Locust's rate runs from the first to the last request, not over the step
        figures["rps"] = figures["count"] / seconds
        figures["offered_rps"] = rate
        figures["behind"] = peers_report.fell_behind(figures, rate, seconds, PACING_SECONDS)
    return figures


def _open_rate(rates: dict[str, float], work: str) -> float:
    """The rate asked for the work, or for its kind ("order" for order_sync and order_async)."""
    kind = "order" if work.startswith("order") else work
    return rates.get(work, rates.get(kind, 0.0))


def run(hosts: dict[str, str], roots: dict[str, list[int]], postmaster: int, users: list[int],
        seconds: int, out: Path, order_seconds: int = 60,
        only: set[tuple[str, str]] | None = None, open_rates: dict[str, float] | None = None,
        open_seconds: int = 60, done: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """Each (platform, work) for `seconds`, orders for `order_seconds` at least: a peer's order is
    six requests (Medusa) and, at 50 users, takes over 20 s, so a short step completes none.
    Then, for each work in `open_rates`, an open loop at that rate for `open_seconds` (rows
    `work@open`; "order" stands for every kind of order). `only`: just those (platform, work)
    steps. `done`: the steps an interrupted run of the same folder finished, kept, not run again."""
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {platform: dict(steps) for platform, steps in (done or {}).items()}

    def everyone() -> list[psutil.Process]:
        """Every platform's processes: a step starts when all are idle, so that the saga still
        working off shopstream's async orders does not share the cores with a peer's step."""
        return [
            proc for platform in hosts for proc in processes(platform, roots[platform], postmaster)
        ]

    for platform, host in hosts.items():

        def find(platform: str = platform) -> list[psutil.Process]:
            return processes(platform, roots[platform], postmaster)

        loads = [(n, False) for n in users] + ([(0, True)] if open_rates else [])
        for n, opened in loads:
            for work, (cls, name) in WORK[platform].items():
                if only is not None and (platform, work) not in only:
                    continue
                rate = _open_rate(open_rates or {}, work) if opened else 0.0
                if opened and not rate:
                    continue
                key = f"{work}@open" if opened else work if n == users[0] else f"{work}@{n}"
                if key in results.get(platform, {}):
                    continue
                length = max(seconds, order_seconds) if work.startswith("order") else seconds
                results.setdefault(platform, {})[key] = measure(
                    platform, host, cls, name, n, open_seconds if opened else length, find, out,
                    everyone, rate,
                )
                (out / "results.json").write_text(json.dumps(results, indent=1))
    return results
