"""Applying each event once: the effects of a polled batch and their ``processed_events`` rows in
one transaction."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable

import asyncpg

from shopstream import events, tracing
from shopstream.config import Settings
from shopstream.consumer.batch import BatchConsumer, Delivery
from shopstream.consumer.group import APPLIED, DUPLICATES, HANDLE_SECONDS, PASSED_OVER
from shopstream.db import Connection

log = logging.getLogger(__name__)

Handler = Callable[[Connection, events.Event], Awaitable[None]]


class EventConsumer(BatchConsumer):
    """A batch consumer for effects that are not idempotent by themselves: each event is applied
    once, its effect and its ``processed_events`` row in the batch's transaction (one commit, one
    WAL flush a batch); a redelivered event finds its row and is skipped. A failing batch is split
    down to the event at fault, which is retried, then dead-lettered (``BatchConsumer``)."""

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
        super().__init__(settings, group, topics, self._apply_once, batch_size=500,
                         max_attempts=max_attempts, retry_backoff=retry_backoff)  # fmt: skip
        self.pool = pool
        self.handle = handle
        self.after_apply = after_apply  # runs after the DB commit, before the offsets are stored
        # Events the group has no effect for pass without a row: it would only cost a write.
        self.wants = wants

    async def _apply(self, deliveries: list[Delivery]) -> None:
        await self._apply_once(deliveries)  # counts what it applied itself: duplicates are not

    async def _apply_once(self, deliveries: list[Delivery]) -> None:
        wanted = []
        for delivery in deliveries:
            if self.wants is None or self.wants(delivery.event):
                wanted.append(delivery)
            else:
                PASSED_OVER.labels(self.group).inc()
        if not wanted:
            return
        started = time.perf_counter()
        ids = [uuid.UUID(d.event.id) for d in wanted]
        async with self.pool.acquire() as conn, conn.transaction():
            fresh = {
                r["event_id"]
                for r in await conn.fetch(
                    "INSERT INTO processed_events (consumer_group, event_id)"
                    " SELECT $1, e FROM unnest($2::uuid[]) AS e ON CONFLICT DO NOTHING"
                    " RETURNING event_id",
                    self.group,
                    ids,
                )
            }
            applied = []
            for event_id, (message, event) in zip(ids, wanted, strict=True):
                if event_id not in fresh:
                    DUPLICATES.labels(self.group).inc()
                    continue
                fresh.discard(event_id)  # the same event twice in one batch applies once
                with tracing.consumer_span(message, self.group):
                    await self.handle(conn, event)
                applied.append(event)
        if applied:
            HANDLE_SECONDS.labels(self.group).observe((time.perf_counter() - started) / len(applied))
        for event in applied:
            APPLIED.labels(self.group, event.type).inc()
            if self.after_apply is not None:
                self.after_apply(event)
