"""The dead-letter topic: where a consumer puts a message it can never apply, with the reason and
where it came from in ``dlq.*`` headers, so that the partition moves on and an operator can look."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from confluent_kafka import KafkaError, Message, Producer
from prometheus_client import Counter

from shopstream import kafka
from shopstream.config import Settings

log = logging.getLogger(__name__)

DEAD_LETTER_TOPIC = "dead-letter"
DEAD_LETTERED = Counter(
    "consumer_dead_lettered_total", "Messages sent to the dead-letter topic", ["group", "topic"]
)


class DeadLetters:
    """One consumer group's way to the dead-letter topic; its producer is made by the first dead
    letter, since most consumers never need one."""

    def __init__(self, settings: Settings, group: str) -> None:
        self.settings = settings
        self.group = group
        self._producer: Producer | None = None

    async def send(
        self,
        message: Message,
        reason: str,
        attempts: int,
        wait: Callable[[int], Awaitable[None]],
    ) -> None:
        """Returns once Kafka holds the dead letter: only then may the offset move past it.
        ``wait(tries)`` is awaited between two tries (and raises when the consumer stops)."""
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
        if self._producer is None:
            self._producer = kafka.producer(self.settings, **{"client.id": f"{self.group}-dlq"})
        producer = self._producer
        refused: list[KafkaError] = []
        tries = 0
        while True:
            refused.clear()
            producer.produce(
                DEAD_LETTER_TOPIC,
                key=message.key(),
                value=message.value(),
                headers=headers,
                on_delivery=lambda err, _: refused.append(err) if err else None,
            )
            if await asyncio.to_thread(producer.flush, 30) == 0 and not refused:
                break
            tries += 1
            log.warning(
                "group %s: dead letter not delivered, trying again: %s", self.group, refused
            )
            await wait(tries)
        DEAD_LETTERED.labels(self.group, message.topic() or "").inc()
        log.error(
            "group %s: message %s/%s@%s dead-lettered: %s",
            self.group,
            message.topic(),
            message.partition(),
            message.offset(),
            reason,
        )

    def flush(self) -> None:
        if self._producer is not None:
            self._producer.flush(10)
