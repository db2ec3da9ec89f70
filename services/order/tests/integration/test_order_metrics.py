"""Per-stage latency histograms, end-to-end latency, compensations and orders by status and
mode are exported to Prometheus by the process that recorded them."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.order.tests.integration.helpers import (
    DECLINE,
    body,
    create,
    eventually,
    wait_until_ended,
)
from shopstream_tools.runtime import topology

pytestmark = pytest.mark.integration


def _samples(url: str) -> dict[tuple[str, frozenset], float]:
    text = httpx.get(url, timeout=10).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _count(samples: dict, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def test_stage_latencies_and_outcomes_are_exported(platform) -> None:
    with platform.client() as gw:
        pid = create(gw, stock=10)["id"]
        assert gw.post("/orders", params={"mode": "sync"}, json=body([(pid, 1)])).status_code == 201
        assert (
            gw.post("/orders", params={"mode": "sync"}, json=body([(pid, 1)], DECLINE)).status_code
            == 402
        )
        async_id = gw.post("/orders", json=body([(pid, 1)])).json()["id"]
        wait_until_ended(gw, async_id)
    app = _samples(f"{platform.url('order')}/metrics")
    for stage in ("stock_reserved", "payment_authorized", "confirmed", "payment_declined"):
        assert _count(app, "order_stage_seconds_count", stage=stage, mode="sync") >= 1, stage
    for step in ("reserve", "pay", "confirm"):
        assert _count(app, "order_step_seconds_count", step=step, mode="sync") >= 1, step
    assert _count(app, "order_end_to_end_seconds_count", mode="sync", outcome="confirmed") >= 1
    assert (
        _count(app, "order_end_to_end_seconds_count", mode="sync", outcome="payment_declined") >= 1
    )
    assert (
        _count(
            app,
            "order_compensations_total",
            action="release_stock",
            reason="payment_declined",
            mode="sync",
        )
        >= 1
    )
    assert _count(app, "order_transitions_total", status="PENDING", mode="async") >= 1

    worker = (
        f"http://127.0.0.1:{topology.worker_metrics_port(platform.settings, 'order', 0)}/metrics"
    )
    relay = f"http://127.0.0.1:{topology.relay_metrics_port(platform.settings, 'order')}/metrics"
    eventually(
        lambda: (
            _count(_samples(relay), "order_stage_seconds_count", stage="published", mode="async")
            >= 1
        ),
        "the relay's published stage",
        timeout=60,
        pause=1,
    )

    def exported() -> bool:
        s = _samples(worker)
        return all(
            (
                _count(s, "order_stage_seconds_count", stage="confirmed", mode="async") >= 1,
                _count(s, "order_end_to_end_seconds_count", mode="async", outcome="confirmed") >= 1,
                _count(s, "consumer_events_applied_total", group="order-saga") >= 1,
                any(
                    n == "kafka_consumer_lag_messages" and ("group", "order-saga") in ls
                    for n, ls in s
                ),
            )
        )

    eventually(exported, "the consumer process's order metrics", timeout=60, pause=1)


async def test_the_in_flight_gauge_counts_an_order_until_it_ends(platform, order_service) -> None:
    """A sync order held at its payment is in flight (STOCK_RESERVED) in the consumer process's
    gauge; once it ends it is counted there no more (the gauge is refreshed every 15 s)."""
    import asyncio

    from services.order.tests.integration.conftest import Gate, command
    from services.order.tests.integration.helpers import APPROVE

    worker = (
        f"http://127.0.0.1:{topology.worker_metrics_port(platform.settings, 'order', 0)}/metrics"
    )

    def in_flight() -> float:
        return _count(_samples(worker), "orders_in_flight", status="STOCK_RESERVED", mode="sync")

    before = in_flight()  # orders other tests left in flight, if any
    gate = Gate()
    service = order_service(payment_gate=gate)
    with platform.client("product") as p:
        pid = create(p, stock=5)["id"]
    placed = await service.place(command(body([(pid, 1)], APPROVE), "sync"))
    processing = asyncio.create_task(service.process_sync(placed.order))
    try:
        await asyncio.wait_for(gate.reached.wait(), 30)
        await asyncio.to_thread(
            eventually, lambda: in_flight() >= before + 1, "the held order in the gauge", 45, 1
        )
    finally:
        gate.open()
    assert (await asyncio.wait_for(processing, 30)).status.value == "CONFIRMED"
    await asyncio.to_thread(
        eventually, lambda: in_flight() <= before, "the ended order left", 45, 1
    )
