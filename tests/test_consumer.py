"""The shared batch consumer, with appliers idempotent by what they write (as every service's
are), against real Kafka and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from prometheus_client import REGISTRY

from shopstream import db, events
from shopstream.consumer import (
    DEAD_LETTER_TOPIC,
    BatchConsumer,
    Delivery,
    Poison,
)
from tests.platform_fixture import as_owner

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
    # made by the owner role, as a migration would: the service's role only reads and writes it
    await as_owner(settings, "product", f"CREATE TABLE {table} (event_id uuid PRIMARY KEY, n int NOT NULL)")
    producer = Producer({"bootstrap.servers": settings.kafka_servers, "enable.idempotence": True})
    yield settings, topic, pool, table, producer
    await as_owner(settings, "product", f"DROP TABLE {table}")
    await pool.close()


async def _run_until(consumer: BatchConsumer, done, timeout: float = 30) -> None:
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


async def _dead_letters(settings, group: str, at_least: int) -> list[dict]:
    """The headers of the dead letters ``group`` wrote, once there are ``at_least``."""
    reader = Consumer(
        {
            "bootstrap.servers": settings.kafka_servers,
            "group.id": uuid.uuid4().hex,
            "auto.offset.reset": "earliest",
        }
    )
    reader.subscribe([DEAD_LETTER_TOPIC])
    mine: list[dict] = []
    try:
        async with asyncio.timeout(30):
            while len(mine) < at_least:
                for m in await asyncio.to_thread(reader.consume, 100, 0.5):
                    headers = dict(m.headers() or [])
                    if not m.error() and headers.get("dlq.consumer_group") == group.encode():
                        mine.append(headers)
    finally:
        reader.close()
    return mine


def _dead_lettered(group: str, topic: str) -> float:
    return REGISTRY.get_sample_value(
        "consumer_dead_lettered_total", {"group": group, "topic": topic}
    ) or 0.0


def _publish(producer: Producer, topic: str, evs: list[events.Event]) -> None:
    for e in evs:
        producer.produce(
            topic,
            key=e.aggregate_id.encode(),
            value=events.encode(e),
            headers=[("event_type", e.type.encode())],  # as the relay sends them
        )
    producer.flush(10)


def _batch_applier(pool, table: str, calls: list[list[Delivery]] | None = None):
    """Idempotent by its key, as a batch applier must be: one statement for the whole batch."""

    async def apply(deliveries: list[Delivery]) -> None:
        if calls is not None:
            calls.append(deliveries)
        await pool.execute(
            f"INSERT INTO {table} SELECT * FROM unnest($1::uuid[], $2::int[])"
            " ON CONFLICT DO NOTHING",
            [d.event.id for d in deliveries],
            [d.event.data["n"] for d in deliveries],
        )

    return apply


async def _applied(pool, table: str) -> list[int]:
    return sorted(r["n"] for r in await pool.fetch(f"SELECT n FROM {table}"))


async def test_an_event_delivered_twice_is_applied_once(world) -> None:
    settings, topic, pool, table, producer = world
    evs = [events.new_event("Counted", f"k{i % 4}", {"n": i}) for i in range(20)]
    _publish(producer, topic, evs + evs[:7])  # seven delivered twice
    calls: list[list[Delivery]] = []
    group = f"g-{uuid.uuid4().hex[:6]}"
    consumer = BatchConsumer(settings, group, [topic], _batch_applier(pool, table, calls))

    async def all_handed() -> bool:
        return sum(len(batch) for batch in calls) >= 27

    await _run_until(consumer, all_handed)
    handed = [d.event.id for batch in calls for d in batch]
    assert len(handed) == 27 and set(handed) == {e.id for e in evs}, "each copy reached the applier"
    assert await _applied(pool, table) == list(range(20))
    assert _dead_lettered(group, topic) == 0, "a second copy is no fault of the event"


async def test_events_of_types_the_group_does_not_read_never_reach_its_applier(world) -> None:
    settings, topic, pool, table, producer = world
    evs = [
        events.new_event("Counted" if i % 3 == 2 else "Other", "one-key", {"n": i})
        for i in range(12)
    ]
    _publish(producer, topic, evs)  # one key, one partition: the wanted last one comes after all
    calls: list[list[Delivery]] = []
    consumer = BatchConsumer(settings, f"g-{uuid.uuid4().hex[:6]}", [topic],
                             _batch_applier(pool, table, calls), types=["Counted"])  # fmt: skip

    async def last_applied() -> bool:
        return 11 in await _applied(pool, table)

    await _run_until(consumer, last_applied)
    assert await _applied(pool, table) == [2, 5, 8, 11]
    assert {d.event.type for batch in calls for d in batch} == {"Counted"}


async def test_a_poison_exception_dead_letters_at_once_without_retries(world) -> None:
    settings, topic, pool, table, producer = world
    evs = [events.new_event("Counted", "one-key", {"n": i}) for i in range(3)]
    _publish(producer, topic, evs)
    apply = _batch_applier(pool, table)
    refused: list[int] = []

    async def refuse_one(deliveries: list[Delivery]) -> None:
        if any(d.event.data["n"] == 1 for d in deliveries):
            if len(deliveries) == 1:
                refused.append(1)
            raise Poison("refused")
        await apply(deliveries)

    group = f"g-{uuid.uuid4().hex[:6]}"
    consumer = BatchConsumer(settings, group, [topic], refuse_one, max_attempts=5, retry_backoff=0.01)

    async def the_others_applied() -> bool:
        return await _applied(pool, table) == [0, 2]

    await _run_until(consumer, the_others_applied)
    [dead] = await _dead_letters(settings, group, 1)
    assert dead["dlq.reason"] == b"poison: refused"
    assert dead["dlq.attempts"] == b"1"
    assert refused == [1], "a Poison is not retried"


async def test_a_poison_message_in_a_batch_is_dead_lettered_and_the_rest_applied(world) -> None:
    settings, topic, pool, table, producer = world
    good = [events.new_event("Counted", "one-key", {"n": i}) for i in range(40)]
    # values the table can never hold: refused by asyncpg itself, and by PostgreSQL
    too_big = events.new_event("Counted", "one-key", {"n": 2**40})
    await as_owner(settings, "product", f"ALTER TABLE {table} ADD CHECK (n <> 13)")  # an event the rules refuse
    _publish(producer, topic, [*good[:10], too_big, *good[10:30]])
    producer.produce(topic, key=b"one-key", value=b"{not an event", headers=[("event_type", b"Counted")])
    # not a type this group reads: passed over undecoded, never dead-lettered
    producer.produce(topic, key=b"one-key", value=b"{not ours", headers=[("event_type", b"Other")])
    _publish(producer, topic, good[30:])
    group = f"g-{uuid.uuid4().hex[:6]}"
    consumer = BatchConsumer(
        settings,
        group,
        [topic],
        _batch_applier(pool, table),
        types=["Counted"],
        max_attempts=2,
        retry_backoff=0.01,
    )

    async def rest_applied() -> bool:
        return len(await _applied(pool, table)) >= 39

    await _run_until(consumer, rest_applied)
    assert await _applied(pool, table) == [n for n in range(40) if n != 13]
    mine = await _dead_letters(settings, group, 3)
    await asyncio.sleep(1)
    assert _dead_lettered(group, topic) == 3
    by_reason = {h["dlq.reason"].decode().split(":")[0]: h for h in mine}
    assert set(by_reason) == {"DataError", "CheckViolationError", "undecodable"}, by_reason
    assert by_reason["DataError"]["dlq.attempts"] == b"2"
    assert by_reason["CheckViolationError"]["dlq.attempts"] == b"2"
    offsets = {h["dlq.original_offset"] for h in mine}
    assert len(offsets) == 3 and {h["dlq.original_topic"] for h in mine} == {topic.encode()}


async def test_a_crash_between_the_batch_commit_and_the_offset_commit_redelivers_it(world) -> None:
    settings, topic, pool, table, producer = world
    evs = [events.new_event("Counted", f"k{i % 3}", {"n": i}) for i in range(30)]
    _publish(producer, topic, evs)
    group = f"g-{uuid.uuid4().hex[:6]}"
    apply = _batch_applier(pool, table)

    async def apply_then_die(deliveries: list[Delivery]) -> None:
        await apply(deliveries)
        raise Crash  # the rows are committed; Kafka never hears of it

    first = BatchConsumer(settings, group, [topic], apply_then_die)
    with pytest.raises(Crash):
        async with asyncio.timeout(30):
            await first.run()
    crashed_with = await _applied(pool, table)
    assert crashed_with

    calls: list[list[Delivery]] = []
    second = BatchConsumer(settings, group, [topic], _batch_applier(pool, table, calls))

    def handed() -> set[int]:
        return {d.event.data["n"] for batch in calls for d in batch}

    async def redelivered_and_all_applied() -> bool:
        # The crashed batch may have held all 30: then only its redelivery says we are done.
        return set(crashed_with) <= handed() and len(await _applied(pool, table)) >= 30

    with contextlib.suppress(TimeoutError):
        await _run_until(second, redelivered_and_all_applied)
    assert set(crashed_with) <= handed(), "the crashed batch was not delivered again"
    assert await _applied(pool, table) == list(range(30))


async def test_a_database_outage_is_waited_out_and_dead_letters_nothing(world) -> None:
    settings, topic, pool, table, producer = world
    evs = [events.new_event("Counted", f"k{i % 3}", {"n": i}) for i in range(10)]
    _publish(producer, topic, evs)
    group = f"g-{uuid.uuid4().hex[:6]}"
    apply = _batch_applier(pool, table)
    down: list[int] = []

    async def database_down(deliveries: list[Delivery]) -> None:
        down.append(len(deliveries))
        raise ConnectionRefusedError("the database is down")

    # Stopped while waiting: what it polled is not committed.
    first = BatchConsumer(settings, group, [topic], database_down, max_attempts=1, retry_backoff=0.01)

    async def waited_several_times() -> bool:
        return len(down) >= 8

    await _run_until(first, waited_several_times)
    assert len(set(down)) == 1, f"an outage must not split the batch: {down}"

    outage_left = 3

    async def database_back(deliveries: list[Delivery]) -> None:
        nonlocal outage_left
        if outage_left:
            outage_left -= 1
            raise ConnectionRefusedError("still down")
        await apply(deliveries)

    second = BatchConsumer(settings, group, [topic], database_back, max_attempts=1, retry_backoff=0.01)

    async def all_applied() -> bool:
        return len(await _applied(pool, table)) >= 10

    await _run_until(second, all_applied)
    assert await _applied(pool, table) == list(range(10))
    assert _dead_lettered(group, topic) == 0
