"""Applying each event once: its effect and its ``processed_events`` row in one transaction."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable

import asyncpg
from confluent_kafka import Message

from shopstream import events, tracing
from shopstream.config import Settings
from shopstream.consumer.group import (
    APPLIED,
    DUPLICATES,
    HANDLE_SECONDS,
    PASSED_OVER,
    GroupMember,
    Poison,
    pause,
    waited_out,
)
from shopstream.db import Connection

log = logging.getLogger(__name__)

Handler = Callable[[Connection, events.Event], Awaitable[None]]


class EventConsumer(GroupMember):
    """Applies each event once, in a transaction with its ``processed_events`` row; an event that
    keeps failing is dead-lettered after ``max_attempts``."""

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
        wants: Callable[[events.Event], bool] | None = None,
    ) -> None:
        super().__init__(settings, group, topics, max_attempts, retry_backoff)
        self.pool = pool
        self.handle = handle
        self.after_apply = after_apply  # runs after the DB commit, before the offset commit
        # Events the group has no effect for pass without a transaction: applying them would only
        # write their processed_events row, a commit and a WAL flush each.
        self.wants = wants

    async def process(self, batch: list[Message]) -> None:
        by_partition: dict[tuple[str, int], list[Message]] = defaultdict(list)
        for message in batch:
            by_partition[(message.topic() or "", message.partition() or 0)].append(message)

        async def in_order(messages: list[Message]) -> None:
            for message in messages:
                with tracing.consumer_span(message, self.group):
                    await self._apply_or_dead_letter(message)

        # every partition finishes (or gives up on being stopped) before the batch counts as done
        ended = await asyncio.gather(
            *(in_order(ms) for ms in by_partition.values()), return_exceptions=True
        )
        for outcome in ended:
            if isinstance(outcome, BaseException):
                raise outcome

    async def _apply_or_dead_letter(self, message: Message) -> None:
        try:
            event = events.decode(message.value() or b"")
        except Exception as exc:
            await self._dead_letter(message, f"undecodable: {exc}", 1)
            return
        if self.wants is not None and not self.wants(event):
            PASSED_OVER.labels(self.group).inc()
            return
        failures = outages = 0
        while True:
            try:
                await self.apply(event)
                return
            except Poison as exc:
                await self._dead_letter(message, f"poison: {exc}", failures + 1)
                return
            except Exception as exc:
                if waited_out(exc):
                    outages = await self._wait_for_database(exc, outages, f"event {event.id}")
                    continue
                failures += 1
                reason = f"{type(exc).__name__}: {exc}"
                log.warning(
                    "group %s: event %s failed (attempt %d): %s",
                    self.group,
                    event.id,
                    failures,
                    reason,
                )
                if failures >= self.max_attempts:
                    await self._dead_letter(message, reason, failures)
                    return
                await self._wait(pause(self.retry_backoff, failures))

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
