"""order-service HTTP API: place, read, list, follow and cancel orders. Run: ``shopstream serve order``.

``POST /orders`` processes an order in one of two modes, chosen per request (``?mode=``, then the
``X-Processing-Mode`` header, then the body's ``mode``) or by ``order_default_mode``:
- async: the order and its OrderPlaced outbox message commit in one transaction; 202 + Location
  at once, and the saga goes on over Kafka (follow it with ``?wait=`` or ``/updates``);
- sync: stock is reserved over HTTP, the payment authorized and the order confirmed inside the
  request; 201 with the final order, or 409 (out of stock) / 402 (payment declined) after what was
  done has been compensated.
"""

from __future__ import annotations

from litestar import Litestar

from services.order.entrypoints import state as runtime
from services.order.entrypoints.following import (
    list_orders,
    order_events,
    order_updates,
    read_order,
)
from services.order.entrypoints.placing import cancel_order, place_order
from shopstream import db, guards
from shopstream import logging as shop_logging
from shopstream.config import Settings
from shopstream.http import create_app


async def _startup() -> None:
    await runtime.STATE.start(await db.create_pool(runtime.STATE.settings, "order"))


async def _shutdown() -> None:
    await runtime.STATE.stop()


async def _ready() -> bool:
    return runtime.STATE.feed.listening and await db.reachable(runtime.STATE.pool)


def create(settings: Settings | None = None) -> Litestar:
    settings = settings or Settings.from_env()
    shop_logging.configure(f"order-{settings.instance_id}", settings.log_level)
    runtime.STATE = runtime.State(settings)
    guards.configure(settings)
    return create_app(
        "order",
        "shopstream order-service",
        __doc__ or "",
        [place_order, read_order, order_updates, list_orders, cancel_order, order_events],
        ready_check=_ready,
        guards=[guards.authenticate],
        on_startup=[_startup],
        on_shutdown=[_shutdown],
    )
