"""What happened to an order, in the past tense. Events are immutable and carry their own time.

An order's stream starts with OrderPlaced; its version is the number of events in it. StockReserved
and StockRejected are the product service's answers, PaymentAuthorized/PaymentDeclined the payment
port's, recorded into the order's stream so its whole story is in one place. StockReleased and
PaymentVoided are compensations; StockRequestedAgain is the saga asking again for an answer overdue; OrderConfirmed, OrderCancelled and OrderRejected end the story.

Each event is a plain dataclass (UUID, datetime, enums, tuples of dataclasses), so msgspec can
encode it and ``msgspec.convert(data, type=EVENT_TYPES[name])`` can decode it in the adapters.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from services.order.domain.values import (
    CancelledBy,
    LineItem,
    OrderLine,
    ProcessingMode,
    ShippingAddress,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderEvent:
    order_id: UUID
    occurred_at: datetime

    @property
    def name(self) -> str:
        return type(self).__name__


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderPlaced(OrderEvent):
    customer_id: UUID
    lines: tuple[OrderLine, ...]
    shipping_address: ShippingAddress
    mode: ProcessingMode
    idempotency_key: str | None = None

    @property
    def items(self) -> tuple[LineItem, ...]:
        return tuple(line.item for line in self.lines)

    @property
    def total_cents(self) -> int:
        return sum(line.total_cents for line in self.lines)


@dataclass(frozen=True, slots=True, kw_only=True)
class StockReserved(OrderEvent):
    """The product service reserved exactly these lines for the order."""

    lines: tuple[LineItem, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class StockRejected(OrderEvent):
    """The product service reserved nothing; ``product_id`` names the product that fell short."""

    reason: str
    product_id: UUID | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StockRequestedAgain(OrderEvent):
    """An async order heard no stock answer in time (its OrderPlaced or the answer lost, a
    consumer down): it asks the product service again for the same lines. The product service
    answers as it did, or would have, for OrderPlaced: a reservation is made once per order."""

    lines: tuple[LineItem, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class PaymentAuthorized(OrderEvent):
    payment_id: str
    amount_cents: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PaymentDeclined(OrderEvent):
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PaymentVoided(OrderEvent):
    """Compensation: an authorization the order will not use is given back."""

    payment_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderConfirmed(OrderEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class StockReleased(OrderEvent):
    """Compensation: exactly these reserved lines go back to stock."""

    lines: tuple[LineItem, ...]
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderCancelled(OrderEvent):
    reason: str
    by: CancelledBy


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRejected(OrderEvent):
    reason: str


EVENT_TYPES: dict[str, type[OrderEvent]] = {
    cls.__name__: cls
    for cls in (
        OrderPlaced,
        StockReserved,
        StockRejected,
        StockRequestedAgain,
        PaymentAuthorized,
        PaymentDeclined,
        PaymentVoided,
        OrderConfirmed,
        StockReleased,
        OrderCancelled,
        OrderRejected,
    )
}
"""Event class by name: the ``type`` column of the event store and header of Kafka messages."""
