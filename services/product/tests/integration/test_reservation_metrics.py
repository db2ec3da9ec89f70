"""Reservations held, as the product consumer process exports them: they follow reservations made,
confirmed and released, and of the samplers of one product database only one exports."""

from __future__ import annotations

import asyncio
import io
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.product.adapters import reservation_metrics
from services.product.adapters.reservation_metrics import HeldCollector
from services.product.tests.integration.helpers import create
from shopstream import emf
from shopstream_tools.runtime import topology

pytestmark = pytest.mark.integration

HELD_NOW = "product_reservations_held"
OLDEST = "product_reservation_oldest_held_age_seconds"


def exported_by_the_consumer(platform) -> dict[str, float]:
    port = topology.worker_metrics_port(platform.settings, "product", 0)
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return {
        s.name: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name in (HELD_NOW, OLDEST)
    }


def exported_by(collector: HeldCollector) -> dict[str, float]:
    return {s.name: s.value for family in collector.collect() for s in family.samples}


async def until(check: Callable[[], Awaitable[Any]], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.5)
    raise AssertionError(f"after {timeout:.0f}s: {what} (last: {last})")


@pytest.fixture
async def product_db(platform):
    conn = await asyncpg.connect(platform.settings.database_url("product"))
    yield conn
    await conn.close()


async def test_reservations_held_rise_on_reserve_and_fall_on_confirm_and_release(
    platform, product_db
) -> None:
    orders = [str(uuid.uuid4()) for _ in range(3)]

    async def exported_is(ours_held: int) -> dict[str, float] | None:
        # other tests' orders may hold stock too: count theirs from the table, ours from what we did
        others = await product_db.fetchval(
            "SELECT count(DISTINCT order_id) FROM reservations"
            " WHERE status = 'held' AND order_id <> ALL($1::uuid[])",
            orders,
        )
        figures = exported_by_the_consumer(platform)
        return figures if figures.get(HELD_NOW) == others + ours_held else None

    with platform.client("product") as c:
        lamp, desk = create(c, stock=10), create(c, stock=10)
        for order_id in orders:
            # two lines, one reservation: it counts orders holding stock, not lines
            lines = [{"product_id": lamp["id"], "quantity": 1}, {"product_id": desk["id"], "quantity": 2}]
            answer = c.post("/reservations", json={"order_id": order_id, "lines": lines})
            assert answer.status_code == 201, answer.text
        figures = await until(lambda: exported_is(3), 30, "the three reservations not counted")
        assert figures[OLDEST] > 0

        assert c.post(f"/reservations/{orders[0]}/commit").json()["status"] == "committed"
        assert c.post(f"/reservations/{orders[1]}/release").json()["status"] == "released"
        await until(lambda: exported_is(1), 30, "a confirmed and a released reservation still counted")

        assert c.post(f"/reservations/{orders[2]}/release").json()["status"] == "released"
        await until(lambda: exported_is(0), 30, "the last released reservation still counted")


async def test_one_sampler_per_database_exports_and_writes_emf(
    platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The platform's consumer holds the real lock; these two contend for a lock of their own.
    monkeypatch.setattr(reservation_metrics, "SAMPLER_LOCK", 0x7E57_0000 + uuid.uuid4().int % 0xFFFF)
    out = io.StringIO()
    monkeypatch.setattr(emf, "_metrics", emf.Metrics("shopstream", out))
    first, second = HeldCollector(), HeldCollector()
    stop_first, stop_second = asyncio.Event(), asyncio.Event()
    leader = asyncio.create_task(
        reservation_metrics.sample_while(platform.settings, stop_first, 0.2, first)
    )

    async def first_exports() -> bool:
        return HELD_NOW in exported_by(first)

    await until(first_exports, 10, "the only sampler never exported")
    standby = asyncio.create_task(
        reservation_metrics.sample_while(platform.settings, stop_second, 0.2, second)
    )
    try:
        await asyncio.sleep(1)  # five of its intervals
        assert exported_by(second) == {}, "a second sampler of the same database exported"

        stop_first.set()
        await leader
        assert exported_by(first) == {}, "a sampler that stopped still exports"

        async def second_takes_over() -> bool:
            return HELD_NOW in exported_by(second)

        await until(second_takes_over, 10, "the standby never took over")
    finally:
        stop_first.set()
        stop_second.set()
        await asyncio.gather(leader, standby)
    assert emf._metrics is not None
    emf._metrics.flush()
    docs = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [d["Service"] for d in docs] == ["product"], docs
    units = {m["Name"]: m["Unit"] for m in docs[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert units == {"ReservationsHeld": "Count", "ReservationOldestHeldAgeSeconds": "Seconds"}
    assert len(docs[0]["ReservationsHeld"]) >= 2 and min(docs[0]["ReservationsHeld"]) >= 0
