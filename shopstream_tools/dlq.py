"""Replaying the dead-letter topic once the cause is fixed: `shopstream dlq replay [--dry-run]`.

A dry run lists every dead-lettered message with its reason and origin and changes nothing. A
replay publishes each message again, in order, to the topic it was dead-lettered from (same key, so
the same partition; its own headers without the ``dlq.*`` ones, plus ``dlq.replayed_from``), waits
for Kafka's acknowledgement of all of them, and only then deletes the replayed records from the
dead-letter topic (``DeleteRecords`` up to the offset read), so the DeadLetterNotEmpty alert clears.
A replay killed half way publishes again on the next run: a consumer's effect is idempotent by
what it writes, so an event applied twice changes nothing the second time.
A message that fails again comes back to the dead-letter topic with a fresh reason.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from shopstream import kafka
from shopstream.config import Settings
from shopstream.consumer import DEAD_LETTER_TOPIC

DLQ_PREFIX = "dlq."
REPLAYED_FROM = "dlq.replayed_from"


@dataclass
class DeadLetter:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)

    def header(self, name: str) -> str:
        for k, v in self.headers:
            if k == name:
                return v.decode("utf-8", "replace")
        return ""

    @property
    def original_topic(self) -> str:
        return self.header("dlq.original_topic")

    @property
    def reason(self) -> str:
        return self.header("dlq.reason")

    def replay_headers(self) -> list[tuple[str, str | bytes | None]]:
        kept: list[tuple[str, str | bytes | None]] = [
            (k, v) for k, v in self.headers if not k.startswith(DLQ_PREFIX)
        ]
        return [*kept, (REPLAYED_FROM, f"{DEAD_LETTER_TOPIC}/{self.partition}@{self.offset}".encode())]

    def describe(self) -> str:
        origin = (
            f"{self.original_topic or '?'}/{self.header('dlq.original_partition') or '?'}"
            f"@{self.header('dlq.original_offset') or '?'}"
        )
        key = (self.key or b"").decode("utf-8", "replace")
        return (
            f"{self.partition}@{self.offset}  from {origin}  group {self.header('dlq.consumer_group')}"
            f"  attempts {self.header('dlq.attempts')}  key {key}\n    reason: {self.reason}"
        )


def _admin(settings: Settings) -> AdminClient:
    return AdminClient({"bootstrap.servers": settings.kafka_servers, "client.id": "shopstream-dlq"})


def read(settings: Settings, timeout: float = 30.0) -> tuple[list[DeadLetter], dict[int, int]]:
    """Every message now in the dead-letter topic, in order, and the end offset read per partition."""
    admin = _admin(settings)
    md = admin.list_topics(topic=DEAD_LETTER_TOPIC, timeout=10).topics[DEAD_LETTER_TOPIC]
    if md.error is not None:
        raise RuntimeError(f"{DEAD_LETTER_TOPIC}: {md.error}")
    partitions = sorted(md.partitions)
    bounds: dict[int, list[int]] = {p: [0, 0] for p in partitions}
    for index, spec in ((0, OffsetSpec.earliest()), (1, OffsetSpec.latest())):
        futures = admin.list_offsets({TopicPartition(DEAD_LETTER_TOPIC, p): spec for p in partitions})
        for tp, f in futures.items():
            bounds[tp.partition][index] = f.result().offset
    letters: list[DeadLetter] = []
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_servers,
            "group.id": f"shopstream-dlq-{uuid.uuid4().hex}",  # assign-only, never committed
            "enable.auto.commit": False,
        }
    )
    try:
        wanted = [p for p, (low, high) in bounds.items() if high > low]
        consumer.assign([TopicPartition(DEAD_LETTER_TOPIC, p, bounds[p][0]) for p in wanted])
        remaining = {p: bounds[p][1] for p in wanted}
        deadline = time.monotonic() + timeout
        while remaining and time.monotonic() < deadline:
            for m in consumer.consume(500, timeout=1.0):
                if m.error() is not None:
                    continue
                p, offset = m.partition() or 0, m.offset() or 0
                if p not in remaining or offset >= remaining[p]:
                    continue
                raw: Any = m.headers() or []
                headers = [(str(k), bytes(v or b"")) for k, v in raw]
                key: Any = m.key()
                letters.append(DeadLetter(p, offset, key, m.value(), headers))
                if offset + 1 >= remaining[p]:
                    del remaining[p]
        if remaining:
            raise TimeoutError(f"could not read the dead-letter topic to its end: {remaining}")
    finally:
        consumer.close()
    letters.sort(key=lambda d: (d.partition, d.offset))
    return letters, {p: high for p, (_low, high) in bounds.items()}


def replay(settings: Settings, letters: list[DeadLetter], ends: dict[int, int]) -> int:
    """Publish every letter to its original topic, then delete them from the dead-letter topic."""
    unroutable = [d for d in letters if not d.original_topic]
    if unroutable:
        raise ValueError(
            f"{len(unroutable)} message(s) name no original topic, e.g. {unroutable[0].describe()}"
        )
    producer = kafka.producer(settings, **{"client.id": "shopstream-dlq-replay"})
    failures: list[str] = []

    def on_delivery(err: object, _msg: object) -> None:
        if err is not None:
            failures.append(str(err))

    for d in letters:
        producer.produce(
            d.original_topic,
            key=d.key,
            value=d.value,
            headers=d.replay_headers(),
            on_delivery=on_delivery,
        )
    left = producer.flush(60)
    if left or failures:
        raise RuntimeError(f"replay not acknowledged ({left} left, errors {failures[:3]}): nothing deleted")
    replayed_partitions = {d.partition for d in letters}
    if replayed_partitions:
        admin = _admin(settings)  # held until the futures resolve: a dropped client never answers
        futures = admin.delete_records(
            [TopicPartition(DEAD_LETTER_TOPIC, p, ends[p]) for p in sorted(replayed_partitions)],
            request_timeout=30,
            operation_timeout=30,
        )
        for f in futures.values():
            f.result(timeout=60)
    return len(letters)


def run(settings: Settings, dry_run: bool, out: Callable[[str], object] = print) -> int:
    letters, ends = read(settings)
    if not letters:
        out("the dead-letter topic is empty")
        return 0
    out(f"{len(letters)} dead-lettered message(s):")
    for d in letters:
        out("  " + d.describe())
    if dry_run:
        out("dry run: nothing replayed; run without --dry-run to replay them")
        return 0
    count = replay(settings, letters, ends)
    out(f"replayed {count} message(s) to their original topics and removed them from {DEAD_LETTER_TOPIC}")
    return 0
