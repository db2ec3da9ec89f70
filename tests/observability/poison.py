"""Dead letters made by the real shared consumer, on a topic of the test's own.

A message the applier refuses (``Poison``) is dead-lettered by ``shopstream.consumer.BatchConsumer``
with its reason and origin headers, exactly as a service's consumer does, but from a topic and a
group no service reads, so no other test meets a message it cannot apply.
"""

from __future__ import annotations

import asyncio
import uuid

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from shopstream import events
from shopstream.config import Settings
from shopstream.consumer import BatchConsumer, Delivery, Poison


def dead_letter(settings: Settings, reason: str, key: str = "") -> tuple[str, str, str]:
    """Publish one event the consumer refuses; return (key, topic, group) once it is dead-lettered."""
    key = key or f"poison-{uuid.uuid4().hex[:8]}"
    topic = f"obs-poison-{uuid.uuid4().hex[:8]}"
    group = f"obs-poison-{uuid.uuid4().hex[:6]}"
    admin = AdminClient({"bootstrap.servers": settings.kafka_servers})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result()
    event = events.new_event("OrderPlaced", key, {"broken": True}, source="observability-test")
    producer = Producer({"bootstrap.servers": settings.kafka_servers})
    producer.produce(topic, key=key, value=events.encode(event), headers=[("origin", b"console-test")])
    assert producer.flush(10) == 0

    async def run() -> None:
        done = asyncio.Event()

        async def refuse(_deliveries: list[Delivery]) -> None:
            done.set()
            raise Poison(reason)

        consumer = BatchConsumer(settings, group, [topic], refuse)
        task = asyncio.create_task(consumer.run())
        try:
            await asyncio.wait_for(done.wait(), 60)
            await asyncio.sleep(1)  # the dead-letter produce is flushed right after the refusal
        finally:
            consumer.stop()
            await asyncio.wait_for(task, 30)

    asyncio.run(run())
    return key, topic, group


def refused_by_the_product_saga(settings: Settings) -> str:
    """An OrderPlaced whose lines cannot be read: the product service's saga consumer dead-letters it
    (its ``consumer_dead_lettered_total`` counts it). Every other reader of order-events decodes it
    and passes it by: the order tracker wants an ``event_type`` header, tests filter by order id."""
    order_id = str(uuid.uuid4())
    event = events.new_event(
        "OrderPlaced",
        order_id,
        {"order_id": order_id, "mode": "async", "lines": "unreadable"},
        source="observability-test",
    )
    producer = Producer({"bootstrap.servers": settings.kafka_servers})
    producer.produce("order-events", key=order_id, value=events.encode(event))
    assert producer.flush(10) == 0
    return order_id
