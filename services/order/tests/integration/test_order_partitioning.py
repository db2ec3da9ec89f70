"""Under each partitioning strategy, every message of order-events carries the strategy's key,
lands on the partition Kafka's partitioner gives that key, and the messages of one key arrive in
the order they were committed: per order always, per customer or per lead product when the
strategy keys by them."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict

import msgspec
import pytest
from confluent_kafka import Consumer

from services.order.domain.commands import CancelOrder
from services.order.domain.partitioning import (
    KeyFields,
    PartitionStrategy,
    key_for,
    partition_for,
)
from services.order.tests.integration.conftest import command
from services.order.tests.integration.helpers import body, create, new_customer
from shopstream import events

pytestmark = pytest.mark.integration


def _read(settings, wanted: set[str], count: int, timeout: float = 60) -> list[tuple[bytes, int, int, events.Event]]:
    """(key, partition, offset, event) of the first delivery of each event about ``wanted``."""
    consumer = Consumer({
        "bootstrap.servers": settings.kafka_servers,
        "group.id": f"test-{uuid.uuid4().hex}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    consumer.subscribe(["order-events"])
    seen: dict[str, tuple[bytes, int, int, events.Event]] = {}
    deadline = time.monotonic() + timeout
    try:
        while len(seen) < count:
            assert time.monotonic() < deadline, f"{len(seen)} of {count} messages seen"
            for message in consumer.consume(1000, 0.5):
                if message.error():
                    continue
                try:
                    event = events.decode(message.value())
                except msgspec.MsgspecError:  # other tests put poison on the topic
                    continue
                if event.aggregate_id in wanted and event.id not in seen:
                    seen[event.id] = (message.key(), message.partition(), message.offset(), event)
    finally:
        consumer.close()
    return list(seen.values())


@pytest.mark.parametrize("strategy", list(PartitionStrategy), ids=lambda s: s.value)
async def test_per_key_order_holds_under_each_strategy(platform, order_service, strategy) -> None:
    service = order_service(strategy=strategy)
    partitions = platform.settings.topics()["order-events"]
    with platform.client("product") as p:
        products = [create(p, stock=50)["id"] for _ in range(2)]
    customers = [new_customer(), new_customer()]
    # Four orders: each customer leads once with each product. Sync orders that are never
    # processed: the product service ignores them, so only this test writes their streams.
    plans = [(c, products[i]) for c in customers for i in range(2)]
    orders: list[tuple[str, KeyFields]] = []
    committed: list[tuple[str, str]] = []  # (order id, event type) in commit order
    for customer, lead in plans:
        lines = [(lead, 1), *[(q, 1) for q in products if q != lead]]
        placed = await service.place(command(body(lines, customer), "sync"))
        order_id = placed.state.order_id
        orders.append((str(order_id), KeyFields(order_id, uuid.UUID(customer), uuid.UUID(lead))))
        committed.append((str(order_id), "OrderPlaced"))
    for order_id, _ in reversed(orders):
        await service.decide_now(uuid.UUID(order_id), CancelOrder(order_id=uuid.UUID(order_id)))
        committed.append((order_id, "OrderCancelled"))

    got = await asyncio.to_thread(_read, platform.settings, {o for o, _ in orders}, len(committed))
    fields = dict(orders)
    by_key: dict[bytes, list[tuple[int, int, str, str]]] = defaultdict(list)
    for key, partition, offset, event in got:
        expected = key_for(strategy, fields[event.aggregate_id])
        assert key == expected, (strategy, event.type)
        assert partition == partition_for(key, partitions)
        by_key[key].append((partition, offset, event.aggregate_id, event.type))
    for key, messages in by_key.items():
        assert len({m[0] for m in messages}) == 1, "one key, one partition"
        arrived = [(m[2], m[3]) for m in sorted(messages)]
        assert arrived == [c for c in committed if key_for(strategy, fields[c[0]]) == key]
    distinct_keys = {
        PartitionStrategy.ORDER_ID: 4, PartitionStrategy.CUSTOMER_ID: 2,
        PartitionStrategy.PRODUCT_ID: 2,
    }[strategy]
    assert len(by_key) == distinct_keys
