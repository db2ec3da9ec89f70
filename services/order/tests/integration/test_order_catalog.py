"""The order service's catalog replica follows product-events (version-guarded), prices new
orders, refuses deleted products, and looks up a product it has not heard of yet."""

from __future__ import annotations

import asyncio
import time
import uuid

import msgspec
import pytest
from confluent_kafka import Consumer, Producer

from services.order.tests.integration.helpers import (
    assert_problem,
    body,
    create,
    order_db,
)
from shopstream import events
from shopstream_tools.runtime import platform as runtime
from shopstream_tools.runtime import processes, topology
from tests.platform_fixture import consume_events

pytestmark = pytest.mark.integration


async def _replica(platform, product_id: str, until, timeout: float = 60):
    conn = await order_db(platform)
    try:
        deadline = time.monotonic() + timeout
        while True:
            row = await conn.fetchrow(
                "SELECT name, price_cents, deleted, version FROM catalog WHERE product_id = $1",
                uuid.UUID(product_id),
            )
            if row is not None and until(row):
                return row
            assert time.monotonic() < deadline, f"replica of {product_id}: {row}"
            await asyncio.sleep(0.1)
    finally:
        await conn.close()


async def test_the_replica_follows_product_changes_and_prices_orders(platform) -> None:
    with platform.client("product") as p:
        pid = create(p, price=20.0)["id"]
        await _replica(platform, pid, lambda r: r["version"] == 1 and r["price_cents"] == 2000)
        assert p.patch(f"/products/{pid}", json={"price": 17.5}).status_code == 200
        await _replica(platform, pid, lambda r: r["version"] == 2 and r["price_cents"] == 1750)
    with platform.client("order") as c:
        order = c.post("/orders", params={"mode": "sync"}, json=body([(pid, 2)])).json()
        assert order["lines"][0]["unit_price_cents"] == 1750 and order["total_cents"] == 3500

    # An old event replayed (a consumer reset, a duplicate) does not bring the old price back.
    (created,) = consume_events(
        platform.settings, "product-events",
        keep=lambda e: e.aggregate_id == pid and e.type == "ProductCreated",
        until=lambda evs: len(evs) >= 1,
    )
    # A sentinel behind the replay on the same partition: once it is applied, so is the replay.
    sentinel = str(uuid.uuid4())
    marker = _created(sentinel, "sentinel", 1)
    producer = Producer({"bootstrap.servers": platform.settings.kafka_servers,
                         "partitioner": "murmur2_random"})
    for event in (created, marker):
        producer.produce("product-events", key=pid.encode(), value=events.encode(event))
    producer.flush(10)
    await _replica(platform, sentinel, lambda r: r["version"] == 1)
    row = await _replica(platform, pid, lambda r: True)
    assert (row["price_cents"], row["version"]) == (1750, 2)

    with platform.client("product") as p:
        assert p.delete(f"/products/{pid}").status_code == 204
    await _replica(platform, pid, lambda r: r["deleted"])
    with platform.client("order") as c:
        refused = c.post("/orders", json=body([(pid, 1)]))
        assert_problem(refused, 422, "lines[0].product_id")


async def test_a_product_the_replica_has_not_heard_of_is_looked_up(platform) -> None:
    settings = platform.settings
    processes.stop(settings, "order-consume")  # the replica hears nothing for now
    try:
        with platform.client("product") as p:
            pid = create(p, stock=3, price=4.0)["id"]
        with platform.client("order") as c:
            answer = c.post("/orders", params={"mode": "sync"}, json=body([(pid, 1)]))
            assert answer.status_code == 201, answer.text
            assert answer.json()["total_cents"] == 400
        conn = await order_db(platform)
        try:
            row = await conn.fetchrow(
                "SELECT price_cents, version FROM catalog WHERE product_id = $1", uuid.UUID(pid)
            )
            assert row is not None and (row["price_cents"], row["version"]) == (400, 1)
        finally:
            await conn.close()
    finally:
        runtime.start_workers(settings, topology.ServiceSpec("order"))


def _created(product_id: str, name: str, price_cents: int) -> events.Event:
    """A ProductCreated as its contract says the product service publishes it."""
    data = {"id": product_id, "version": 1, "sku": f"T-{product_id[:8].upper()}", "name": name,
            "description": "", "category": "Test", "brand": "Test", "price_cents": price_cents,
            "stock": 1}  # fmt: skip
    return events.new_event("ProductCreated", product_id, data)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        # PostgreSQL keeps no NUL in text: the batch holding this event fails whatever is around it
        ({"name": "nul\x00name", "price_cents": 100}, "CharacterNotInRepertoireError"),
        # a followed kind without its price: ignoring it would leave the replica silently stale
        ({"name": "no price"}, "poison: ProductCreated"),
    ],
    ids=["database-refuses", "unreadable"],
)
async def test_a_product_event_the_replica_cannot_hold_is_dead_lettered_and_the_replica_goes_on(
    platform, fields: dict[str, object], reason: str
) -> None:
    poisoned, after = str(uuid.uuid4()), str(uuid.uuid4())
    data = {**_created(poisoned, "poison", 100).data, **fields}
    if "price_cents" not in fields:
        del data["price_cents"]
    poison = events.new_event("ProductCreated", poisoned, data)
    behind = _created(after, "after the poison", 200)
    producer = Producer({"bootstrap.servers": platform.settings.kafka_servers,
                         "partitioner": "murmur2_random"})
    for event in (poison, behind):  # one key: the same partition, the poison first
        producer.produce("product-events", key=poisoned.encode(), value=events.encode(event),
                         headers=[("event_type", b"ProductCreated")])
    assert producer.flush(10) == 0

    await _replica(platform, after, lambda r: r["name"] == "after the poison")
    reader = Consumer({"bootstrap.servers": platform.settings.kafka_servers,
                       "group.id": f"test-{uuid.uuid4().hex}", "auto.offset.reset": "earliest"})
    reader.subscribe(["dead-letter"])
    found: dict[str, str] = {}
    deadline = time.monotonic() + 60
    try:
        while not found:
            assert time.monotonic() < deadline, "the poison was not dead-lettered"
            for message in await asyncio.to_thread(reader.consume, 500, 0.5):
                if message.error() or poison.id.encode() not in (message.value() or b""):
                    continue
                found = {k: v.decode() for k, v in message.headers() or []}
    finally:
        reader.close()
    assert found["dlq.consumer_group"] == "order-catalog"
    assert found["dlq.original_topic"] == "product-events"
    assert found["dlq.reason"].startswith(reason), found["dlq.reason"]
    conn = await order_db(platform)
    try:
        assert await conn.fetchval(
            "SELECT count(*) FROM catalog WHERE product_id = $1", uuid.UUID(poisoned)
        ) == 0
    finally:
        await conn.close()


def test_product_events_are_decoded_as_the_replica_expects(platform) -> None:
    """The fields the replica reads are those product-service sends (docs/events.md)."""
    with platform.client("product") as p:
        pid = create(p, price=1.25)["id"]
    (created,) = consume_events(
        platform.settings, "product-events",
        keep=lambda e: e.aggregate_id == pid and e.type == "ProductCreated",
        until=lambda evs: len(evs) >= 1,
    )
    data = msgspec.to_builtins(created.data)
    assert {"id", "name", "price_cents", "version"} <= set(data)
    assert (data["price_cents"], data["version"]) == (125, 1)
