"""What one order-service instance holds while it runs, shared by its route modules."""

from __future__ import annotations

from functools import partial

import asyncpg

from services.order.adapters.backlog import Backlog
from services.order.bootstrap import bootstrap
from services.order.domain.partitioning import PartitionStrategy
from services.order.domain.values import ProcessingMode
from services.order.entrypoints.changes import ChangeFeed
from services.order.service_layer.orders import OrderService
from shopstream.config import Settings


class State:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # Bad values fail here, at start, rather than on the first order.
        self.default_mode = ProcessingMode(settings.order_default_mode)
        self.strategy = PartitionStrategy(settings.order_partition_strategy)
        self.feed = ChangeFeed(partial(settings.database_url, "order"))
        self.backlog = Backlog(settings.order_backlog_limit)
        self.pool: asyncpg.Pool | None = None
        self._service: OrderService | None = None

    async def start(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._service = bootstrap(self.settings, pool, strategy=self.strategy)
        await self.feed.start()
        self.backlog.start(pool)

    async def stop(self) -> None:
        await self.backlog.stop()
        await self.feed.stop()
        if self._service is not None:
            await self._service.products.close()
        if self.pool is not None:
            await self.pool.close()

    @property
    def db(self) -> asyncpg.Pool:
        assert self.pool is not None, "the app has not started"
        return self.pool

    @property
    def service(self) -> OrderService:
        assert self._service is not None, "the app has not started"
        return self._service


STATE: State
