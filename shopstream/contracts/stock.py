"""product-service's answers to the order saga, on ``stock-events``, keyed by order id."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar
from uuid import UUID

import msgspec

from shopstream.contracts.registry import Contract, registered
from shopstream.contracts.topics import STOCK_EVENTS


class StockLine(msgspec.Struct, kw_only=True):
    product_id: UUID
    quantity: int


class StockAnswer(Contract):
    TOPIC: ClassVar[str] = STOCK_EVENTS
    PUBLISHER: ClassVar[str] = "product-service"
    order_id: UUID
    occurred_at: datetime


@registered
class StockReserved(StockAnswer):
    """Every line of an async order is held for it."""

    lines: list[StockLine]


@registered
class StockRejected(StockAnswer):
    """Nothing is held: a line's product is unknown or out of stock."""

    reason: str
    product_id: UUID | None = None


@registered
class ReservationReleased(StockAnswer):
    """What the order held is back in stock (the product service confirming a release)."""

    lines: list[StockLine]
