"""The unit of work: one transaction on the product database, owned here, and the events it
collects for the outbox.

A use case reads and writes through ``uow.products`` (``adapters/repository.py``) and
``uow.reservations`` (``adapters/reservation_store.py``) on ``uow.conn``, and hands the events it
publishes to ``emit``; they are written to the outbox in one statement just before the commit, so
a rolled-back change publishes nothing. Unit tests give the use cases a fake with the same shape.

The saga consumer's transaction is a polled batch owned by the shared consumer
(``shopstream/consumer``): ``joining`` wraps its connection, writes the collected events when the
message is done and leaves the commit to the consumer (the same statements, no extra round trip).
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any

import asyncpg

from services.product.adapters import repository, reservation_store
from shopstream import outbox
from shopstream.db import Connection
from shopstream.events import Event


class UnitOfWork:
    products: Any = repository
    reservations: Any = reservation_store

    def __init__(self, pool: asyncpg.Pool | None, conn: Connection | None = None) -> None:
        self.pool = pool
        self.emitted: list[outbox.Message] = []
        self._conn: Any = conn
        self._tx: Any = None
        self._acquired: Any = None
        self._joined = conn is not None

    @classmethod
    def joining(cls, conn: Connection) -> UnitOfWork:
        """A unit of work inside a transaction its caller owns (the consumer's batch)."""
        return cls(None, conn)

    @property
    def conn(self) -> Connection:
        assert self._conn is not None, "outside ``async with``"
        return self._conn

    def emit(self, topic: str, key: str, event: Event) -> None:
        """Publish this event if the unit of work commits."""
        self.emitted.append(outbox.Message(topic, key, event, {"event_type": event.type}))

    async def __aenter__(self) -> UnitOfWork:
        if not self._joined:
            assert self.pool is not None
            self._acquired = self.pool.acquire()
            self._conn = await self._acquired.__aenter__()
            self._tx = self._conn.transaction()
            await self._tx.__aenter__()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        emitted, self.emitted = self.emitted, []
        if self._joined:
            if kind is None:
                await outbox.add_all(self._conn, emitted)
            return
        try:
            try:
                if kind is None:
                    await outbox.add_all(self._conn, emitted)
            except BaseException as failed:
                await self._tx.__aexit__(type(failed), failed, failed.__traceback__)
                raise
            await self._tx.__aexit__(kind, exc, tb)
        finally:
            await self._acquired.__aexit__(None, None, None)
            self._conn = self._tx = self._acquired = None


UnitOfWorkFactory = Callable[[], UnitOfWork]
