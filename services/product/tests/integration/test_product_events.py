"""Every change is one event on Kafka, in per-product order; a killed relay loses nothing; the
caches of two instances follow each other's writes."""

from __future__ import annotations

import dataclasses
import os
import signal
import time
import uuid

import asyncpg
import pytest

from services.product.tests.integration.helpers import create
from shopstream_tools.runtime import platform as runtime
from shopstream_tools.runtime import processes
from tests.platform_fixture import consume_events

pytestmark = pytest.mark.integration


def test_each_change_is_published_once_in_per_product_order(platform) -> None:
    ids = []
    with platform.client("product") as c:
        for _ in range(3):
            pid = create(c, stock=5)["id"]
            ids.append(pid)
            assert c.patch(f"/products/{pid}", json={"name": "Renamed"}).status_code == 200
            assert (
                c.post(f"/products/{pid}/stock/adjustments", json={"delta": 2}).status_code == 200
            )
            assert c.patch(f"/products/{pid}", json={"price": 3.25}).status_code == 200
            assert c.delete(f"/products/{pid}").status_code == 204
    wanted = set(ids)
    got = consume_events(
        platform.settings,
        "product-events",
        until=lambda evs: len(evs) >= 15,
        keep=lambda e: e.aggregate_id in wanted,
    )
    time.sleep(1)  # anything extra (a duplicate) would arrive within this second
    got = consume_events(
        platform.settings,
        "product-events",
        until=lambda evs: len(evs) >= 15,
        keep=lambda e: e.aggregate_id in wanted,
    )
    assert len(got) == 15, "exactly one event per change"
    assert len({e.id for e in got}) == 15
    for pid in ids:
        mine = [e for e in got if e.aggregate_id == pid]
        assert [e.type for e in mine] == [
            "ProductCreated",
            "ProductUpdated",
            "StockChanged",
            "ProductUpdated",
            "ProductDeleted",
        ]
        assert [e.data["version"] for e in mine] == [1, 2, 3, 4, 5]
        assert mine[1].data["changed"] == ["name"]
        assert mine[2].data["delta"] == 2
        assert all(e.version == 1 and e.source == "product-service" for e in mine)


def test_a_product_update_through_the_gateway_reaches_kafka(platform) -> None:
    with platform.client() as gw:
        pid = create(gw)["id"]
        assert gw.patch(f"/products/{pid}", json={"brand": "ViaGateway"}).status_code == 200
    got = consume_events(
        platform.settings,
        "product-events",
        until=lambda evs: any(e.type == "ProductUpdated" for e in evs),
        keep=lambda e: e.aggregate_id == pid,
    )
    assert got[-1].data["brand"] == "ViaGateway"


async def test_relay_killed_mid_batch_loses_nothing(platform) -> None:
    settings = platform.settings
    processes.stop(settings, "product-relay")
    brand = f"Relay{uuid.uuid4().hex[:8]}"
    with platform.client("product") as c:
        ids = {create(c, brand=brand)["id"] for _ in range(200)}
    conn = await asyncpg.connect(settings.database_url("product"))
    try:
        pending = await conn.fetchval("SELECT count(*) FROM outbox")
        assert pending >= 200
        # Small batches, so that the kill lands between batches of one run.
        slow = dataclasses.replace(settings, relay_batch_size=10)
        pid = runtime.start_relay(slow, "product")
        deadline = time.monotonic() + 30
        while (
            await conn.fetchval("SELECT count(*) FROM outbox")
            > pending - 30
        ):
            assert time.monotonic() < deadline, "relay published nothing"
        os.kill(pid, signal.SIGKILL)
        left = await conn.fetchval("SELECT count(*) FROM outbox")
        assert left > 0, "the kill must land before the relay finished"
        while processes.alive(pid):
            time.sleep(0.05)
        runtime.start_relay(settings, "product")
        deadline = time.monotonic() + 60
        while await conn.fetchval("SELECT count(*) FROM outbox") > 0:
            assert time.monotonic() < deadline, "relay did not finish after restart"
    finally:
        await conn.close()
    got = consume_events(
        settings,
        "product-events",
        until=lambda evs: {e.aggregate_id for e in evs} >= ids,
        keep=lambda e: e.aggregate_id in ids,
        timeout=60,
    )
    assert {e.aggregate_id for e in got} == ids


def test_cache_of_another_instance_follows_a_write(platform) -> None:
    with platform.client("product", 1) as one, platform.client("product", 2) as two:
        pid = create(one, name="Before")["id"]
        for _ in range(3):  # warm instance 2's cache
            assert two.get(f"/products/{pid}").json()["name"] == "Before"
        written = time.monotonic()
        assert one.patch(f"/products/{pid}", json={"name": "After"}).status_code == 200
        while two.get(f"/products/{pid}").json()["name"] != "After":
            assert time.monotonic() - written < 10, "instance 2 kept serving the old product"
            time.sleep(0.02)
        staleness = time.monotonic() - written
        metrics = two.get("/metrics").text
    assert 'product_cache_lookups_total{result="hit"}' in metrics
    assert "product_cache_invalidation_lag_seconds_count" in metrics
    print(f"cross-instance staleness {staleness * 1000:.0f} ms")


def test_a_deleted_product_disappears_from_the_other_instance(platform) -> None:
    with platform.client("product", 1) as one, platform.client("product", 2) as two:
        pid = create(one)["id"]
        assert two.get(f"/products/{pid}").status_code == 200
        assert one.delete(f"/products/{pid}").status_code == 204
        deadline = time.monotonic() + 10
        while two.get(f"/products/{pid}").status_code != 404:
            assert time.monotonic() < deadline
            time.sleep(0.02)
