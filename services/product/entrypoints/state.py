"""What one product-service instance holds while it runs, shared by its route modules."""

from __future__ import annotations

import asyncpg

from services.product.adapters.cache import ProductCache
from services.product.bootstrap import ProductService
from services.product.entrypoints.cache_listener import CacheListener
from services.product.service_layer.catalog import Catalog
from services.product.service_layer.unit_of_work import UnitOfWork
from shopstream.config import Settings


class State:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.cache = ProductCache(settings.cache_max_entries, settings.cache_ttl_seconds)
        self.listener = CacheListener(settings, self.cache)
        self.pool: asyncpg.Pool | None = None
        self.service: ProductService | None = None

    @property
    def db(self) -> asyncpg.Pool:
        assert self.pool is not None, "the app has not started"
        return self.pool

    @property
    def catalog(self) -> Catalog:
        assert self.service is not None, "the app has not started"
        return self.service.catalog

    def uow(self) -> UnitOfWork:
        assert self.service is not None, "the app has not started"
        return self.service.uow()


STATE: State
