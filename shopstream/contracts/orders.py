"""order-service's events, on ``order-events`` (payment ones on ``payment-events`` too, for
observers): every event of an order's event-sourced stream, in stream order, all under the key
the partitioning strategy gives the order. Translated from the domain events at the service's
edge; ``order_id`` and ``occurred_at`` are in every one."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

import msgspec

from shopstream.contracts.registry import Contract, registered
from shopstream.contracts.topics import ORDER_EVENTS


class OrderLine(msgspec.Struct, kw_only=True):
    product_id: UUID
    quantity: int
    unit_price_cents: int = 0


class OrderEvent(Contract):
    TOPIC: ClassVar[str] = ORDER_EVENTS
    PUBLISHER: ClassVar[str] = "order-service"
    order_id: UUID
    occurred_at: datetime


@registered
class OrderPlaced(OrderEvent):
    """Accepted; the product service reserves an async order's lines on hearing it."""

    customer_id: UUID
    lines: list[OrderLine]
    shipping_address: dict[str, Any]
    mode: str
    """``sync``: reserved over HTTP inside the request; ``async``: through the saga on Kafka."""
    idempotency_key: str | None = None


@registered
class StockReserved(OrderEvent):
    """The order recorded the product service's reservation (not the product service's answer
    on stock-events, which it answers)."""

    lines: list[OrderLine]


@registered
class StockRejected(OrderEvent):
    """The order recorded the refusal of its stock."""

    reason: str
    product_id: UUID | None = None


@registered
class StockRequestedAgain(OrderEvent):
    """An async order heard no stock answer in time and asks again for the same lines: the
    product service answers it as it answers OrderPlaced (one reservation per order, the same
    answer every time)."""

    lines: list[OrderLine]


@registered
class PaymentAuthorized(OrderEvent):
    """The payment provider holds the amount (also on payment-events)."""

    payment_id: str
    amount_cents: int


@registered
class PaymentDeclined(OrderEvent):
    """The provider refused, or could not be reached (also on payment-events)."""

    reason: str


@registered
class PaymentVoided(OrderEvent):
    """An authorization the order cannot use was given back (also on payment-events)."""

    payment_id: str


@registered
class StockReleased(OrderEvent):
    """Exactly what the order held goes back: the product service releases it."""

    lines: list[OrderLine]
    reason: str


@registered
class OrderConfirmed(OrderEvent):
    """Paid and confirmed: the product service commits the reservation."""


@registered
class OrderCancelled(OrderEvent):
    """Ended by the client or the saga; what it held is released."""

    reason: str
    by: str
    """``client`` or ``saga``."""


@registered
class OrderRejected(OrderEvent):
    """Ended because a step could not succeed; what it held is released."""

    reason: str
