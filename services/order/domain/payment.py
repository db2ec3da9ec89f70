"""The payment port: what the order service needs from a payment provider, and its answers.

A real provider adapter and the local simulator (``adapters/payment_simulator.py``) both satisfy
``PaymentGateway``. Authorizing is idempotent per order (``PaymentRequest.idempotency_key``), so a
retry after a timeout cannot charge twice; voiding an already voided payment is a no-op.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable
from uuid import UUID

from services.order.domain.events import PaymentAuthorized, PaymentDeclined


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    order_id: UUID
    customer_id: UUID
    amount_cents: int

    @property
    def idempotency_key(self) -> str:
        return f"order-{self.order_id}"


@dataclass(frozen=True, slots=True)
class Authorized:
    payment_id: str
    amount_cents: int


@dataclass(frozen=True, slots=True)
class Declined:
    reason: str


PaymentResult = Authorized | Declined


class PaymentUnavailable(Exception):
    """The provider could not answer (timeout, outage): nothing was decided, retry later."""


class PaymentOutcomeUnknown(PaymentUnavailable):
    """The provider may have authorized but its answer never came (timeout) and it could not be
    asked afterwards; the order is compensated and a stray authorization lapses at the provider."""


class PaymentGateway(Protocol):
    async def authorize(self, request: PaymentRequest) -> PaymentResult:
        """Authorize the amount, or decline it. Raises PaymentUnavailable on transient failure."""
        ...

    async def void(self, payment_id: str, order_id: UUID) -> None:
        """Release an authorization that will not be captured. Idempotent."""
        ...


def payment_event(
    order_id: UUID, result: PaymentResult, at: datetime
) -> PaymentAuthorized | PaymentDeclined:
    """The port's answer as the event the saga reacts to."""
    if isinstance(result, Authorized):
        return PaymentAuthorized(
            order_id=order_id, occurred_at=at, payment_id=result.payment_id,
            amount_cents=result.amount_cents,
        )
    return PaymentDeclined(order_id=order_id, occurred_at=at, reason=result.reason)


@runtime_checkable
class PaymentLookup(Protocol):
    """What a provider offers to settle an answer that was lost: ask by the order's idempotency key,
    or void whatever it authorized under that key."""

    async def find(self, order_id: UUID) -> Authorized | None:
        """The authorization recorded for the order, if any."""
        ...

    async def void_order(self, order_id: UUID) -> None:
        """Void the order's authorization, if there is one. Idempotent."""
        ...
