"""The load generators a test drives a step with: Locust (closed loop, scenario users) and vegeta
(open loop, order targets written beforehand), each registered with Prometheus while it runs;
and the orders a step placed, read back from the order service."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from shopstream_tools.lab import orders, scrape
from shopstream_tools.lab.context import Lab
from shopstream_tools.lab.steps import Drive


def scraped(lab: Lab, name: str, tool: str, run: Callable[[int, Callable[[int], None], Callable[[dict[str, Any]], None]], dict[str, Any]]) -> Drive:
    """A load generator that serves metrics on a port of its own, listed as Prometheus' loadgen
    target from the moment it starts until it stops; what Prometheus saw goes with its result."""

    def drive(on_start: Callable[[int], None], progress: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        port = scrape.free_port()
        run_name = lab.run_dir.name

        def started(pid: int) -> None:
            scrape.register(lab.settings, port, run_name, name, tool)
            on_start(pid)

        began = time.monotonic()
        try:
            result = run(port, started, progress)
        finally:
            scrape.unregister(lab.settings)
        result["prometheus"] = scrape.seen(lab.settings, run_name, name, tool, time.monotonic() - began)
        return result

    return drive


def locust(lab: Lab, name: str, **plan: Any) -> Drive:
    from dataclasses import replace

    from shopstream_tools.lab.locust_load import LocustPlan, run_locust

    assert lab.workload is not None
    locust_plan = LocustPlan(host=lab.gateway, data_file=lab.workload.path, **plan)

    def run(port: int, on_start: Callable[[int], None], progress: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        return run_locust(replace(locust_plan, metrics_port=port), lab.raw, name, lab.stop, on_start, progress)

    return scraped(lab, name, "locust", run)


def jmeter(lab: Lab, name: str, plan: str, users: int, seconds: float, spawn_rate: float = 100.0,
           think_seconds: float = 0.0, mode: str = "async") -> Drive:
    """A JMeter test plan (``performance-tests/jmeter``) on the lab's data, non-GUI."""
    from shopstream_tools.lab.jmeter_load import JMeterPlan, run_jmeter, write_lab_data

    assert lab.workload is not None
    data = lab.raw / "jmeter-data"
    if not (data / "customers.txt").exists():
        write_lab_data(lab.workload, data)
    spec = JMeterPlan(plan, "127.0.0.1", lab.settings.gateway_port, users, seconds, think_seconds, spawn_rate, mode, data)

    def drive(on_start: Callable[[int], None], progress: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        return run_jmeter(spec, lab.raw, name, lab.stop, on_start, progress)

    return drive


def closed_loop(lab: Lab, test: str, name: str, **plan: Any) -> Drive:
    """Users in a closed loop: Locust, or the test's JMeter plan when the lab runs with
    ``--loadgen jmeter`` and the test has one (PT-01, PT-02, PT-04: their mixes are the lab's)."""
    from shopstream_tools.lab.jmeter_load import PLANS

    if lab.loadgen == "jmeter" and test in PLANS:
        keep = {k: plan[k] for k in ("spawn_rate", "think_seconds", "mode") if k in plan}
        return jmeter(lab, name, PLANS[test], plan["users"], plan["seconds"], **keep)
    return locust(lab, name, **plan)


def attach_orders(lab: Lab, record: dict[str, Any]) -> None:
    if not lab.order_service:
        return
    since = datetime.fromisoformat(record["started_at"])
    until = datetime.fromisoformat(record["load_ended_at"])
    rows = asyncio.run(orders.fetch(lab.settings, since, until))
    record["orders"] = orders.breakdown(rows)



def order_targets(lab: Lab, path: Path, mode: str, count: int) -> None:
    import random
    import uuid

    from shopstream_tools.lab.vegeta_load import vegeta_target, write_targets

    assert lab.workload is not None
    w = lab.workload
    rng = random.Random()  # fresh keys every run: a repeated Idempotency-Key replays an old order

    def lines() -> Any:
        for _ in range(count):
            items = [{"product_id": pid, "quantity": 1} for pid in rng.sample(w.order_products, 2)]
            if w.scarce_products and rng.random() < 0.02:
                items.append({"product_id": rng.choice(w.scarce_products), "quantity": 1})
            customer = rng.choice(w.customers)
            body = {
                "customer_id": customer,
                "lines": items,
                "shipping_address": {"name": "Lab Customer", "line1": "1 Benchmark Way",
                                     "city": "Lisbon", "postal_code": "1000-001", "country": "PT"},
                "mode": mode,
            }  # fmt: skip
            headers = {
                "Content-Type": "application/json",
                "Idempotency-Key": uuid.UUID(int=rng.getrandbits(128)).hex,
                "X-Client-Id": f"lab-open-{rng.randrange(1024)}",
                "Authorization": f"Bearer {w.tokens[customer]}",
            }
            yield vegeta_target("POST", f"{lab.gateway}/orders", json.dumps(body).encode(), headers)

    write_targets(path, lines())


def vegeta(lab: Lab, name: str, mode: str, rate: float, seconds: float) -> Drive:
    from shopstream_tools.lab.vegeta_load import run_vegeta

    targets = lab.raw / f"{name}.targets.jsonl"
    order_targets(lab, targets, mode, int(rate * seconds * 1.05) + 10)

    def run(port: int, on_start: Callable[[int], None], progress: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        try:
            return run_vegeta(targets, rate, seconds, lab.raw, name, lab.stop, on_start, progress, metrics_port=port)
        finally:
            targets.unlink(missing_ok=True)

    return scraped(lab, name, "vegeta", run)

