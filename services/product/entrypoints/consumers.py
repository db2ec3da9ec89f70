"""product-service's side of the order saga: ``shopstream consume product``.

Follows ``order-events``, reads each event as its contract (``shopstream/contracts/orders.py``)
and has the stock saga (``service_layer/saga.py``: which use case each event asks for, and the
answer on ``stock-events``) apply it in a unit of work joining the consumer's transaction. Each
event is applied once (shared idempotent consumer, a polled batch per transaction); the answer goes
through the outbox in the same transaction as the stock change. Beside it, the reservations-held figures are sampled
(``adapters/reservation_metrics.py``: one process of all the instances exports them).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from services.product.adapters import reservation_metrics
from services.product.bootstrap import bootstrap
from services.product.service_layer.saga import RELEASING, StockSaga
from services.product.service_layer.unit_of_work import UnitOfWork
from shopstream import contracts, db
from shopstream.config import Settings
from shopstream.consumer import EventConsumer, Poison, run_members
from shopstream.contracts import orders
from shopstream.contracts.topics import ORDER_EVENTS
from shopstream.db import Connection
from shopstream.events import Event

GROUP = "product-saga"
WANTED_TYPES = frozenset(
    c.__name__
    for c in (orders.OrderPlaced, orders.StockRequestedAgain, orders.OrderConfirmed, *RELEASING)
)


def wanted(event: Event) -> bool:
    """The order events this saga acts on; a sync order's OrderPlaced is not one (it reserved over
    HTTP inside its request), nor are the order's other steps."""
    if event.type == orders.OrderPlaced.__name__:
        return event.data.get("mode") == "async"
    return event.type in WANTED_TYPES


def applier(saga: StockSaga) -> Callable[[Connection, Event], Awaitable[None]]:
    async def handle(conn: Connection, event: Event) -> None:
        try:
            message = contracts.read(ORDER_EVENTS, event)
        except contracts.Unreadable as exc:
            raise Poison(str(exc)) from exc
        async with UnitOfWork.joining(conn) as uow:
            await saga.handle(uow, message)

    return handle


async def run(settings: Settings) -> None:
    pool = await db.create_pool(settings, "product", "consume", settings.worker_db_pool_size)
    saga = bootstrap(pool).saga
    consumer = EventConsumer(settings, pool, GROUP, [ORDER_EVENTS], applier(saga), wants=wanted)
    try:
        await run_members(
            [consumer], (lambda stopping: reservation_metrics.sample_while(settings, stopping),)
        )
    finally:
        await pool.close()
