"""The Order aggregate: event-sourced, each command method checks its rule and records an event.

    order = Order.place(order_id=..., command=place_order, unit_prices=prices, at=now)
    order.record_stock_reserved(lines, at=now)      # -> STOCK_RESERVED
    order.record_payment_authorized("pay_1", order.state.total_cents, at=now)
    order.confirm(at=now)                           # -> CONFIRMED
    store.append(order.id, expected_version=order.committed_version, events=order.collect_events())

Happy path: PENDING -> STOCK_RESERVED -> PAYMENT_AUTHORIZED -> CONFIRMED. ``cancel`` and
``reject`` first compensate (release exactly the held stock, void an outstanding payment) and end
in CANCELLED or REJECTED; terminal states are terminal. The only facts a terminal order still
accepts are late ones that need compensating: a reservation or an authorization that arrives after
the order was cancelled is recorded, and must then be released / voided.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TypeVar
from uuid import UUID

from services.order.domain import events as ev
from services.order.domain.errors import (
    AlreadyRecorded,
    CannotCancel,
    IllegalTransition,
    InvalidOrder,
)
from services.order.domain.placement import PlaceOrder, price_lines, validate_place_order
from services.order.domain.state import OrderState, OrderStatus, evolve, fold
from services.order.domain.values import (
    CancelledBy,
    LineItem,
    ProcessingMode,
    require_aware,
    require_reason,
    require_stock_lines,
    same_items,
)

_ENDED_BY_FAILURE = (OrderStatus.CANCELLED, OrderStatus.REJECTED)
E = TypeVar("E", bound=ev.OrderEvent)


class Order:
    __slots__ = ("_events", "_pending", "_state")

    def __init__(self, state: OrderState, events: tuple[ev.OrderEvent, ...], pending: int) -> None:
        self._state = state
        self._events = events
        self._pending = pending

    # Creation ------------------------------------------------------------------------------------
    @classmethod
    def place(
        cls, *, order_id: UUID, command: PlaceOrder, unit_prices: Mapping[UUID, int], at: datetime
    ) -> Order:
        """A new order from a valid command and the product service's unit prices (cents)."""
        errors = validate_place_order(command)
        if errors:
            raise InvalidOrder(errors)
        placed = ev.OrderPlaced(
            order_id=order_id, occurred_at=require_aware(at), customer_id=command.customer_id,
            lines=price_lines(command, unit_prices), shipping_address=command.shipping_address,
            mode=command.mode, idempotency_key=command.idempotency_key,
        )
        return cls(evolve(None, placed), (placed,), pending=1)

    @classmethod
    def from_events(cls, events: Iterable[ev.OrderEvent]) -> Order:
        """Rebuild from a stored stream; nothing is pending."""
        stream = tuple(events)
        return cls(fold(stream), stream, pending=0)

    def copy(self) -> Order:
        return Order(self._state, self._events, self._pending)

    # Reading -------------------------------------------------------------------------------------
    @property
    def state(self) -> OrderState:
        return self._state

    @property
    def id(self) -> UUID:
        return self._state.order_id

    @property
    def status(self) -> OrderStatus:
        return self._state.status

    @property
    def version(self) -> int:
        """Number of events, pending ones included."""
        return self._state.version

    @property
    def committed_version(self) -> int:
        """Version before the pending events: the expected version for the next append."""
        return self._state.version - self._pending

    @property
    def events(self) -> tuple[ev.OrderEvent, ...]:
        return self._events

    @property
    def last_changed_at(self) -> datetime:
        """When its latest event happened."""
        return self._events[-1].occurred_at

    @property
    def pending_events(self) -> tuple[ev.OrderEvent, ...]:
        return self._events[len(self._events) - self._pending :]

    def collect_events(self) -> tuple[ev.OrderEvent, ...]:
        """The pending events, now counted as committed (call once they are stored)."""
        pending = self.pending_events
        self._pending = 0
        return pending

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Order):
            return NotImplemented
        return self._state == other._state and self._events == other._events

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Order({self.id}, {self.status}, v{self.version}, pending={self._pending})"

    def request_stock_again(self, at: datetime) -> ev.StockRequestedAgain:
        """Ask the product service again for the stock answer an async order still waits for."""
        s, action = self._state, "request stock again"
        if s.mode is not ProcessingMode.ASYNC:
            raise self._illegal(action, "a sync order reserves over HTTP inside its request")
        if s.status is not OrderStatus.PENDING or s.reserved or s.stock_rejected_reason is not None:
            raise self._illegal(action, "the stock outcome is known already")
        return self._trigger(ev.StockRequestedAgain(order_id=s.order_id, occurred_at=at, lines=s.items))

    # Facts from the product service and the payment port ------------------------------------------
    def record_stock_reserved(self, lines: Iterable[LineItem], at: datetime) -> ev.StockReserved:
        s, items = self._state, tuple(lines)
        action = "record stock reserved"
        if s.reserved:
            raise AlreadyRecorded(s.order_id, s.status, action, "a reservation is recorded already")
        require_stock_lines(items)
        fresh = s.status is OrderStatus.PENDING and s.stock_rejected_reason is None
        if not fresh and s.status not in _ENDED_BY_FAILURE:
            raise self._illegal(action, "the stock outcome is known already")
        return self._trigger(ev.StockReserved(order_id=s.order_id, occurred_at=at, lines=items))

    def record_stock_rejected(
        self, reason: str, product_id: UUID | None, at: datetime
    ) -> ev.StockRejected:
        s, action = self._state, "record stock rejected"
        if s.stock_rejected_reason is not None:
            raise AlreadyRecorded(s.order_id, s.status, action, "a rejection is recorded already")
        if s.status is not OrderStatus.PENDING:
            raise self._illegal(action, "only a pending order waits for stock")
        return self._trigger(ev.StockRejected(
            order_id=s.order_id, occurred_at=at, reason=require_reason(reason), product_id=product_id
        ))

    def record_payment_authorized(
        self, payment_id: str, amount_cents: int, at: datetime
    ) -> ev.PaymentAuthorized:
        s, action = self._state, "record payment authorized"
        if s.payment_id == payment_id:
            raise AlreadyRecorded(s.order_id, s.status, action, f"{payment_id} is recorded already")
        if s.payment_id is not None:
            raise self._illegal(action, f"payment {s.payment_id} is recorded already")
        if not payment_id or isinstance(amount_cents, bool) or amount_cents < 0:
            raise ValueError(f"bad authorization {payment_id!r} for {amount_cents!r} cents")
        fresh = s.status is OrderStatus.STOCK_RESERVED and not s.compensating
        if not fresh and s.status not in _ENDED_BY_FAILURE:
            raise self._illegal(action, "the order does not wait for a payment")
        return self._trigger(ev.PaymentAuthorized(
            order_id=s.order_id, occurred_at=at, payment_id=payment_id, amount_cents=amount_cents
        ))

    def record_payment_declined(self, reason: str, at: datetime) -> ev.PaymentDeclined:
        s, action = self._state, "record payment declined"
        if s.payment_declined_reason is not None:
            raise AlreadyRecorded(s.order_id, s.status, action, "a decline is recorded already")
        if s.status is not OrderStatus.STOCK_RESERVED or s.compensating:
            raise self._illegal(action, "the order does not wait for a payment")
        return self._trigger(
            ev.PaymentDeclined(order_id=s.order_id, occurred_at=at, reason=require_reason(reason))
        )

    # Decisions of the order service --------------------------------------------------------------
    def confirm(self, at: datetime) -> ev.OrderConfirmed:
        s, action = self._state, "confirm"
        if s.status is OrderStatus.CONFIRMED:
            raise AlreadyRecorded(s.order_id, s.status, action, "confirmed already")
        if s.status is not OrderStatus.PAYMENT_AUTHORIZED or s.compensating:
            raise self._illegal(action, "needs reserved stock and an authorized payment")
        if s.authorized_cents != s.total_cents:
            raise self._illegal(action, f"authorized {s.authorized_cents} != total {s.total_cents}")
        if not same_items(s.held, s.items):
            raise self._illegal(action, "the reserved stock does not match the order lines")
        return self._trigger(ev.OrderConfirmed(order_id=s.order_id, occurred_at=at))

    def release_stock(self, reason: str, at: datetime) -> ev.StockReleased:
        """Give back exactly the held stock (reserved and not yet released)."""
        s, action = self._state, "release stock"
        if s.status is OrderStatus.CONFIRMED:
            raise self._illegal(action, "a confirmed order keeps its stock")
        if not s.held:
            raise self._illegal(action, "no stock is held")
        return self._trigger(ev.StockReleased(
            order_id=s.order_id, occurred_at=at, lines=s.held, reason=require_reason(reason)
        ))

    def void_payment(self, at: datetime) -> ev.PaymentVoided:
        s, action = self._state, "void payment"
        if s.status is OrderStatus.CONFIRMED:
            raise self._illegal(action, "a confirmed order keeps its payment")
        if s.payment_id is None or not s.payment_outstanding:
            raise self._illegal(action, "no outstanding payment")
        return self._trigger(
            ev.PaymentVoided(order_id=s.order_id, occurred_at=at, payment_id=s.payment_id)
        )

    def cancel(self, reason: str, by: CancelledBy, at: datetime) -> tuple[ev.OrderEvent, ...]:
        """Compensate what is held, then OrderCancelled. Returns the events recorded."""
        s, action = self._state, "cancel"
        if s.status is OrderStatus.CANCELLED:
            raise AlreadyRecorded(s.order_id, s.status, action, "cancelled already")
        if s.status.is_terminal:
            raise CannotCancel(s.order_id, s.status, action, f"the order is {s.status.lower()}")
        reason = require_reason(reason)
        done = self._compensate(reason, at)
        cancelled = ev.OrderCancelled(order_id=s.order_id, occurred_at=at, reason=reason, by=by)
        return (*done, self._trigger(cancelled))

    def reject(self, reason: str, at: datetime) -> tuple[ev.OrderEvent, ...]:
        """Compensate what is held, then OrderRejected. Returns the events recorded."""
        s, action = self._state, "reject"
        if s.status is OrderStatus.REJECTED:
            raise AlreadyRecorded(s.order_id, s.status, action, "rejected already")
        if s.status.is_terminal:
            raise self._illegal(action, "the order has ended")
        reason = require_reason(reason)
        done = self._compensate(reason, at)
        rejected = ev.OrderRejected(order_id=s.order_id, occurred_at=at, reason=reason)
        return (*done, self._trigger(rejected))

    # Internals -----------------------------------------------------------------------------------
    def _compensate(self, reason: str, at: datetime) -> tuple[ev.OrderEvent, ...]:
        done: list[ev.OrderEvent] = []
        if self._state.held:
            done.append(self.release_stock(reason, at))
        if self._state.payment_outstanding:
            done.append(self.void_payment(at))
        return tuple(done)

    def _trigger(self, event: E) -> E:
        require_aware(event.occurred_at)
        self._state = evolve(self._state, event)
        self._events = (*self._events, event)
        self._pending += 1
        return event

    def _illegal(self, action: str, why: str) -> IllegalTransition:
        return IllegalTransition(self._state.order_id, self._state.status, action, why)

