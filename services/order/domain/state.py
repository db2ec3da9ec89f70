"""An order's state, and ``evolve``: the pure fold of its events into that state.

``evolve`` applies facts; it checks only that the stream is well formed (starts with OrderPlaced,
one order id). Business rules live in the aggregate's command methods, before an event exists, so
replaying any stored stream always works and always gives the same state.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from services.order.domain import events as ev
from services.order.domain.values import (
    CancelledBy,
    LineItem,
    OrderLine,
    ProcessingMode,
    ShippingAddress,
    subtract_items,
)


class OrderStatus(StrEnum):
    PENDING = "PENDING"
    STOCK_RESERVED = "STOCK_RESERVED"
    PAYMENT_AUTHORIZED = "PAYMENT_AUTHORIZED"
    CONFIRMED = "CONFIRMED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({OrderStatus.CONFIRMED, OrderStatus.CANCELLED, OrderStatus.REJECTED})


class Outcome(StrEnum):
    """The business outcome, what sync and async processing must agree on."""

    IN_PROGRESS = "in_progress"
    CONFIRMED = "confirmed"
    STOCK_REJECTED = "stock_rejected"  # sync answers 409
    PAYMENT_DECLINED = "payment_declined"  # sync answers 402
    CANCELLED = "cancelled"  # by the client
    REJECTED = "rejected"  # any other refusal (e.g. a reservation that does not match)


@dataclass(frozen=True, slots=True)
class StatusChange:
    status: OrderStatus
    at: datetime
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class StageTimestamps:
    """When each stage was reached; None while it has not been. Source of the latency metrics."""

    accepted: datetime | None = None
    stock_reserved: datetime | None = None
    stock_rejected: datetime | None = None
    stock_requested_again: datetime | None = None
    """The last time the order asked again for its stock answer."""
    payment_authorized: datetime | None = None
    payment_declined: datetime | None = None
    payment_voided: datetime | None = None
    stock_released: datetime | None = None
    confirmed: datetime | None = None
    cancelled: datetime | None = None
    rejected: datetime | None = None

    def as_dict(self) -> dict[str, datetime]:
        """The stages reached so far, by name, in the order of the fields above."""
        stages = ((f.name, getattr(self, f.name)) for f in fields(self))
        return {name: at for name, at in stages if at is not None}


@dataclass(frozen=True, slots=True)
class OrderState:
    order_id: UUID
    customer_id: UUID
    lines: tuple[OrderLine, ...]
    shipping_address: ShippingAddress
    mode: ProcessingMode
    idempotency_key: str | None
    status: OrderStatus
    version: int
    """Number of events applied; the expected version for the next append."""
    reserved: tuple[LineItem, ...] = ()
    released: tuple[LineItem, ...] = ()
    stock_rejected_reason: str | None = None
    stock_rejected_product: UUID | None = None
    payment_id: str | None = None
    authorized_cents: int | None = None
    payment_declined_reason: str | None = None
    payment_voided: bool = False
    reason: str | None = None
    """Why the order was cancelled or rejected."""
    cancelled_by: CancelledBy | None = None
    history: tuple[StatusChange, ...] = ()
    timestamps: StageTimestamps = StageTimestamps()

    @property
    def items(self) -> tuple[LineItem, ...]:
        return tuple(line.item for line in self.lines)

    @property
    def total_cents(self) -> int:
        return sum(line.total_cents for line in self.lines)

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal

    @property
    def held(self) -> tuple[LineItem, ...]:
        """Stock reserved for this order and not released: what a compensation must give back."""
        return subtract_items(self.reserved, self.released)

    @property
    def payment_outstanding(self) -> bool:
        """An authorization exists and was not voided."""
        return self.payment_id is not None and not self.payment_voided

    @property
    def compensating(self) -> bool:
        """A step failed or was undone; only compensation and a terminal event may follow."""
        return bool(
            self.stock_rejected_reason is not None
            or self.payment_declined_reason is not None
            or self.payment_voided
            or self.released
        )

    @property
    def is_settled(self) -> bool:
        """Terminal, and nothing left dangling: a failed order holds no stock and no payment."""
        if self.status is OrderStatus.CONFIRMED:
            return True
        return self.is_terminal and not self.held and not self.payment_outstanding

    @property
    def outcome(self) -> Outcome:
        if self.status is OrderStatus.CONFIRMED:
            return Outcome.CONFIRMED
        if self.status is OrderStatus.REJECTED:
            stock = self.stock_rejected_reason is not None
            return Outcome.STOCK_REJECTED if stock else Outcome.REJECTED
        if self.status is OrderStatus.CANCELLED:
            declined = self.payment_declined_reason is not None
            return Outcome.PAYMENT_DECLINED if declined else Outcome.CANCELLED
        return Outcome.IN_PROGRESS


def _moved(
    state: OrderState, status: OrderStatus, at: datetime, reason: str | None = None
) -> dict[str, Any]:
    return {"status": status, "history": (*state.history, StatusChange(status, at, reason))}


def _stamped(state: OrderState, stage: str, at: datetime) -> StageTimestamps:
    return replace(state.timestamps, **{stage: at})


def evolve(state: OrderState | None, event: ev.OrderEvent) -> OrderState:
    """The state after ``event``. Pure: returns a new OrderState, never changes ``state``."""
    if isinstance(event, ev.OrderPlaced):
        if state is not None:
            raise ValueError(f"order {event.order_id}: OrderPlaced on a stream that has started")
        return OrderState(
            order_id=event.order_id, customer_id=event.customer_id, lines=event.lines,
            shipping_address=event.shipping_address, mode=event.mode,
            idempotency_key=event.idempotency_key, status=OrderStatus.PENDING, version=1,
            history=(StatusChange(OrderStatus.PENDING, event.occurred_at),),
            timestamps=StageTimestamps(accepted=event.occurred_at),
        )
    if state is None:
        raise ValueError(f"order {event.order_id}: a stream must start with OrderPlaced")
    if event.order_id != state.order_id:
        raise ValueError(f"event for order {event.order_id} applied to order {state.order_id}")
    at = event.occurred_at
    changes: dict[str, Any] = {"version": state.version + 1}
    match event:
        case ev.StockReserved(lines=lines):
            changes.update(reserved=lines, timestamps=_stamped(state, "stock_reserved", at))
            if state.status is OrderStatus.PENDING:
                changes.update(_moved(state, OrderStatus.STOCK_RESERVED, at))
        case ev.StockRejected(reason=reason, product_id=product_id):
            changes.update(stock_rejected_reason=reason, stock_rejected_product=product_id,
                           timestamps=_stamped(state, "stock_rejected", at))
        case ev.StockRequestedAgain():
            changes.update(timestamps=_stamped(state, "stock_requested_again", at))
        case ev.PaymentAuthorized(payment_id=payment_id, amount_cents=amount):
            changes.update(payment_id=payment_id, authorized_cents=amount,
                           timestamps=_stamped(state, "payment_authorized", at))
            if state.status is OrderStatus.STOCK_RESERVED:
                changes.update(_moved(state, OrderStatus.PAYMENT_AUTHORIZED, at))
        case ev.PaymentDeclined(reason=reason):
            changes.update(payment_declined_reason=reason,
                           timestamps=_stamped(state, "payment_declined", at))
        case ev.PaymentVoided():
            changes.update(payment_voided=True, timestamps=_stamped(state, "payment_voided", at))
        case ev.StockReleased(lines=lines):
            changes.update(released=(*state.released, *lines),
                           timestamps=_stamped(state, "stock_released", at))
        case ev.OrderConfirmed():
            changes.update(_moved(state, OrderStatus.CONFIRMED, at),
                           timestamps=_stamped(state, "confirmed", at))
        case ev.OrderCancelled(reason=reason, by=by):
            changes.update(_moved(state, OrderStatus.CANCELLED, at, reason), reason=reason,
                           cancelled_by=by, timestamps=_stamped(state, "cancelled", at))
        case ev.OrderRejected(reason=reason):
            changes.update(_moved(state, OrderStatus.REJECTED, at, reason), reason=reason,
                           timestamps=_stamped(state, "rejected", at))
        case _:
            raise TypeError(f"not an order event: {event!r}")
    return replace(state, **changes)


def fold(events: Iterable[ev.OrderEvent]) -> OrderState:
    """The state of an order from its whole stream (which must not be empty)."""
    state: OrderState | None = None
    for event in events:
        state = evolve(state, event)
    if state is None:
        raise ValueError("an order needs at least its OrderPlaced event")
    return state
