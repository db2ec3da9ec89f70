"""The shared idempotent consumer against real Kafka and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from shopstream import db, events
from shopstream.consumer import DEAD_LETTER_TOPIC, EventConsumer, Poison

pytestmark = pytest.mark.integration


class Crash(BaseException):
    """Stands for the process dying: not an Exception, so nothing retries or dead-letters it."""


@pytest.fixture
async def world(platform):
    settings = platform.settings
    topic = f"test-consumer-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": settings.kafka_servers})
    for f in admin.create_topics(
        [NewTopic(topic, num_partitions=3, replication_factor=1)]
    ).values():
        f.result()
    pool = await db.create_pool(settings, "product")
    table = f"effects_{uuid.uuid4().hex[:8]}"
    await pool.execute(f"CREATE TABLE {table} (event_id uuid PRIMARY KEY, n int NOT NULL)")
    producer = Producer({"bootstrap.servers": settings.kafka_servers, "enable.idempotence": True})
    yield settings, topic, pool, table, producer
    await pool.execute(f"DROP TABLE {table}")
    await pool.close()


def _handler(table: str, poison_value: int | None = None):
    async def handle(conn, event: events.Event) -> None:
        if event.data["n"] == poison_value:
            raise ValueError("this event can never be applied")
        await conn.execute(f"INSERT INTO {table} VALUES ($1, $2)", event.id, event.data["n"])

    return handle


async def _run_until(consumer: EventConsumer, done, timeout: float = 30) -> None:
    task = asyncio.create_task(consumer.run())
    try:
        async with asyncio.timeout(timeout):
            while not await done():
                if task.done():
                    task.result()
                await asyncio.sleep(0.1)
    finally:
        consumer.stop()
        await asyncio.gather(task, return_exceptions=True)


def _publish(producer: Producer, topic: str, evs: list[events.Event]) -> None:
    for e in evs:
        producer.produce(topic, key=e.aggregate_id.encode(), value=events.encode(e))
    producer.flush(10)


async def test_an_event_delivered_twice_is_applied_once(world) -> None:
    settings, topic, pool, table, producer = world
    evs = [events.new_event("Counted", f"k{i % 4}", {"n": i}) for i in range(20)]
    _publish(producer, topic, evs + evs[:7])  # seven delivered twice
    consumer = EventConsumer(settings, pool, f"g-{uuid.uuid4().hex[:6]}", [topic], _handler(table))

    async def all_seen() -> bool:
        return (
            await pool.fetchval(
                "SELECT count(*) FROM processed_events WHERE consumer_group = $1", consumer.group
            )
            >= 20
        )

    await _run_until(consumer, all_seen)
    await asyncio.sleep(0.5)
    assert await pool.fetchval(f"SELECT count(*) FROM {table}") == 20
    assert sorted(r["n"] for r in await pool.fetch(f"SELECT n FROM {table}")) == list(range(20))


async def test_a_crash_between_db_commit_and_offset_commit_applies_once(world) -> None:
    settings, topic, pool, table, producer = world
    evs = [events.new_event("Counted", "same-key", {"n": i}) for i in range(5)]
    _publish(producer, topic, evs)
    group = f"g-{uuid.uuid4().hex[:6]}"

    def die(event: events.Event) -> None:
        raise Crash  # after the transaction committed, before Kafka heard of it

    first = EventConsumer(settings, pool, group, [topic], _handler(table), after_apply=die)
    with pytest.raises(Crash):
        async with asyncio.timeout(30):
            await first.run()
    assert await pool.fetchval(f"SELECT count(*) FROM {table}") == 1

    second = EventConsumer(settings, pool, group, [topic], _handler(table))

    async def all_applied() -> bool:
        return await pool.fetchval(f"SELECT count(*) FROM {table}") >= 5

    await _run_until(second, all_applied)
    rows = await pool.fetch(f"SELECT n FROM {table} ORDER BY n")
    assert [r["n"] for r in rows] == [0, 1, 2, 3, 4]


async def test_poison_goes_to_the_dead_letter_topic_and_processing_goes_on(world) -> None:
    settings, topic, pool, table, producer = world
    evs = [events.new_event("Counted", "one-key", {"n": i}) for i in range(6)]
    _publish(producer, topic, evs[:3])
    producer.produce(topic, key=b"one-key", value=b"{not an event")
    _publish(producer, topic, evs[3:])
    group = f"g-{uuid.uuid4().hex[:6]}"
    consumer = EventConsumer(
        settings,
        pool,
        group,
        [topic],
        _handler(table, poison_value=2),
        max_attempts=3,
        retry_backoff=0.01,
    )

    async def rest_applied() -> bool:
        return await pool.fetchval(f"SELECT count(*) FROM {table}") >= 5

    await _run_until(consumer, rest_applied)
    assert sorted(r["n"] for r in await pool.fetch(f"SELECT n FROM {table}")) == [0, 1, 3, 4, 5]

    reader = Consumer(
        {
            "bootstrap.servers": settings.kafka_servers,
            "group.id": uuid.uuid4().hex,
            "auto.offset.reset": "earliest",
        }
    )
    reader.subscribe([DEAD_LETTER_TOPIC])
    mine = []
    async with asyncio.timeout(30):
        while len(mine) < 2:
            for m in await asyncio.to_thread(reader.consume, 100, 0.5):
                headers = dict(m.headers() or [])
                if not m.error() and headers.get("dlq.consumer_group") == group.encode():
                    mine.append(headers)
    reader.close()
    reasons = sorted(h["dlq.reason"].decode() for h in mine)
    assert reasons[0].startswith("ValueError: this event can never be applied")
    assert reasons[1].startswith("undecodable")
    assert {h["dlq.original_topic"] for h in mine} == {topic.encode()}
    assert [h["dlq.attempts"] for h in mine if h["dlq.reason"].startswith(b"ValueError")] == [b"3"]


async def test_poison_exception_skips_retries(world) -> None:
    settings, topic, pool, _table, producer = world
    calls = []

    async def handle(conn: asyncpg.Connection, event: events.Event) -> None:
        calls.append(event.id)
        raise Poison("refused")

    _publish(producer, topic, [events.new_event("Counted", "k", {"n": 1})])
    consumer = EventConsumer(
        settings, pool, f"g-{uuid.uuid4().hex[:6]}", [topic], handle, max_attempts=5
    )

    async def called() -> bool:
        return len(calls) >= 1

    await _run_until(consumer, called)
    await asyncio.sleep(0.3)
    assert len(calls) == 1
