"""The one place where product-service is wired: the catalog's use cases and the stock saga, for
the HTTP app and the consumer alike. Tests pass their own clock; nothing else builds these."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from services.product.service_layer.catalog import Catalog
from services.product.service_layer.saga import Clock, StockSaga, utcnow


@dataclass(frozen=True)
class ProductService:
    catalog: Catalog
    saga: StockSaga


def bootstrap(pool: asyncpg.Pool, *, clock: Clock = utcnow) -> ProductService:
    return ProductService(Catalog(pool), StockSaga(clock))
