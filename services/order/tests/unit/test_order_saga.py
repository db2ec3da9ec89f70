"""Saga decisions: for each state and each incoming message, the events recorded and commands."""

from __future__ import annotations

import pytest

from services.order.domain import events as ev
from services.order.domain.commands import (
    AuthorizePayment,
    CancelOrder,
    FollowUp,
    ReleaseStock,
    ReserveStock,
    VoidPayment,
)
from services.order.domain.errors import CannotCancel, IllegalTransition
from services.order.domain.order import Order
from services.order.domain.saga import Reaction, compensation_commands, react
from services.order.domain.state import OrderStatus, Outcome
from services.order.domain.values import CancelledBy, LineItem, ProcessingMode
from services.order.tests.unit.order_builders import (
    CUSTOMER,
    ORDER,
    OTHER_ORDER,
    P1,
    P2,
    PAY,
    PRICES,
    TOTAL,
    at,
    authorized_msg,
    cancel_msg,
    command,
    declined_msg,
    follow,
    items,
    order_in,
    placed,
    rejected_msg,
    reserved_msg,
)

S = OrderStatus
NOW = at(100)


def names(reaction: Reaction) -> list[str]:
    return [e.name for e in reaction.events]


def assert_ignored(order: Order, message: ev.OrderEvent | CancelOrder | FollowUp) -> None:
    reaction = react(order, message, NOW)
    assert reaction.ignored, (names(reaction), reaction.commands)
    assert reaction.order == order


# Forward path ----------------------------------------------------------------------------------


def test_a_placed_order_asks_for_exactly_its_lines():
    order = placed()
    reaction = react(order, order.events[0], NOW)
    assert reaction.events == ()
    assert reaction.commands == (ReserveStock(order_id=ORDER, lines=items()),)


def test_stock_reserved_is_recorded_and_payment_is_asked_for_the_total():
    reaction = react(placed(), reserved_msg(), NOW)
    assert names(reaction) == ["StockReserved"]
    assert reaction.events[0] == reserved_msg()  # recorded with the product service's time
    assert reaction.commands == (
        AuthorizePayment(order_id=ORDER, customer_id=CUSTOMER, amount_cents=TOTAL),
    )
    assert reaction.order.status is S.STOCK_RESERVED
    assert reaction.expected_version == 1


def test_payment_authorized_confirms_the_order():
    reaction = react(order_in(S.STOCK_RESERVED), authorized_msg(), NOW)
    assert names(reaction) == ["PaymentAuthorized", "OrderConfirmed"]
    assert reaction.commands == ()
    assert reaction.order.status is S.CONFIRMED
    assert reaction.order.state.timestamps.confirmed == NOW


# Failure paths ---------------------------------------------------------------------------------


def test_stock_rejected_rejects_the_order_with_the_product_in_the_reason():
    reaction = react(placed(), rejected_msg(product=P2), NOW)
    assert names(reaction) == ["StockRejected", "OrderRejected"]
    assert reaction.commands == ()
    state = reaction.order.state
    assert state.status is S.REJECTED and state.outcome is Outcome.STOCK_REJECTED
    assert state.reason == f"stock rejected: insufficient stock (product {P2})"


def test_payment_declined_releases_exactly_the_reservation_and_cancels():
    reaction = react(order_in(S.STOCK_RESERVED), declined_msg(), NOW)
    assert names(reaction) == ["PaymentDeclined", "StockReleased", "OrderCancelled"]
    assert reaction.commands == (ReleaseStock(
        order_id=ORDER, lines=items(), reason="payment declined: insufficient funds"),)
    state = reaction.order.state
    assert (state.status, state.cancelled_by, state.outcome) == (
        S.CANCELLED, CancelledBy.SAGA, Outcome.PAYMENT_DECLINED)
    assert state.is_settled


def test_a_reservation_that_differs_from_the_order_releases_what_was_reserved_and_rejects():
    odd = (LineItem(P1, 1),)
    reaction = react(placed(), reserved_msg(lines=odd), NOW)
    assert names(reaction) == ["StockReserved", "StockReleased", "OrderRejected"]
    assert reaction.commands == (ReleaseStock(
        order_id=ORDER, lines=odd, reason="reserved stock does not match the order lines"),)
    assert reaction.order.state.is_settled


def test_an_authorization_for_the_wrong_amount_is_voided_and_the_order_rejected():
    reaction = react(order_in(S.STOCK_RESERVED), authorized_msg(amount=TOTAL + 1), NOW)
    assert names(reaction) == ["PaymentAuthorized", "StockReleased", "PaymentVoided",
                               "OrderRejected"]
    assert [type(c) for c in reaction.commands] == [ReleaseStock, VoidPayment]
    assert reaction.commands[1] == VoidPayment(order_id=ORDER, payment_id=PAY)
    assert reaction.order.state.is_settled


