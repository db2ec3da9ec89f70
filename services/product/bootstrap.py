"""The one place where product-service is wired: the unit of work, the catalog's use cases and the
stock saga, for the HTTP app and the consumer alike. Tests pass their own clock and unit of work;
nothing else builds these."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from services.product.service_layer.catalog import Catalog
from services.product.service_layer.saga import Clock, StockSaga, utcnow
from services.product.service_layer.unit_of_work import UnitOfWork, UnitOfWorkFactory


@dataclass(frozen=True)
class ProductService:
    uow: UnitOfWorkFactory
    catalog: Catalog
    saga: StockSaga


def bootstrap(
    pool: asyncpg.Pool, *, clock: Clock = utcnow, uow: UnitOfWorkFactory | None = None
) -> ProductService:
    def owned() -> UnitOfWork:
        return UnitOfWork(pool)

    chosen = uow or owned
    return ProductService(chosen, Catalog(chosen), StockSaga(clock))
