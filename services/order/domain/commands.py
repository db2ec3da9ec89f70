"""Commands: imperative requests. The client sends CancelOrder (and PlaceOrder, see placement),
the overdue sweep FollowUp;
the saga asks the outside world for ReserveStock, AuthorizePayment, ReleaseStock, VoidPayment.

How a command is carried out depends on the processing mode, never on the decision: in sync mode
the service calls the product service over HTTP and the payment port inline; in async mode
ReserveStock and ReleaseStock travel through the outbox (as OrderPlaced / StockReleased on Kafka).
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from services.order.domain.payment import PaymentRequest
from services.order.domain.values import CancelledBy, LineItem


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    order_id: UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelOrder(Command):
    reason: str = "cancelled by the customer"
    by: CancelledBy = CancelledBy.CLIENT


@dataclass(frozen=True, slots=True, kw_only=True)
class FollowUp(Command):
    """The order has had no news for longer than the saga waits: ask again for what it waits for
    (sent by the order service's own overdue sweep, never by a client)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReserveStock(Command):
    lines: tuple[LineItem, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ReleaseStock(Command):
    """Give back exactly these lines, which were reserved for the order."""

    lines: tuple[LineItem, ...]
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthorizePayment(Command):
    customer_id: UUID
    amount_cents: int

    def to_request(self) -> PaymentRequest:
        return PaymentRequest(self.order_id, self.customer_id, self.amount_cents)


@dataclass(frozen=True, slots=True, kw_only=True)
class VoidPayment(Command):
    payment_id: str