# Client cancel in each saga state --------------------------------------------------------------


def test_cancel_while_pending_just_cancels():
    reaction = react(placed(), cancel_msg(), NOW)
    assert names(reaction) == ["OrderCancelled"]
    assert reaction.commands == ()
    assert reaction.order.state.cancelled_by is CancelledBy.CLIENT


def test_a_reservation_arriving_after_a_pending_cancel_is_released_exactly():
    late_lines = (LineItem(P2, 1), LineItem(P1, 2))  # the product service's line order
    cancelled = follow(placed(), cancel_msg())
    reaction = react(cancelled, reserved_msg(lines=late_lines), NOW)
    assert names(reaction) == ["StockReserved", "StockReleased"]
    assert reaction.events[1].lines == late_lines  # type: ignore[attr-defined]
    assert reaction.commands == (ReleaseStock(
        order_id=ORDER, lines=late_lines,
        reason="stock reserved after the order was cancelled"),)
    assert reaction.order.status is S.CANCELLED
    assert reaction.order.state.is_settled


def test_cancel_while_stock_reserved_releases_the_stock():
    reaction = react(order_in(S.STOCK_RESERVED), cancel_msg(), NOW)
    assert names(reaction) == ["StockReleased", "OrderCancelled"]
    assert reaction.commands == (
        ReleaseStock(order_id=ORDER, lines=items(), reason="changed my mind"),)


def test_cancel_while_payment_authorized_releases_stock_and_voids_payment():
    reaction = react(order_in(S.PAYMENT_AUTHORIZED), cancel_msg(), NOW)
    assert names(reaction) == ["StockReleased", "PaymentVoided", "OrderCancelled"]
    assert reaction.commands == (
        ReleaseStock(order_id=ORDER, lines=items(), reason="changed my mind"),
        VoidPayment(order_id=ORDER, payment_id=PAY),
    )
    assert reaction.order.state.is_settled


@pytest.mark.parametrize("status", [S.CONFIRMED, S.REJECTED])
def test_cancel_after_the_end_is_refused(status: OrderStatus):
    order = order_in(status)
    with pytest.raises(CannotCancel):
        react(order, cancel_msg(), NOW)
    assert order.status is status


def test_cancelling_twice_is_a_no_op():
    assert_ignored(order_in(S.CANCELLED), cancel_msg())


def test_a_payment_answer_arriving_after_a_cancel():
    cancelled = follow(order_in(S.STOCK_RESERVED), cancel_msg())
    assert_ignored(cancelled, declined_msg())
    reaction = react(cancelled, authorized_msg(), NOW)
    assert names(reaction) == ["PaymentAuthorized", "PaymentVoided"]
    assert reaction.commands == (VoidPayment(order_id=ORDER, payment_id=PAY),)
    assert reaction.order.status is S.CANCELLED and reaction.order.state.is_settled


# Duplicates, late and foreign messages ---------------------------------------------------------


@pytest.mark.parametrize("status", [S.STOCK_RESERVED, S.PAYMENT_AUTHORIZED, S.CONFIRMED])
def test_a_redelivered_reservation_is_ignored(status: OrderStatus):
    assert_ignored(order_in(status), reserved_msg())


def test_a_redelivered_reservation_after_release_is_ignored():
    released = follow(order_in(S.STOCK_RESERVED), declined_msg())
    assert_ignored(released, reserved_msg())


@pytest.mark.parametrize("status", [S.STOCK_RESERVED, S.CONFIRMED, S.CANCELLED, S.REJECTED])
def test_a_redelivered_or_late_stock_rejection_is_ignored(status: OrderStatus):
    assert_ignored(order_in(status), rejected_msg())


@pytest.mark.parametrize("status", [S.PAYMENT_AUTHORIZED, S.CONFIRMED])
def test_a_redelivered_authorization_is_ignored(status: OrderStatus):
    assert_ignored(order_in(status), authorized_msg())


def test_a_redelivered_decline_is_ignored():
    assert_ignored(follow(order_in(S.STOCK_RESERVED), declined_msg()), declined_msg())


@pytest.mark.parametrize("status", [S.PENDING, S.PAYMENT_AUTHORIZED, S.CONFIRMED, S.REJECTED])
def test_a_decline_the_order_does_not_wait_for_is_ignored(status: OrderStatus):
    assert_ignored(order_in(status), declined_msg())


@pytest.mark.parametrize("status", [S.PENDING, S.CONFIRMED])
def test_an_authorization_the_order_cannot_use_is_voided_without_recording(status: OrderStatus):
    reaction = react(order_in(status), authorized_msg(payment_id="pay-stray"), NOW)
    assert reaction.events == ()
    assert reaction.commands == (VoidPayment(order_id=ORDER, payment_id="pay-stray"),)


