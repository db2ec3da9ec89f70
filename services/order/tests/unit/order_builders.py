"""Test data for the order unit tests: ids, a clock, valid inputs, orders in each saga state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from services.order.domain import events as ev
from services.order.domain.commands import CancelOrder, FollowUp
from services.order.domain.order import Order
from services.order.domain.placement import PlaceOrder
from services.order.domain.saga import react
from services.order.domain.state import OrderStatus
from services.order.domain.values import CancelledBy, LineItem, ProcessingMode, ShippingAddress

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ORDER = UUID("0b7c9f4e-2a51-4d1c-9a3e-6f5d2c1b0a01")
OTHER_ORDER = UUID("0b7c9f4e-2a51-4d1c-9a3e-6f5d2c1b0a02")
CUSTOMER = UUID("5d8e3c2a-1b4f-4e6d-8c7b-9a0f1e2d3c01")
P1 = UUID("a1000000-0000-4000-8000-000000000001")
P2 = UUID("a1000000-0000-4000-8000-000000000002")
P3 = UUID("a1000000-0000-4000-8000-000000000003")
PRICES = {P1: 1250, P2: 399, P3: 10_000}
LINES = ((P1, 2), (P2, 1))  # total 2 * 1250 + 399 = 2899
TOTAL = 2899
PAY = "pay-1"


def at(seconds: float) -> datetime:
    """T0 plus ``seconds``: the tests' clock."""
    return T0 + timedelta(seconds=seconds)


def items(lines: tuple[tuple[UUID, int], ...] = LINES) -> tuple[LineItem, ...]:
    return tuple(LineItem(p, q) for p, q in lines)


def address(**overrides: str) -> ShippingAddress:
    values = {"name": "Ada Lovelace", "line1": "12 Analytical Row", "city": "London",
              "postal_code": "NW1 6XE", "country": "GB"} | overrides
    return ShippingAddress(**values)


def command(
    lines: tuple[tuple[UUID, int], ...] = LINES, *, customer: UUID = CUSTOMER, **kw: Any
) -> PlaceOrder:
    return PlaceOrder(customer, items(lines), kw.pop("shipping_address", address()), **kw)


def payload(**overrides: Any) -> dict[str, Any]:
    """A valid request body, as the HTTP layer decodes it from JSON."""
    body: dict[str, Any] = {
        "customer_id": str(CUSTOMER),
        "lines": [{"product_id": str(p), "quantity": q} for p, q in LINES],
        "shipping_address": {"name": "Ada Lovelace", "line1": "12 Analytical Row",
                             "city": "London", "postal_code": "NW1 6XE", "country": "GB"},
    }
    body.update(overrides)
    return body


def placed(order_id: UUID = ORDER, lines: tuple[tuple[UUID, int], ...] = LINES) -> Order:
    """A new order, its OrderPlaced committed."""
    order = Order.place(
        order_id=order_id, command=command(lines, mode=ProcessingMode.ASYNC),
        unit_prices=PRICES, at=T0,
    )
    order.collect_events()
    return order


def follow(order: Order, *messages: ev.OrderEvent | CancelOrder | FollowUp) -> Order:
    """The order after the saga reacted to each message in turn (each at one more second)."""
    for n, message in enumerate(messages, start=1):
        order = react(order, message, at(order.version + n)).order
        order.collect_events()
    return order


def reserved_msg(order_id: UUID = ORDER, lines: tuple[LineItem, ...] | None = None,
                 seconds: float = 1) -> ev.StockReserved:
    return ev.StockReserved(order_id=order_id, occurred_at=at(seconds), lines=lines or items())


def rejected_msg(order_id: UUID = ORDER, product: UUID | None = P2) -> ev.StockRejected:
    return ev.StockRejected(order_id=order_id, occurred_at=at(1), reason="insufficient stock",
                            product_id=product)


def authorized_msg(order_id: UUID = ORDER, payment_id: str = PAY,
                   amount: int = TOTAL) -> ev.PaymentAuthorized:
    return ev.PaymentAuthorized(order_id=order_id, occurred_at=at(2), payment_id=payment_id,
                                amount_cents=amount)


def declined_msg(order_id: UUID = ORDER) -> ev.PaymentDeclined:
    return ev.PaymentDeclined(order_id=order_id, occurred_at=at(2), reason="insufficient funds")


def cancel_msg(order_id: UUID = ORDER) -> CancelOrder:
    return CancelOrder(order_id=order_id, reason="changed my mind")


def order_in(status: OrderStatus) -> Order:
    """An order driven by the saga into ``status`` (cancelled: by the client while pending;
    rejected: out of stock)."""
    order = placed()
    steps: dict[OrderStatus, tuple[ev.OrderEvent | CancelOrder, ...]] = {
        OrderStatus.PENDING: (),
        OrderStatus.STOCK_RESERVED: (reserved_msg(),),
        OrderStatus.PAYMENT_AUTHORIZED: (reserved_msg(),),
        OrderStatus.CONFIRMED: (reserved_msg(), authorized_msg()),
        OrderStatus.CANCELLED: (cancel_msg(),),
        OrderStatus.REJECTED: (rejected_msg(),),
    }
    order = follow(order, *steps[status])
    if status is OrderStatus.PAYMENT_AUTHORIZED:  # the saga would confirm at once: stop before
        order.record_payment_authorized(PAY, TOTAL, at(2))
        order.collect_events()
    assert order.status is status
    return order


def all_events_of_one_order() -> list[ev.OrderEvent]:
    """One event of each type, all for ORDER (not a coherent story)."""
    return [
        placed().events[0],
        ev.StockReserved(order_id=ORDER, occurred_at=at(1), lines=items()),
        ev.StockRejected(order_id=ORDER, occurred_at=at(1), reason="none", product_id=P3),
        ev.StockRequestedAgain(order_id=ORDER, occurred_at=at(1), lines=items()),
        ev.PaymentAuthorized(order_id=ORDER, occurred_at=at(2), payment_id=PAY,
                             amount_cents=TOTAL),
        ev.PaymentDeclined(order_id=ORDER, occurred_at=at(2), reason="no"),
        ev.PaymentVoided(order_id=ORDER, occurred_at=at(3), payment_id=PAY),
        ev.StockReleased(order_id=ORDER, occurred_at=at(3), lines=items(), reason="r"),
        ev.OrderConfirmed(order_id=ORDER, occurred_at=at(3)),
        ev.OrderCancelled(order_id=ORDER, occurred_at=at(4), reason="r", by=CancelledBy.SAGA),
        ev.OrderRejected(order_id=ORDER, occurred_at=at(4), reason="r"),
    ]
