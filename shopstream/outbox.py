"""Transactional outbox and the relay that publishes it to Kafka.

``add`` writes an event in the caller's transaction, so the event exists if and only if the change
committed. The relay publishes pending rows in id order with an idempotent producer and deletes them only
after Kafka acknowledged them: a relay killed mid-batch publishes the rows still there again on
restart (at least once), and a consumer applying an event again changes nothing (every
consumer's effect is idempotent by what it writes). One relay per
database holds an advisory lock, so per-key order is never broken by two relays racing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import msgspec
from prometheus_client import Counter, Gauge, Histogram

from shopstream import db, emf, kafka, tracing
from shopstream.config import Settings
from shopstream.db import Connection
from shopstream.events import Event, encode
from shopstream.outbox_floor import ScanFloor

log = logging.getLogger(__name__)

RELAY_LOCK = 0x0B7B0C
NOTIFY_CHANNEL = "outbox"

PUBLISHED = Counter(
    "outbox_events_published_total", "Events published by the relay", ["service", "topic"]
)
PENDING = Gauge("outbox_pending_events", "Outbox rows not yet published", ["service"])
OLDEST = Gauge(
    "outbox_oldest_pending_age_seconds", "Age of the oldest unpublished row", ["service"]
)
# The same two figures for CloudWatch (ECS alarms on OutboxOldestAgeSeconds, dimension Service).
EMF_OLDEST = emf.declare("OutboxOldestAgeSeconds", "Seconds", ("Service",), "sampled")
EMF_PENDING = emf.declare("OutboxPendingEvents", "Count", ("Service",), "sampled")
RELAY_LAG = Histogram(
    "outbox_relay_lag_seconds",
    "From the change's commit to Kafka's acknowledgement",
    ["service"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


@dataclass(frozen=True, slots=True)
class Message:
    """One event for ``topic`` under ``key``, as ``add_all`` records it."""

    topic: str
    key: str
    event: Event
    headers: dict[str, str] | None = None


# One round trip per call, however many messages: on a busy machine every statement of a request
# waits its turn for a core twice (this process, then the backend), and that wait, not the SQL,
# is most of a transaction's time. The rows get their ids in the messages' order (the relay
# publishes in id order, so a key's messages stay in order); the NOTIFY, sent at commit, wakes
# the relay once (PostgreSQL folds identical notifications of one transaction into one).
def insert_sql(first: int) -> str:
    """The insert of ``insert_args``'s six arrays as parameters ``$first``..``$first+5``, for a
    caller that folds it into a statement of its own."""
    e, t, k, y, p, h = (f"${first + i}" for i in range(6))
    return (
        "INSERT INTO outbox (event_id, topic, message_key, event_type, payload, headers)"
        f" SELECT e, t, k, y, p, h FROM unnest({e}::uuid[], {t}::text[], {k}::text[],"
        f" {y}::text[], {p}::bytea[], {h}::jsonb[]) WITH ORDINALITY"
        " AS m(e, t, k, y, p, h, n) ORDER BY n"
    )


_ADD = f"WITH added AS ({insert_sql(1)}) SELECT pg_notify($7, '')"


async def add_all(conn: Connection, messages: Sequence[Message]) -> None:
    """Record events in the current transaction (the caller owns the transaction)."""
    if not messages:
        return
    await conn.execute(_ADD, *insert_args(messages), NOTIFY_CHANNEL)


def insert_args(messages: Sequence[Message]) -> list[object]:
    """``INSERT``'s six arrays: one element per message, in order."""
    trace = tracing.current_headers()
    return [
        [m.event.id for m in messages],
        [m.topic for m in messages],
        [m.key for m in messages],
        [m.event.type for m in messages],
        [encode(m.event) for m in messages],
        [msgspec.json.encode({**trace, **(m.headers or {})}).decode() for m in messages],
    ]


async def add(
    conn: Connection,
    topic: str,
    key: str,
    event: Event,
    headers: dict[str, str] | None = None,
) -> None:
    """Record an event in the current transaction (the caller owns the transaction)."""
    await add_all(conn, [Message(topic, key, event, headers)])


Published = Callable[[Sequence[asyncpg.Record]], None]
"""Told of the rows (id, topic, event_type, payload, created_at, ...) a batch published, once
they are marked: a service's own figures (order-service's "published" stage)."""


