"""product-service's side of the order saga: ``shopstream consume product``.

Follows ``order-events`` and answers on ``stock-events`` (keyed by order id):
- OrderPlaced (async mode) -> hold the stock of every line, or none -> StockReserved | StockRejected
- StockReleased (the order gave its stock back), OrderRejected, OrderCancelled -> release exactly
  what is held for the order (nothing if already released) -> ReservationReleased
- OrderConfirmed -> the held stock is sold (reservation committed)
The events are read as their contracts (``shopstream/contracts/orders.py``) and answered with
``contracts/stock.py``'s. Each event is applied once (shared idempotent consumer, a polled batch
per transaction); the answer goes through the outbox in the same transaction as the stock change. Beside it, the reservations-held figures are sampled
(``adapters/reservation_metrics.py``: one process of all the instances exports them).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import UUID

from services.product.adapters import reservation_metrics
from services.product.domain.reservation import (
    HeldLine,
    Line,
    OutOfStock,
    ReservationError,
    UnknownProduct,
)
from services.product.service_layer import reservations
from shopstream import contracts, db, outbox
from shopstream.config import Settings
from shopstream.consumer import EventConsumer, Poison, run_members
from shopstream.contracts import orders, stock
from shopstream.contracts.topics import ORDER_EVENTS, STOCK_EVENTS
from shopstream.db import Connection
from shopstream.events import Event, new_event

log = logging.getLogger(__name__)

GROUP = "product-saga"


async def _answer(conn: Connection, answer: stock.StockAnswer) -> None:
    order_id = str(answer.order_id)
    kind = type(answer).__name__
    event = new_event(kind, order_id, contracts.data(answer), source="product-service")
    await outbox.add(conn, STOCK_EVENTS, order_id, event, {"event_type": kind})


RELEASING = (orders.StockReleased, orders.OrderRejected, orders.OrderCancelled)
WANTED_TYPES = frozenset(c.__name__ for c in (orders.OrderPlaced, orders.OrderConfirmed, *RELEASING))


def wanted(event: Event) -> bool:
    """The order events this saga acts on; a sync order's OrderPlaced is not one (it reserved over
    HTTP inside its request), nor are the order's other steps."""
    if event.type == orders.OrderPlaced.__name__:
        return event.data.get("mode") == "async"
    return event.type in WANTED_TYPES


def _lines(found: Sequence[orders.OrderLine] | Sequence[HeldLine]) -> list[stock.StockLine]:
    return [stock.StockLine(product_id=UUID(str(x.product_id)), quantity=x.quantity) for x in found]


def _uuid(value: str) -> UUID | None:
    try:
        return UUID(value)
    except ValueError:
        return None


async def handle(conn: Connection, event: Event) -> None:
    try:
        message = contracts.read(ORDER_EVENTS, event)
    except contracts.Unreadable as exc:
        raise Poison(str(exc)) from exc
    now = datetime.now(UTC)
    if isinstance(message, orders.OrderPlaced):
        if message.mode != "async":
            return  # a sync order reserves over HTTP inside its request
        order_id = str(message.order_id)
        lines = [Line(str(x.product_id), x.quantity) for x in message.lines]
        try:
            held = await reservations.reserve(conn, order_id, lines)
        except (OutOfStock, UnknownProduct) as exc:
            reason = "unknown product" if isinstance(exc, UnknownProduct) else "out of stock"
            await _answer(conn, stock.StockRejected(order_id=message.order_id, occurred_at=now,
                                                    reason=reason, product_id=_uuid(exc.product_id)))  # fmt: skip
            return
        except ReservationError as exc:
            await _answer(conn, stock.StockRejected(order_id=message.order_id, occurred_at=now,
                                                    reason=f"invalid lines: {exc}"))  # fmt: skip
            return
        await _answer(conn, stock.StockReserved(order_id=message.order_id, occurred_at=now,
                                                lines=_lines(held.lines)))  # fmt: skip
    elif isinstance(message, RELEASING):
        # An order that ended without confirmation holds nothing: even if it never learnt that its
        # reservation was made (a sync request that lost the product service's answer).
        released = await reservations.release(conn, str(message.order_id))
        if released is not None and released.lines:
            await _answer(conn, stock.ReservationReleased(
                order_id=message.order_id, occurred_at=now, lines=_lines(released.lines)))
    elif isinstance(message, orders.OrderConfirmed):
        await reservations.commit(conn, str(message.order_id))


async def run(settings: Settings) -> None:
    pool = await db.create_pool(settings, "product", "consume", settings.worker_db_pool_size)
    consumer = EventConsumer(settings, pool, GROUP, [ORDER_EVENTS], handle, wants=wanted)
    try:
        await run_members(
            [consumer], (lambda stopping: reservation_metrics.sample_while(settings, stopping),)
        )
    finally:
        await pool.close()
