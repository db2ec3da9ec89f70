"""Idempotent event consumers, shared by every service.

For each message: the handler's effect and the row "this group applied event X" commit in one
database transaction; offsets are committed to Kafka only after that. A redelivered event (a crash
between the two commits, a relay that published twice) finds its row and is skipped. A message that
keeps failing goes to the dead-letter topic with the reason after bounded retries, and the partition
moves on. Partitions are processed concurrently, each strictly in order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from confluent_kafka import Consumer, Message, TopicPartition
from prometheus_client import Counter, Gauge, Histogram

from shopstream import emf, events, kafka, tracing
from shopstream.config import Settings
from shopstream.db import Connection

log = logging.getLogger(__name__)

DEAD_LETTER_TOPIC = "dead-letter"

APPLIED = Counter("consumer_events_applied_total", "Events applied", ["group", "type"])
DUPLICATES = Counter("consumer_duplicates_skipped_total", "Redelivered events skipped", ["group"])
DEAD_LETTERED = Counter(
    "consumer_dead_lettered_total", "Messages sent to the dead-letter topic", ["group", "topic"]
)
HANDLE_SECONDS = Histogram(
    "consumer_handle_duration_seconds",
    "Time to apply one event, transaction included",
    ["group"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
LAG = Gauge(
    "kafka_consumer_lag_messages", "Messages behind the log end", ["group", "topic", "partition"]
)
# A group's lag as this process sees it (its partitions), for CloudWatch: the ECS lag alarms and
# scaling policies read ConsumerLag with the one dimension ConsumerGroup.
EMF_LAG = emf.declare("ConsumerLag", "Count", ("ConsumerGroup",), "sampled")

Handler = Callable[[Connection, events.Event], Awaitable[None]]


def next_batch(consumer: Consumer, most: int, wait: float = 0.5) -> list[Message]:
    """Wait for one message, then take what else has already arrived: a batch under load, and no
    wait for a batch to fill when traffic is light (``consume(n, t)`` waits out ``t``)."""
    first = consumer.poll(wait)
    if first is None:
        return []
    return [first, *consumer.consume(most - 1, 0)]


class Poison(Exception):
    """Raised by a handler for a message that can never be applied: dead-letter it at once."""


class EventConsumer:
    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool,
        group: str,
        topics: list[str],
        handle: Handler,
        max_attempts: int = 5,
        retry_backoff: float = 0.2,
        after_apply: Callable[[events.Event], None] | None = None,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.group = group
        self.topics = topics
        self.handle = handle
        self.max_attempts = max_attempts
        self.retry_backoff = retry_backoff
        self.after_apply = after_apply  # runs after the DB commit, before the offset commit
        self.stopping = asyncio.Event()
        # the worker process's name (`product-consume`) when the runtime set one, else the group
        tracing.setup(settings, group if settings.instance_id == "local-1" else settings.instance_id)
        emf.configure(settings.aws_emf_namespace)
        self._consumer = kafka.consumer(settings, group)
        self._producer = kafka.producer(settings, **{"client.id": f"{group}-dlq"})
        self._last_lag = 0.0

    def stop(self) -> None:
        self.stopping.set()

    async def run(self) -> None:
        self._consumer.subscribe(self.topics)
        try:
            while not self.stopping.is_set():
                messages = await asyncio.to_thread(self._next_batch)
                batch = [m for m in messages if not m.error()]
                if batch:
                    await self.process(batch)
                    await asyncio.to_thread(self._consumer.commit, asynchronous=False)
                if time.monotonic() - self._last_lag > 2:
                    await asyncio.to_thread(self._export_lag)
        finally:
            self._producer.flush(10)
            await asyncio.to_thread(self._consumer.close)

    def _next_batch(self) -> list[Message]:
        return next_batch(self._consumer, 500)

    async def process(self, batch: list[Message]) -> None:
        by_partition: dict[tuple[str, int], list[Message]] = defaultdict(list)
        for message in batch:
            by_partition[(message.topic() or "", message.partition() or 0)].append(message)

        async def in_order(messages: list[Message]) -> None:
            for message in messages:
                with tracing.consumer_span(message, self.group):
                    await self._apply_or_dead_letter(message)

        await asyncio.gather(*(in_order(ms) for ms in by_partition.values()))

    async def _apply_or_dead_letter(self, message: Message) -> None:
        try:
            event = events.decode(message.value() or b"")
        except Exception as exc:
            self._dead_letter(message, f"undecodable: {exc}", 1)
            return
        reason = ""
        for attempt in range(1, self.max_attempts + 1):
            try:
                await self.apply(event)
                return
            except Poison as exc:
                self._dead_letter(message, f"poison: {exc}", attempt)
                return
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}"
                log.warning(
                    "group %s: event %s failed (attempt %d): %s",
                    self.group,
                    event.id,
                    attempt,
                    reason,
                )
                await asyncio.sleep(self.retry_backoff * attempt)
        self._dead_letter(message, reason, self.max_attempts)

    async def apply(self, event: events.Event) -> bool:
        """Apply once: False when this group had already applied the event."""
        started = time.perf_counter()
        async with self.pool.acquire() as conn, conn.transaction():
            first = await conn.fetchval(
                "INSERT INTO processed_events (consumer_group, event_id) VALUES ($1, $2)"
                " ON CONFLICT DO NOTHING RETURNING true",
                self.group,
                event.id,
            )
            if not first:
                DUPLICATES.labels(self.group).inc()
                return False
            await self.handle(conn, event)
        HANDLE_SECONDS.labels(self.group).observe(time.perf_counter() - started)
        APPLIED.labels(self.group, event.type).inc()
        if self.after_apply is not None:
            self.after_apply(event)
        return True

    def _dead_letter(self, message: Message, reason: str, attempts: int) -> None:
        headers: list[tuple[str, str | bytes | None]] = [
            ("dlq.reason", reason[:1000].encode()),
            ("dlq.original_topic", (message.topic() or "").encode()),
            ("dlq.original_partition", str(message.partition()).encode()),
            ("dlq.original_offset", str(message.offset()).encode()),
            ("dlq.consumer_group", self.group.encode()),
            ("dlq.attempts", str(attempts).encode()),
        ]
        original: Any = message.headers() or []
        headers.extend(original)
        self._producer.produce(
            DEAD_LETTER_TOPIC, key=message.key(), value=message.value(), headers=headers
        )
        self._producer.flush(30)
        DEAD_LETTERED.labels(self.group, message.topic() or "").inc()
        log.error(
            "group %s: message %s/%s@%s dead-lettered: %s",
            self.group,
            message.topic(),
            message.partition(),
            message.offset(),
            reason,
        )

    def _export_lag(self) -> None:
        self._last_lag = time.monotonic()
        try:
            assigned: list[TopicPartition] = self._consumer.assignment()
            if not assigned:
                return
            positions = self._consumer.position(assigned)
            total = 0
            for tp in positions:
                # the high watermark every fetch response carries: no request to the broker
                _, high = self._consumer.get_watermark_offsets(tp, cached=True)
                behind = max(0, high - tp.offset if tp.offset >= 0 else 0)
                LAG.labels(self.group, tp.topic, str(tp.partition)).set(behind)
                total += behind
            emf.observe(EMF_LAG, {"ConsumerGroup": self.group}, total)
        except Exception:  # lag is best effort; never stop consuming for it
            log.debug("lag export failed", exc_info=True)