class Relay:
    def __init__(
        self, settings: Settings, service: str, on_published: Published | None = None
    ) -> None:
        self.settings = settings
        self.service = service
        self.on_published = on_published
        self.stopping = asyncio.Event()
        self._wakeup = asyncio.Event()
        self._floor = ScanFloor()

    def stop(self) -> None:
        self.stopping.set()
        self._wakeup.set()

    async def run(self) -> None:
        tracing.setup(self.settings, f"{self.service}-relay")
        emf.configure(self.settings.aws_emf_namespace)
        conn = await asyncpg.connect(self.settings.database_url(self.service))
        # The delete after Kafka's acknowledgement need not wait for its WAL flush: lost in a
        # crash, the rows come back and go again, which consumers drop as duplicates. Saves a
        # flush per batch. The setting also tells the database the deletes are publications.
        # No sequential scans on this session: between two vacuums the outbox's heap is thousands
        # of pages of deleted rows while its statistics say it is empty, so the planner read it
        # all for every batch (1.4 ms of PostgreSQL CPU per order, perf record on the backend)
        # instead of walking the key from the relay's floor.
        await conn.execute(
            "SET synchronous_commit = off; SET shopstream.relay = 'publishing';"
            " SET enable_seqscan = off"
        )
        producer = kafka.producer(self.settings, **{"client.id": f"{self.service}-relay"})
        try:
            await db.lead(conn, RELAY_LOCK, self.stopping, 2, lambda: log.info(
                "another relay holds the outbox of %s; standing by", self.service))  # fmt: skip
            await conn.add_listener(NOTIFY_CHANNEL, lambda *_: self._wakeup.set())
            log.info("relay for %s is publishing", self.service)
            last_gauges = last_batch = 0.0
            linger = self.settings.relay_linger_ms / 1000
            while not self.stopping.is_set():
                self._wakeup.clear()  # before reading, so a commit during the batch wakes the next wait
                since = time.monotonic() - last_batch
                if since < linger:  # rows keep coming: let them gather into one produce request
                    await asyncio.sleep(linger - since)
                last_batch = time.monotonic()
                published = await self.publish_batch(conn, producer)
                if time.monotonic() - last_gauges > 1:
                    await self._refresh_gauges(conn)
                    last_gauges = time.monotonic()
                if published == 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(
                            self._wakeup.wait(), timeout=self.settings.relay_idle_seconds
                        )
        finally:
            producer.flush(10)
            await conn.close()

    async def publish_batch(self, conn: asyncpg.Connection, producer: Any) -> int:
        rows = await conn.fetch(
            "SELECT id, topic, message_key, event_type, payload, headers, created_at FROM outbox"
            " WHERE id > $2 ORDER BY id LIMIT $1",
            self.settings.relay_batch_size,
            self._floor.start(time.monotonic()),
        )
        if not rows:
            return 0
        failures: list[str] = []

        def on_delivery(err: Any, _msg: Any) -> None:
            if err is not None:
                failures.append(str(err))

        for row in rows:
            headers = tracing.publish_headers(
                msgspec.json.decode(row["headers"]), row["topic"], row["message_key"]
            )
            while True:
                try:
                    producer.produce(
                        row["topic"],
                        key=row["message_key"].encode(),
                        value=bytes(row["payload"]),
                        headers=headers,
                        on_delivery=on_delivery,
                    )
                    break
                except BufferError:
                    producer.poll(0.05)
        remaining = await asyncio.to_thread(producer.flush, 30)
        if remaining or failures:
            # Nothing is deleted: the whole batch goes again, and consumers drop what was delivered.
            log.error("relay batch not acknowledged (%s left, errors %s)", remaining, failures[:3])
            await asyncio.sleep(1)
            return 0
        ids = [row["id"] for row in rows]
        await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", ids)
        self._floor.published(ids, time.monotonic())
        now = time.time()
        for row in rows:
            PUBLISHED.labels(self.service, row["topic"]).inc()
            RELAY_LAG.labels(self.service).observe(max(0.0, now - row["created_at"].timestamp()))
        if self.on_published is not None:
            self.on_published(rows)
        return len(rows)

    async def _refresh_gauges(self, conn: asyncpg.Connection) -> None:
        # From the floor, like the reads: the rows below it are published (a straggler is
        # published by the next full read within seconds), and counting from the head of the key
        # visited every deleted row vacuum had not removed yet, once a second.
        row = await conn.fetchrow(
            "SELECT count(*) AS n, extract(epoch FROM now() - min(created_at)) AS age FROM outbox"
            " WHERE id > $1",
            self._floor.floor,
        )
        assert row is not None
        age = float(row["age"] or 0)
        PENDING.labels(self.service).set(row["n"])
        OLDEST.labels(self.service).set(age)
        emf.observe(EMF_PENDING, {"Service": self.service}, row["n"])
        emf.observe(EMF_OLDEST, {"Service": self.service}, age)
