"""Applying each event once: its effect and its ``processed_events`` row in one transaction."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
from confluent_kafka import Message

from shopstream import events, tracing
from shopstream.config import Settings
from shopstream.consumer.batch import apply_isolating
from shopstream.consumer.group import (
    APPLIED,
    DUPLICATES,
    HANDLE_SECONDS,
    PASSED_OVER,
    GroupMember,
    Poison,
    pause,
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
        """The whole batch in one transaction (one commit, one WAL flush); when that fails, the
        batch is applied again in halves down to the event at fault, which is retried, then
        dead-lettered (``apply_isolating``). Partitions keep their order: events are applied
        in the order they were polled."""
        wanted: list[tuple[Message, events.Event]] = []
        for message in batch:
            try:
                event = events.decode(message.value() or b"")
            except Exception as exc:
                await self._dead_letter(message, f"undecodable: {exc}", 1)
                continue
            if self.wants is not None and not self.wants(event):
                PASSED_OVER.labels(self.group).inc()
                continue
            wanted.append((message, event))
        outages = 0

        async def wait_out(exc: BaseException) -> None:
            nonlocal outages
            outages = await self._wait_for_database(exc, outages, f"{len(wanted)} events")

        await apply_isolating(
            wanted, self._apply_batch, wait_out=wait_out, again=self._again, refuse=self._refuse
        )

    async def _apply_batch(self, items: list[tuple[Message, events.Event]]) -> None:
        started = time.perf_counter()
        async with self.pool.acquire() as conn, conn.transaction():
            fresh = {
                str(r["event_id"])
                for r in await conn.fetch(
                    "INSERT INTO processed_events (consumer_group, event_id)"
                    " SELECT $1, e FROM unnest($2::uuid[]) AS e ON CONFLICT DO NOTHING"
                    " RETURNING event_id",
                    self.group,
                    [uuid.UUID(event.id) for _, event in items],
                )
            }
            applied = []
            for message, event in items:
                if str(uuid.UUID(event.id)) not in fresh:
                    DUPLICATES.labels(self.group).inc()
                    continue
                fresh.discard(
                    str(uuid.UUID(event.id))
                )  # the same event twice in one batch applies once
                with tracing.consumer_span(message, self.group):
                    await self.handle(conn, event)
                applied.append(event)
        if applied:
            HANDLE_SECONDS.labels(self.group).observe(
                (time.perf_counter() - started) / len(applied)
            )
        for event in applied:
            APPLIED.labels(self.group, event.type).inc()
            if self.after_apply is not None:
                self.after_apply(event)

    async def _again(
        self, item: tuple[Message, events.Event], exc: BaseException, failures: int
    ) -> bool:
        log.warning("group %s: event %s failed (attempt %d): %s", self.group, item[1].id,
                    failures, f"{type(exc).__name__}: {exc}")  # fmt: skip
        if failures >= self.max_attempts:
            return False
        await self._wait(pause(self.retry_backoff, failures))
        return True

    async def _refuse(
        self, item: tuple[Message, events.Event], exc: BaseException, attempts: int
    ) -> None:
        reason = f"poison: {exc}" if isinstance(exc, Poison) else f"{type(exc).__name__}: {exc}"
        await self._dead_letter(item[0], reason, attempts)
