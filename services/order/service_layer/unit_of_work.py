"""The unit of work: one transaction on the order database, owned here and nowhere else.

Orders are loaded through it (locked, and kept in an identity map so a second message about the
same order in one batch sees the first one's decision) and decisions are recorded through it
(events + projection + outbox, ``adapters/recorder.py``). What was recorded is observed by the
metrics only once the transaction committed, so a rolled-back attempt counts nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any
from uuid import UUID

import asyncpg

from services.order.adapters import event_store, metrics
from services.order.adapters.recorder import Recorded, record
from services.order.domain.order import Order
from services.order.domain.partitioning import PartitionStrategy
from shopstream.db import Connection


class UnitOfWork:
    def __init__(self, pool: asyncpg.Pool, strategy: PartitionStrategy) -> None:
        self.pool = pool
        self.strategy = strategy
        self.recorded: list[Recorded] = []
        self._orders: dict[UUID, Order] = {}
        self._conn: Any = None
        self._tx: Any = None

    @property
    def conn(self) -> Connection:
        assert self._conn is not None, "outside ``async with``"
        return self._conn

    async def __aenter__(self) -> UnitOfWork:
        self._conn = await self.pool.acquire()
        self._tx = self._conn.transaction()
        await self._tx.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if kind is None:
                await self._tx.commit()
            else:
                await self._tx.rollback()
        finally:
            await self.pool.release(self._conn)
            self._conn = self._tx = None
        if kind is None:
            for item in self.recorded:
                metrics.observe(item)
        self.recorded.clear()
        self._orders.clear()

    async def load_all(self, order_ids: Iterable[UUID]) -> None:
        """Lock and load these orders in two round trips (the identity map keeps them)."""
        wanted = sorted({i for i in order_ids if i not in self._orders})
        if wanted:
            self._orders.update(await event_store.load_many(self.conn, wanted, lock=True))

    async def get(self, order_id: UUID) -> Order | None:
        """The order, locked for the rest of the transaction; None when it does not exist."""
        if order_id not in self._orders:
            await self.load_all([order_id])
        return self._orders.get(order_id)

    async def record(self, order: Order) -> Recorded:
        """Store the order's pending events, projection and outbox messages."""
        recorded = await record(self.conn, order, self.strategy)
        self._orders[order.id] = order
        self.recorded.append(recorded)
        return recorded


UnitOfWorkFactory = Callable[[], UnitOfWork]
