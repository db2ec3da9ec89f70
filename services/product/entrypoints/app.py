"""product-service HTTP API: catalog CRUD, stock, search. Run: ``shopstream serve product``."""

from __future__ import annotations

from litestar import Litestar
from litestar.types import ASGIApp

from services.product.bootstrap import bootstrap
from services.product.entrypoints import (
    catalog_routes,
    hot_reads,
    reservation_routes,
    search_routes,
)
from services.product.entrypoints import state as runtime
from shopstream import db, guards
from shopstream import logging as shop_logging
from shopstream.config import Settings
from shopstream.http import create_app


async def _startup() -> None:
    runtime.STATE.pool = await db.create_pool(runtime.STATE.settings, "product")
    runtime.STATE.service = bootstrap(runtime.STATE.pool)
    runtime.STATE.listener.start()


async def _shutdown() -> None:
    runtime.STATE.listener.stop()
    if runtime.STATE.pool is not None:
        await runtime.STATE.pool.close()


async def _ready() -> bool:
    return runtime.STATE.listener.assigned.is_set() and await db.reachable(runtime.STATE.pool)


def create(settings: Settings | None = None) -> Litestar:
    settings = settings or Settings.from_env()
    shop_logging.configure(f"product-{settings.instance_id}", settings.log_level)
    runtime.STATE = runtime.State(settings)
    guards.configure(settings)
    return create_app(
        "product",
        "shopstream product-service",
        "Catalog CRUD, stock and search. Every change emits an event on the product-events topic.",
        [
            *catalog_routes.ROUTES,
            search_routes.search_products,
            *reservation_routes.ROUTES,
        ],
        ready_check=_ready,
        guards=[guards.authenticate],
        on_startup=[_startup],
        on_shutdown=[_shutdown],
        # a reservation is keyed by its order: repeating one holds nothing twice
        idempotent_paths=("/reservations",),
    )


def serve(settings: Settings | None = None) -> ASGIApp:
    """What granian runs: the app, with product pages answered in front of it (hot_reads)."""
    return hot_reads.in_front_of(create(settings))
