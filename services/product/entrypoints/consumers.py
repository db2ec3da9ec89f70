"""product-service's side of the order saga: ``shopstream consume product``.

Follows ``order-events`` and answers on ``stock-events`` (keyed by order id):
- OrderPlaced (async mode) -> hold the stock of every line, or none -> StockReserved | StockRejected
- StockReleased (the order gave its stock back), OrderRejected, OrderCancelled -> release exactly
  what is held for the order (nothing if already released) -> ReservationReleased
- OrderConfirmed -> the held stock is sold (reservation committed)
Each event is applied once (shared idempotent consumer); the answer goes through the outbox in the
same transaction as the stock change. Beside it, the reservations-held figures are sampled
(``adapters/reservation_metrics.py``: one process of all the instances exports them).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

from services.product.adapters import reservation_metrics, reservations
from services.product.domain.reservation import (
    STOCK_REJECTED,
    STOCK_RESERVED,
    STOCK_TOPIC,
    Line,
    OutOfStock,
    ReservationError,
    UnknownProduct,
)
from shopstream import db, outbox
from shopstream.config import Settings
from shopstream.consumer import EventConsumer, Poison
from shopstream.db import Connection
from shopstream.events import Event, new_event, now_iso

log = logging.getLogger(__name__)

GROUP = "product-saga"
RESERVATION_RELEASED = "ReservationReleased"


async def _answer(conn: Connection, event_type: str, order_id: str, data: dict[str, Any]) -> None:
    event = new_event(
        event_type,
        order_id,
        {"order_id": order_id, "occurred_at": now_iso(), **data},
        source="product-service",
    )
    await outbox.add(conn, STOCK_TOPIC, order_id, event, {"event_type": event_type})


def _lines(data: dict[str, Any]) -> list[Line]:
    try:
        return [Line(str(x["product_id"]), int(x["quantity"])) for x in data["lines"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise Poison(f"lines unreadable: {exc}") from exc


RELEASING = ("StockReleased", "OrderRejected", "OrderCancelled")


def wanted(event: Event) -> bool:
    """The order events this saga acts on; a sync order's OrderPlaced is not one (it reserved over
    HTTP inside its request), nor are the order's other steps."""
    if event.type == "OrderPlaced":
        return event.data.get("mode") == "async"
    return event.type in (*RELEASING, "OrderConfirmed")


async def handle(conn: Connection, event: Event) -> None:
    order_id = str(event.data.get("order_id") or event.aggregate_id)
    if event.type == "OrderPlaced":
        if event.data.get("mode") != "async":
            return  # a sync order reserves over HTTP inside its request
        try:
            held = await reservations.reserve(conn, order_id, _lines(event.data))
        except (OutOfStock, UnknownProduct) as exc:
            reason = "unknown product" if isinstance(exc, UnknownProduct) else "out of stock"
            await _answer(
                conn, STOCK_REJECTED, order_id, {"reason": reason, "product_id": exc.product_id}
            )
            return
        except ReservationError as exc:
            await _answer(
                conn,
                STOCK_REJECTED,
                order_id,
                {"reason": f"invalid lines: {exc}", "product_id": None},
            )
            return
        lines = [{"product_id": h.product_id, "quantity": h.quantity} for h in held.lines]
        await _answer(conn, STOCK_RESERVED, order_id, {"lines": lines})
    elif event.type in RELEASING:
        # An order that ended without confirmation holds nothing: even if it never learnt that its
        # reservation was made (a sync request that lost the product service's answer).
        released = await reservations.release(conn, order_id)
        if released is not None and released.lines:
            lines = [{"product_id": h.product_id, "quantity": h.quantity} for h in released.lines]
            await _answer(conn, RESERVATION_RELEASED, order_id, {"lines": lines})
    elif event.type == "OrderConfirmed":
        await reservations.commit(conn, order_id)


async def run(settings: Settings) -> None:
    pool = await db.create_pool(settings, "product", "consume", settings.worker_db_pool_size)
    consumer = EventConsumer(settings, pool, GROUP, ["order-events"], handle, wants=wanted)
    stopping = asyncio.Event()

    def stop() -> None:
        stopping.set()
        consumer.stop()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    try:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(consumer.run())
            tasks.create_task(reservation_metrics.sample_while(settings, stopping))
    finally:
        await pool.close()