@pytest.mark.parametrize("status", [S.STOCK_RESERVED, S.CONFIRMED, S.CANCELLED])
def test_a_redelivered_order_placed_is_ignored(status: OrderStatus):
    order = order_in(status)
    assert_ignored(order, order.events[0])


@pytest.mark.parametrize(
    "own",
    [
        ev.OrderConfirmed(order_id=ORDER, occurred_at=NOW),
        ev.StockReleased(order_id=ORDER, occurred_at=NOW, lines=items(), reason="x"),
        ev.PaymentVoided(order_id=ORDER, occurred_at=NOW, payment_id=PAY),
        ev.OrderCancelled(order_id=ORDER, occurred_at=NOW, reason="x", by=CancelledBy.CLIENT),
        ev.OrderRejected(order_id=ORDER, occurred_at=NOW, reason="x"),
    ],
    ids=lambda e: e.name,
)
@pytest.mark.parametrize("status", list(S))
def test_the_sagas_own_events_coming_back_are_ignored(own: ev.OrderEvent, status: OrderStatus):
    assert_ignored(order_in(status), own)


def test_a_message_for_another_order_is_a_bug():
    with pytest.raises(ValueError, match="given to order"):
        react(placed(), reserved_msg(order_id=OTHER_ORDER), NOW)


# Properties of every reaction ------------------------------------------------------------------


def test_react_never_changes_the_order_it_is_given():
    order = order_in(S.PAYMENT_AUTHORIZED)
    before = (order.state, order.events, order.pending_events)
    react(order, cancel_msg(), NOW)
    assert (order.state, order.events, order.pending_events) == before


def test_the_reaction_applied_to_the_stored_stream_is_the_reactions_order():
    order = order_in(S.STOCK_RESERVED)
    reaction = react(order, declined_msg(), NOW)
    assert reaction.expected_version == order.version == 2
    assert Order.from_events((*order.events, *reaction.events)).state == reaction.order.state
    assert reaction.order.pending_events == reaction.events


def test_compensation_commands_mirror_compensation_events():
    released = ev.StockReleased(order_id=ORDER, occurred_at=NOW,
                                lines=(LineItem(P2, 4),), reason="r")
    voided = ev.PaymentVoided(order_id=ORDER, occurred_at=NOW, payment_id="p")
    confirmed = ev.OrderConfirmed(order_id=ORDER, occurred_at=NOW)
    assert compensation_commands([confirmed, released, voided]) == (
        ReleaseStock(order_id=ORDER, lines=(LineItem(P2, 4),), reason="r"),
        VoidPayment(order_id=ORDER, payment_id="p"),
    )


def test_client_cancel_command_defaults():
    cancel = CancelOrder(order_id=ORDER)
    assert (cancel.by, cancel.reason) == (CancelledBy.CLIENT, "cancelled by the customer")


# Following up an order with no news ---------------------------------------------------------------


def test_a_pending_async_order_followed_up_asks_again_for_exactly_its_lines():
    order = placed()
    reaction = react(order, FollowUp(order_id=ORDER), NOW)
    assert names(reaction) == ["StockRequestedAgain"]
    assert reaction.events[0] == ev.StockRequestedAgain(order_id=ORDER, occurred_at=NOW, lines=items())
    assert reaction.commands == ()  # carried by the event, as OrderPlaced carries ReserveStock
    after = reaction.order.state
    assert after.status is S.PENDING and after.version == 2
    assert after.timestamps.stock_requested_again == NOW


def test_an_answer_after_a_follow_up_moves_the_order_on_as_before():
    asked_again = follow(placed(), FollowUp(order_id=ORDER))
    reaction = react(asked_again, reserved_msg(), NOW)
    assert names(reaction) == ["StockReserved"]
    assert reaction.commands == (
        AuthorizePayment(order_id=ORDER, customer_id=CUSTOMER, amount_cents=TOTAL),
    )


def test_a_sync_order_is_not_followed_up_over_kafka():
    sync = Order.place(order_id=ORDER, command=command(mode=ProcessingMode.SYNC),
                       unit_prices=PRICES, at=at(0))  # fmt: skip
    sync.collect_events()
    assert_ignored(sync, FollowUp(order_id=ORDER))
    with pytest.raises(IllegalTransition, match="sync order"):
        sync.copy().request_stock_again(NOW)


@pytest.mark.parametrize(
    "status", [S.STOCK_RESERVED, S.PAYMENT_AUTHORIZED, S.CONFIRMED, S.CANCELLED, S.REJECTED]
)
def test_an_order_with_its_stock_answer_is_not_asked_again(status: OrderStatus):
    order = order_in(status)
    assert_ignored(order, FollowUp(order_id=ORDER))
    with pytest.raises(IllegalTransition, match="known already"):
        order.copy().request_stock_again(NOW)
