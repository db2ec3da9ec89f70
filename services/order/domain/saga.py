"""The order saga (process manager): a pure decision from an order and an incoming message.

``react(order, message, at)`` never changes ``order`` and does no I/O. It returns a Reaction: the
events to append to the order's stream (at ``expected_version``) and the commands to carry out
after they are stored. The rules:

- OrderPlaced, order pending             -> ReserveStock(the order's lines)
- StockReserved, order pending           -> record it, AuthorizePayment(total); if the reserved
  lines differ from the order's, reject instead (releasing exactly what was reserved)
- StockReserved, order cancelled/rejected -> record it and release exactly those lines
- StockRejected, order pending           -> record it, OrderRejected
- PaymentAuthorized, stock reserved      -> record it, OrderConfirmed (reject if the amount is off)
- PaymentAuthorized the order cannot use -> void it
- PaymentDeclined, stock reserved        -> record it, release the held stock, OrderCancelled(saga)
- CancelOrder before confirmation        -> release held stock, void an outstanding payment,
  OrderCancelled(client); CancelOrder on a cancelled order is a no-op; on a confirmed or rejected
  one it raises CannotCancel
- FollowUp, async order pending with no stock answer -> record StockRequestedAgain (the product
  service answers it as it answers OrderPlaced); FollowUp of an order at another step -> nothing
  (the bus then carries out what the order waits for)
- anything else (duplicates, late answers with nothing to undo, the saga's own events) -> nothing

Every StockReleased recorded yields a ReleaseStock of the same lines and every PaymentVoided a
VoidPayment, so compensation is exactly what the order holds (``OrderState.held``): after any
reaction, a cancelled or rejected order is ``is_settled``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.order.domain import events as ev
from services.order.domain.commands import (
    AuthorizePayment,
    CancelOrder,
    Command,
    FollowUp,
    ReleaseStock,
    ReserveStock,
    VoidPayment,
)
from services.order.domain.order import Order
from services.order.domain.state import OrderState, OrderStatus
from services.order.domain.values import CancelledBy, ProcessingMode, same_items

SagaMessage = ev.OrderEvent | CancelOrder | FollowUp
_ENDED_BY_FAILURE = (OrderStatus.CANCELLED, OrderStatus.REJECTED)


@dataclass(frozen=True, eq=False)
class Reaction:
    order: Order
    """The order after the reaction (its new events are pending)."""
    expected_version: int
    """The version the stream must be at for ``events`` to be appended."""
    events: tuple[ev.OrderEvent, ...]
    commands: tuple[Command, ...]

    @property
    def ignored(self) -> bool:
        return not self.events and not self.commands


def react(order: Order, message: SagaMessage, at: datetime) -> Reaction:
    """What the saga does about ``message`` given ``order``; ``at`` stamps the events it decides."""
    if message.order_id != order.id:
        raise ValueError(f"message for order {message.order_id} given to order {order.id}")
    work = order.copy()
    handler = _HANDLERS.get(type(message))
    forward = handler(work, message, at) if handler else []
    new_events = work.events[len(order.events) :]
    commands = (*forward, *compensation_commands(new_events))
    return Reaction(work, order.version, new_events, commands)


def compensation_commands(events: Iterable[ev.OrderEvent]) -> tuple[Command, ...]:
    """ReleaseStock for each StockReleased and VoidPayment for each PaymentVoided, same data."""
    commands: list[Command] = []
    for event in events:
        if isinstance(event, ev.StockReleased):
            commands.append(ReleaseStock(
                order_id=event.order_id, lines=event.lines, reason=event.reason
            ))
        elif isinstance(event, ev.PaymentVoided):
            commands.append(VoidPayment(order_id=event.order_id, payment_id=event.payment_id))
    return tuple(commands)


def _on_placed(order: Order, _: ev.OrderPlaced, at: datetime) -> list[Command]:
    s = order.state
    if s.status is OrderStatus.PENDING and not s.reserved and s.stock_rejected_reason is None:
        return [ReserveStock(order_id=s.order_id, lines=s.items)]
    return []


def _on_stock_reserved(order: Order, msg: ev.StockReserved, at: datetime) -> list[Command]:
    s = order.state
    if s.reserved:  # the product service reserves once per order: this is a redelivery
        return []
    if s.status is OrderStatus.PENDING and s.stock_rejected_reason is None:
        order.record_stock_reserved(msg.lines, msg.occurred_at)
        if not same_items(msg.lines, s.items):
            order.reject("reserved stock does not match the order lines", at)
            return []
        return [AuthorizePayment(
            order_id=s.order_id, customer_id=s.customer_id, amount_cents=s.total_cents
        )]
    if s.status in _ENDED_BY_FAILURE:
        order.record_stock_reserved(msg.lines, msg.occurred_at)
        order.release_stock(f"stock reserved after the order was {s.status.lower()}", at)
    return []


def _on_stock_rejected(order: Order, msg: ev.StockRejected, at: datetime) -> list[Command]:
    s = order.state
    if s.status is OrderStatus.PENDING and not s.reserved and s.stock_rejected_reason is None:
        order.record_stock_rejected(msg.reason, msg.product_id, msg.occurred_at)
        product = f" (product {msg.product_id})" if msg.product_id else ""
        order.reject(f"stock rejected: {msg.reason}{product}", at)
    return []


def _on_payment_authorized(
    order: Order, msg: ev.PaymentAuthorized, at: datetime
) -> list[Command]:
    s = order.state
    if s.payment_id == msg.payment_id:  # redelivery
        return []
    if s.payment_id is None and s.status is OrderStatus.STOCK_RESERVED and not s.compensating:
        order.record_payment_authorized(msg.payment_id, msg.amount_cents, msg.occurred_at)
        if msg.amount_cents == s.total_cents:
            order.confirm(at)
        else:
            order.reject(f"authorized {msg.amount_cents} cents of {s.total_cents}", at)
        return []
    if s.payment_id is None and s.status in _ENDED_BY_FAILURE:
        order.record_payment_authorized(msg.payment_id, msg.amount_cents, msg.occurred_at)
        order.void_payment(at)
        return []
    # An authorization the order can never use (it has another one, or it is not at that step).
    return [VoidPayment(order_id=s.order_id, payment_id=msg.payment_id)]


def _on_payment_declined(order: Order, msg: ev.PaymentDeclined, at: datetime) -> list[Command]:
    s = order.state
    if s.status is OrderStatus.STOCK_RESERVED and s.payment_id is None and not s.compensating:
        order.record_payment_declined(msg.reason, msg.occurred_at)
        order.cancel(f"payment declined: {msg.reason}", CancelledBy.SAGA, at)
    return []


def _on_cancel(order: Order, msg: CancelOrder, at: datetime) -> list[Command]:
    if order.status is not OrderStatus.CANCELLED:  # cancelling twice is a no-op
        order.cancel(msg.reason, msg.by, at)  # CannotCancel once confirmed or rejected
    return []


def _on_follow_up(order: Order, _: FollowUp, at: datetime) -> list[Command]:
    s = order.state
    waits_for_stock = s.status is OrderStatus.PENDING and not s.reserved
    if waits_for_stock and s.stock_rejected_reason is None and s.mode is ProcessingMode.ASYNC:
        order.request_stock_again(at)
    return []


_HANDLERS: dict[type, Callable[[Order, Any, datetime], list[Command]]] = {
    ev.OrderPlaced: _on_placed,
    ev.StockReserved: _on_stock_reserved,
    ev.StockRejected: _on_stock_rejected,
    ev.PaymentAuthorized: _on_payment_authorized,
    ev.PaymentDeclined: _on_payment_declined,
    CancelOrder: _on_cancel,
    FollowUp: _on_follow_up,
}


def waiting_for(state: OrderState) -> tuple[Command, ...]:
    """The step a non-terminal order waits for, as the saga's command (empty: none pending)."""
    if state.is_terminal or state.compensating:
        return ()
    if state.status is OrderStatus.PENDING and not state.reserved:
        return (ReserveStock(order_id=state.order_id, lines=state.items),)
    if state.status is OrderStatus.STOCK_RESERVED and state.payment_id is None:
        return (AuthorizePayment(order_id=state.order_id, customer_id=state.customer_id,
                                 amount_cents=state.total_cents),)
    return ()
