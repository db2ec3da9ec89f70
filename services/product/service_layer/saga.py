"""product-service's side of the order saga: what each order event asks of the stock, and the
answer it sends back on ``stock-events`` (keyed by order id), emitted through the caller's unit of
work (``service_layer/unit_of_work.py``: the outbox, in the same transaction as the stock change):

| order event | use case | answer |
|---|---|---|
| OrderPlaced (async mode) | hold every line, or none | StockReserved, or StockRejected |
| StockRequestedAgain (an answer overdue) | the same, or find what was held or refused | the same answer again |
| StockReleased, OrderRejected, OrderCancelled | release exactly what is held (nothing twice) | ReservationReleased |
| OrderConfirmed | the held stock is sold (reservation committed) | none |

A sync order's OrderPlaced asks nothing: it reserved over HTTP inside its request."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from services.product.domain.reservation import (
    HeldLine,
    Line,
    OutOfStock,
    ReservationError,
    UnknownProduct,
)
from services.product.service_layer import reservations
from services.product.service_layer.unit_of_work import UnitOfWork
from shopstream import contracts
from shopstream.contracts import orders, stock
from shopstream.contracts.topics import STOCK_EVENTS
from shopstream.events import new_event

RELEASING = (orders.StockReleased, orders.OrderRejected, orders.OrderCancelled)
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def _lines(found: Sequence[orders.OrderLine] | Sequence[HeldLine]) -> list[stock.StockLine]:
    return [stock.StockLine(product_id=UUID(str(x.product_id)), quantity=x.quantity) for x in found]


def _uuid(value: str) -> UUID | None:
    try:
        return UUID(value)
    except ValueError:
        return None


class StockSaga:
    """Applies one order event in the caller's unit of work; the table below says which use case."""

    def __init__(self, clock: Clock = utcnow) -> None:
        self.clock = clock
        self.handlers: dict[type, Callable[[UnitOfWork, Any], Awaitable[None]]] = {
            orders.OrderPlaced: self._placed,
            orders.StockRequestedAgain: self._requested_again,
            orders.OrderConfirmed: self._confirmed,
            **{kind: self._ended for kind in RELEASING},
        }

    async def handle(self, uow: UnitOfWork, message: object) -> None:
        handler = self.handlers.get(type(message))
        if handler is not None:
            await handler(uow, message)

    def _answer(self, uow: UnitOfWork, answer: stock.StockAnswer) -> None:
        order_id = str(answer.order_id)
        event = new_event(type(answer).__name__, order_id, contracts.data(answer), source="product-service")
        uow.emit(STOCK_EVENTS, order_id, event)

    async def _placed(self, uow: UnitOfWork, message: orders.OrderPlaced) -> None:
        if message.mode != "async":
            return  # a sync order reserves over HTTP inside its request
        await self._reserve(uow, message.order_id, message.lines)

    async def _requested_again(self, uow: UnitOfWork, message: orders.StockRequestedAgain) -> None:
        # The same answer as to OrderPlaced: a reservation or a refusal made before is found
        # and answered again, never made twice.
        await self._reserve(uow, message.order_id, message.lines)

    async def _reserve(self, uow: UnitOfWork, order_id: UUID, asked: list[orders.OrderLine]) -> None:
        now = self.clock()
        lines = [Line(str(x.product_id), x.quantity) for x in asked]
        try:
            held = await reservations.reserve(uow, str(order_id), lines)
        except (OutOfStock, UnknownProduct) as exc:
            reason = "unknown product" if isinstance(exc, UnknownProduct) else "out of stock"
            self._answer(uow, stock.StockRejected(order_id=order_id, occurred_at=now,
                                                         reason=reason, product_id=_uuid(exc.product_id)))  # fmt: skip
            return
        except ReservationError as exc:
            self._answer(uow, stock.StockRejected(order_id=order_id, occurred_at=now,
                                                         reason=f"invalid lines: {exc}"))  # fmt: skip
            return
        self._answer(uow, stock.StockReserved(order_id=order_id, occurred_at=now,
                                                     lines=_lines(held.lines)))  # fmt: skip

    async def _ended(self, uow: UnitOfWork, message: orders.StockReleased) -> None:
        # An order that ended without confirmation holds nothing: even if it never learnt that its
        # reservation was made (a sync request that lost the product service's answer).
        released = await reservations.release(uow, str(message.order_id))
        if released is not None and released.lines:
            self._answer(uow, stock.ReservationReleased(
                order_id=message.order_id, occurred_at=self.clock(), lines=_lines(released.lines)))  # fmt: skip

    async def _confirmed(self, uow: UnitOfWork, message: orders.OrderConfirmed) -> None:
        await reservations.commit(uow, str(message.order_id))
