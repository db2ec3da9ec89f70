"""The Kafka side every consumer shares: one member of a consumer group polls batches, has them
applied, commits the offsets only then, dead-letters what can never be applied, exports its lag."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable, Coroutine
from typing import Any

import asyncpg
from confluent_kafka import Consumer, KafkaException, Message, TopicPartition
from prometheus_client import Counter, Gauge

from shopstream import emf, kafka, tracing
from shopstream.config import Settings
from shopstream.consumer.dead_letters import DeadLetters
from shopstream.consumer.membership import Membership, leave_if_lost

log = logging.getLogger(__name__)

COMMIT_INTERVAL_MS = 500
LONGEST_WAIT = 5.0
"""Between two attempts at a failing batch or event: long enough not to hammer a database that is
recovering, short enough to resume soon after it did."""

APPLIED = Counter("consumer_events_applied_total", "Events applied", ["group", "type"])
LAG = Gauge(
    "kafka_consumer_lag_messages", "Messages behind the log end", ["group", "topic", "partition"]
)
# A group's lag as this process sees it (its partitions), for CloudWatch: the ECS lag alarms and
# scaling policies read ConsumerLag with the one dimension ConsumerGroup.
EMF_LAG = emf.declare("ConsumerLag", "Count", ("ConsumerGroup",), "sampled")


def next_batch(consumer: Consumer, most: int, wait: float = 0.5) -> list[Message]:
    """Wait for one message, then take what else has already arrived: a batch under load, and no
    wait for a batch to fill when traffic is light (``consume(n, t)`` waits out ``t``)."""
    first = consumer.poll(wait)
    if first is None:
        return []
    return [first, *consumer.consume(most - 1, 0)]


class Poison(Exception):
    """Raised by an applier for a message that can never be applied: dead-letter it at once."""


class Stopped(Exception):
    """The consumer was stopped while waiting to try again: what was polled stays uncommitted."""


def waited_out(exc: BaseException) -> bool:
    """Whether a failure says nothing about the events: the database (or the way to it) out of
    service, or a schema the code does not expect (a migration not applied yet). It is waited out,
    however long, and dead-letters nothing: the operator's fix lets the same events through. A
    value the database refuses (asyncpg's client-side DataError is a ValueError) is the event's."""
    if isinstance(exc, ValueError):
        return False
    return isinstance(
        exc,
        (
            OSError,  # TimeoutError included
            asyncpg.InterfaceError,  # the connection closed under us
            asyncpg.PostgresConnectionError,  # class 08
            asyncpg.TransactionRollbackError,  # 40: serialization failure, deadlock
            asyncpg.exceptions.SyntaxOrAccessError,  # 42: no such table, no privilege
            asyncpg.InsufficientResourcesError,  # 53: too many connections, disk full
            asyncpg.OperatorInterventionError,  # 57: shutting down, starting up, cancelled
        ),
    )


def pause(backoff: float, attempt: int) -> float:
    return min(backoff * 2 ** (attempt - 1), LONGEST_WAIT)


class GroupMember:
    """One member of a Kafka consumer group: polls batches, has ``process`` apply them, commits
    the offsets once it returned, dead-letters, exports the group's lag."""

    batch_size = 500

    def __init__(
        self,
        settings: Settings,
        group: str,
        topics: list[str],
        max_attempts: int,
        retry_backoff: float,
    ) -> None:
        self.settings = settings
        self.group = group
        self.topics = topics
        self.max_attempts = max_attempts
        self.retry_backoff = retry_backoff
        self.stopping = asyncio.Event()
        # the worker process's name (`product-consume`) when the runtime set one, else the group
        tracing.setup(
            settings, group if settings.instance_id == "local-1" else settings.instance_id
        )
        emf.configure(settings.aws_emf_namespace)
        # Offsets are stored once a batch is applied and committed by librdkafka in the background
        # every COMMIT_INTERVAL_MS: a synchronous commit per batch was a broker round trip and an
        # append to __consumer_offsets for every few events. A crash redelivers at most that
        # interval's events, which the idempotent appliers skip.
        self._consumer = kafka.consumer(
            settings,
            group,
            **{
                "enable.auto.commit": True,
                "enable.auto.offset.store": False,
                "auto.commit.interval.ms": COMMIT_INTERVAL_MS,
            },
        )
        self._dead_letters = DeadLetters(settings, group)
        self._last_lag = 0.0
        self._membership = Membership()

    def stop(self) -> None:
        self.stopping.set()

    async def run(self) -> None:
        self._consumer.subscribe(self.topics)
        try:
            while not self.stopping.is_set():
                polled = await asyncio.to_thread(next_batch, self._consumer, self.batch_size)
                batch = [m for m in polled if not m.error()]
                if batch:
                    try:
                        await self.process(batch)
                    except Stopped:
                        return
                    self._store(batch)
                if time.monotonic() - self._last_lag > 2:
                    await asyncio.to_thread(self._export_lag)
                if self._membership.due(time.monotonic()):
                    await asyncio.to_thread(
                        leave_if_lost, self.settings, self.group, self._consumer, self._membership
                    )
        finally:
            self._dead_letters.flush()
            await asyncio.to_thread(self._consumer.close)

    async def process(self, batch: list[Message]) -> None:
        raise NotImplementedError

    def _store(self, batch: list[Message]) -> None:
        """The batch is applied: its offsets may be committed (by the next background commit,
        or by ``close``)."""
        try:
            after: dict[tuple[str, int], int] = {}
            for m in batch:
                key = (m.topic() or "", m.partition() or 0)
                after[key] = max(after.get(key, 0), (m.offset() or 0) + 1)
            self._consumer.store_offsets(
                offsets=[TopicPartition(t, p, o) for (t, p), o in after.items()]
            )
        except KafkaException as exc:
            # Partitions taken away by a rebalance meanwhile: their next owner gets the batch
            # again, and applying it twice changes nothing.
            log.warning("group %s: offsets not stored: %s", self.group, exc)

    async def _wait(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)
        if self.stopping.is_set():
            raise Stopped

    async def _wait_for_database(self, exc: BaseException, outages: int, what: str) -> int:
        log.warning("group %s: database unavailable for %s, waiting: %s", self.group, what, exc)
        await self._wait(pause(self.retry_backoff, outages + 1))
        return outages + 1

    async def _dead_letter(self, message: Message, reason: str, attempts: int) -> None:
        """Returns once Kafka holds the dead letter: only then may the offset move past it."""
        await self._dead_letters.send(
            message, reason, attempts, lambda tries: self._wait(pause(self.retry_backoff, tries))
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


async def run_members(
    members: list[GroupMember],
    background: tuple[Callable[[asyncio.Event], Coroutine[Any, Any, None]], ...] = (),
) -> None:
    """A consumer process: its group members and background loops, until SIGTERM or SIGINT;
    each loop is given the event set when the process is asked to stop."""
    stopping = asyncio.Event()

    def stop() -> None:
        stopping.set()
        for member in members:
            member.stop()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    async with asyncio.TaskGroup() as tasks:
        for member in members:
            tasks.create_task(member.run())
        for work in background:
            tasks.create_task(work(stopping))
