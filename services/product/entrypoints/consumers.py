"""product-service's side of the order saga: ``shopstream consume product``.

Follows ``order-events``, reads each event as its contract (``shopstream/contracts/orders.py``)
and has the stock saga (``service_layer/saga.py``: which use case each event asks for, and the
answer on ``stock-events``) apply it in a unit of work joining the consumer's transaction: a polled
batch per transaction, the answers through the outbox in the same transaction as the stock
changes. The saga is idempotent by its own records, so no row per applied event is written (such
a row was 8 of an async order's ~90 WAL records): a redelivered order event
finds its reservation, its refusal or nothing left to release, holds nothing twice, and at most
answers again what it answered before, which the order saga ignores as it ignores a second answer
to a follow-up. Beside it, the reservations-held figures are sampled
(``adapters/reservation_metrics.py``: one process of all the instances exports them).
"""

from __future__ import annotations

import asyncpg

from services.product.adapters import reservation_metrics
from services.product.bootstrap import bootstrap
from services.product.service_layer.saga import RELEASING, StockSaga
from services.product.service_layer.unit_of_work import UnitOfWork
from shopstream import contracts, db, tracing
from shopstream.config import Settings
from shopstream.consumer import BatchApplier, BatchConsumer, Delivery, Poison, run_members
from shopstream.contracts import orders
from shopstream.contracts.topics import ORDER_EVENTS
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


def applier(pool: asyncpg.Pool, saga: StockSaga) -> BatchApplier:
    async def apply(deliveries: list[Delivery]) -> None:
        wanted_ones = [d for d in deliveries if wanted(d.event)]
        if not wanted_ones:
            return
        async with pool.acquire() as conn, conn.transaction():
            for d in wanted_ones:
                try:
                    message = contracts.read(ORDER_EVENTS, d.event)
                except contracts.Unreadable as exc:
                    raise Poison(str(exc)) from exc
                with tracing.consumer_span(d.message, GROUP):
                    async with UnitOfWork.joining(conn) as uow:
                        await saga.handle(uow, message)

    return apply


async def run(settings: Settings) -> None:
    pool = await db.create_pool(settings, "product", "consume", settings.worker_db_pool_size)
    saga = bootstrap(pool).saga
    consumer = BatchConsumer(settings, GROUP, [ORDER_EVENTS], applier(pool, saga),
                             batch_size=500, types=WANTED_TYPES)  # fmt: skip
    try:
        await run_members(
            [consumer], (lambda stopping: reservation_metrics.sample_while(settings, stopping),)
        )
    finally:
        await pool.close()
