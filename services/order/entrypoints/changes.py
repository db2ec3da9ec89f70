"""Order changes as they commit: one LISTEN connection per instance wakes the requests that
follow an order (long-poll and server-sent events), whoever wrote the change (this instance,
another one, or the saga consumer). Each recorded change NOTIFYs ``order_changes`` with
``<order id>:<version>:<status>``; the waiters re-read the projection, so a lost notification
costs at most one fallback poll interval, never a missed change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable, Iterator

import asyncpg

from services.order.adapters.recorder import CHANGES_CHANNEL

log = logging.getLogger(__name__)


class ChangeFeed:
    def __init__(self, database_url: Callable[[], str]) -> None:
        # asked on every connect: a rotated password (rotate-db-passwords) is used when the
        # connection comes back after a PostgreSQL restart or failover
        self.database_url = database_url
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._conn: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    @property
    def listening(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def start(self) -> None:
        await self._connect()
        self._task = asyncio.create_task(self._supervise())

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._conn is not None and not self._conn.is_closed():
            await self._conn.close()

    async def _connect(self) -> None:
        conn = await asyncpg.connect(self.database_url())
        await conn.add_listener(CHANGES_CHANNEL, self._on_notify)
        self._conn = conn

    async def _supervise(self) -> None:
        """Reconnect when the LISTEN connection is lost (waiters poll meanwhile)."""
        while not self._stopping.is_set():
            await asyncio.sleep(1)
            if self.listening:
                continue
            try:
                await self._connect()
                self._wake_all()  # changes may have been missed while disconnected
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("order change feed cannot listen yet: %s", exc)

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        order_id = str(payload).split(":", 1)[0]
        for event in self._waiters.get(order_id, ()):
            event.set()

    def _wake_all(self) -> None:
        for waiters in self._waiters.values():
            for event in waiters:
                event.set()

    @contextlib.contextmanager
    def watch(self, order_id: str) -> Iterator[asyncio.Event]:
        """An event set whenever ``order_id`` changes, for the duration of the block. Register
        before reading the order, so a change between the read and the wait is not missed."""
        event = asyncio.Event()
        self._waiters[order_id].add(event)
        try:
            yield event
        finally:
            waiters = self._waiters.get(order_id)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[order_id]

