"""Admission of async orders: how many are in flight (accepted, not ended), counted from the
projection by each order instance twice a second.

Past the saga's sustained rate an open loop of clients grows the backlog without bound: orders
accepted in seconds wait minutes for their confirmation, and the HTTP side keeps taking the
cores the consumers need to catch up. At ``order_backlog_limit`` in flight, ``POST /orders``
refuses new async orders with 503 + Retry-After instead, which costs a fraction of accepting one;
the count comes from the projection's in-flight index, so every instance sees the same backlog.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from services.order.adapters import metrics
from services.order.adapters.projection import IN_FLIGHT_ASYNC

log = logging.getLogger(__name__)

COUNT_EVERY_SECONDS = 0.5
RETRY_AFTER_SECONDS = 1


class Backlog:
    """The last count of async orders in flight and whether it reached the limit (0: no limit)."""

    def __init__(self, limit: int, every: float = COUNT_EVERY_SECONDS) -> None:
        if limit < 0:
            raise ValueError(f"order_backlog_limit must not be negative, got {limit}")
        self.limit = limit
        self.every = every
        self.in_flight = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def full(self) -> bool:
        return self.limit > 0 and self.in_flight >= self.limit

    def start(self, pool: asyncpg.Pool) -> None:
        if self.limit > 0:
            self._task = asyncio.create_task(self._count(pool), name="order-backlog")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def count(self, pool: asyncpg.Pool) -> int:
        self.in_flight = int(await pool.fetchval(IN_FLIGHT_ASYNC))
        metrics.BACKLOG.set(self.in_flight)
        return self.in_flight

    async def _count(self, pool: asyncpg.Pool) -> None:
        while True:
            try:
                await self.count(pool)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                # The last count stands: orders are admitted or refused as they were a moment ago,
                # and placing one meets the same database anyway.
                log.warning("async backlog not counted: %s", exc)
            await asyncio.sleep(self.every)
