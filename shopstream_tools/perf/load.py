"""The loads perf-check and ``shopstream compose compare`` send (vegeta, open loop: async orders
by signed-in customers, the read mix of products and searches) and the saga latency read back
from the orders' own timestamps."""

from __future__ import annotations

import asyncio
import json
import random
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shopstream.config import Settings

ADDRESS = {"name": "Perf Customer", "line1": "1 Benchmark Way", "city": "Lisbon",
           "postal_code": "1000-001", "country": "PT"}  # fmt: skip


def order_targets(
    gateway: str,
    products: list[str],
    customers: list[str],
    count: int,
    tokens: dict[str, str] | None = None,
) -> list[str]:
    """Async orders by random customers, each signed in with its token when ``tokens`` has one."""
    from shopstream_tools.lab.vegeta_load import vegeta_target

    rng = random.Random()  # fresh Idempotency-Keys every run: a repeated key replays an old order
    lines = []
    for _ in range(count):
        customer = rng.choice(customers)
        body = {
            "customer_id": customer,
            "lines": [{"product_id": p, "quantity": 1} for p in rng.sample(products, 2)],
            "shipping_address": ADDRESS,
            "mode": "async",
        }
        headers = {"Content-Type": "application/json",
                   "Idempotency-Key": uuid.UUID(int=rng.getrandbits(128)).hex}  # fmt: skip
        if tokens and customer in tokens:
            headers["Authorization"] = f"Bearer {tokens[customer]}"
        lines.append(vegeta_target("POST", f"{gateway}/orders", json.dumps(body).encode(), headers))
    return lines


def read_targets(
    gateway: str, products: list[str], windows: list[list[Any]], count: int
) -> list[str]:
    """The read mix: 80% a product by id, 20% a filtered search."""
    from shopstream_tools.lab.vegeta_load import vegeta_target

    rng = random.Random(7)
    lines = []
    for _ in range(count):
        if rng.random() < 0.8:
            url = f"{gateway}/products/{rng.choice(products)}"
        else:
            category, min_low, min_high, width_low, width_high = rng.choice(windows)
            low = rng.randint(min_low, min_high)
            high = low + rng.randint(width_low, width_high)
            url = (f"{gateway}/products?category={category}&min_price={low}&max_price={high}"
                   "&in_stock=true&sort=price_asc&limit=20")  # fmt: skip
        lines.append(vegeta_target("GET", url, None, {"Accept": "application/json"}))
    return lines


def open_loop(
    folder: Path, name: str, lines: list[str], rate: float, seconds: float
) -> dict[str, Any]:
    """The targets at a fixed rate (vegeta, open loop): the load of perf-check and compose compare."""
    from shopstream_tools.lab.vegeta_load import run_vegeta, write_targets

    targets = folder / f"{name}.targets.jsonl"
    write_targets(targets, lines)
    try:
        return run_vegeta(targets, rate, seconds, folder, name, threading.Event(),
                          lambda pid: None, lambda status: None)  # fmt: skip
    finally:
        targets.unlink(missing_ok=True)


def saga_latency_ms(settings: Settings, since: float) -> dict[str, Any]:
    """``saga_latency`` of the async orders created since ``since``, read once from the projection."""
    from shopstream_tools.lab import orders

    start = datetime.fromtimestamp(since, UTC)
    return saga_latency(asyncio.run(orders.fetch(settings, start, datetime.now(UTC))))


def saga_latency(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Of the async orders among ``rows`` (``lab.orders.fetch``'s): accepted -> ended (``ended``:
    n, p50, p95, p99 in ms) and each saga stage's p50/p99 (``stages``: publish, reserve, pay,
    confirm), where that latency goes."""
    from shopstream_tools.lab import orders

    summary = orders.breakdown(r for r in rows if r["mode"] == "async")
    ended = summary["end_to_end_ms"]
    return {
        "ended": {"n": ended.get("count", 0.0),
                  **{k: round(ended.get(k, 0.0), 1) for k in ("p50", "p95", "p99")}},
        "stages": {name: {k: round(s[k], 1) for k in ("p50", "p99")}
                   for name, s in summary["stages_ms"].items() if s},
    }  # fmt: skip
