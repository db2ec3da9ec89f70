"""The event-sourced Order: transitions, illegal transitions, compensation, rebuild from events."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from services.order.domain import events as ev
from services.order.domain.errors import (
    AlreadyRecorded,
    CannotCancel,
    IllegalTransition,
    InvalidOrder,
)
from services.order.domain.order import Order
from services.order.domain.state import OrderStatus, Outcome, StatusChange, evolve, fold
from services.order.domain.values import CancelledBy, LineItem, ProcessingMode
from services.order.tests.unit.order_builders import (
    CUSTOMER,
    ORDER,
    OTHER_ORDER,
    P1,
    P2,
    P3,
    PAY,
    PRICES,
    T0,
    TOTAL,
    at,
    command,
    items,
    order_in,
    placed,
)

S = OrderStatus


def happy_path() -> Order:
    order = placed()
    order.record_stock_reserved(items(), at(1))
    order.record_payment_authorized(PAY, TOTAL, at(2))
    order.confirm(at(3))
    return order


def test_placing_records_order_placed_with_priced_lines():
    order = Order.place(order_id=ORDER, command=command(idempotency_key="k-1"),
                        unit_prices=PRICES, at=T0)

    (placed_event,) = order.pending_events
    assert isinstance(placed_event, ev.OrderPlaced)
    assert placed_event.customer_id == CUSTOMER
    assert [line.unit_price_cents for line in placed_event.lines] == [1250, 399]
    assert placed_event.idempotency_key == "k-1"
    assert order.status is S.PENDING
    assert order.version == 1
    assert order.committed_version == 0
    assert order.state.total_cents == TOTAL == placed_event.total_cents
    assert order.state.timestamps.accepted == T0
    assert order.state.history == (StatusChange(S.PENDING, T0),)


def test_collect_events_hands_out_pending_events_once():
    order = Order.place(order_id=ORDER, command=command(), unit_prices=PRICES, at=T0)
    assert len(order.collect_events()) == 1
    assert order.collect_events() == ()
    assert order.committed_version == order.version == 1
    order.record_stock_reserved(items(), at(1))
    assert order.committed_version == 1
    assert [e.name for e in order.pending_events] == ["StockReserved"]


def test_placing_needs_a_valid_command_known_products_and_an_aware_time():
    with pytest.raises(InvalidOrder) as bad:
        Order.place(order_id=ORDER, command=command(((P1, 0),)), unit_prices=PRICES, at=T0)
    assert [e.field for e in bad.value.errors] == ["lines[0].quantity"]
    with pytest.raises(InvalidOrder) as unknown:
        Order.place(order_id=ORDER, command=command(((P3, 1),)), unit_prices={P1: 1}, at=T0)
    assert [e.field for e in unknown.value.errors] == ["lines[0].product_id"]
    with pytest.raises(ValueError, match="timezone"):
        Order.place(order_id=ORDER, command=command(), unit_prices=PRICES,
                    at=datetime(2026, 3, 1, 12))


def test_happy_path_goes_pending_reserved_authorized_confirmed_with_timestamps():
    order = happy_path()

    assert order.status is S.CONFIRMED
    assert order.version == 4
    assert [c.status for c in order.state.history] == [
        S.PENDING, S.STOCK_RESERVED, S.PAYMENT_AUTHORIZED, S.CONFIRMED
    ]
    assert [c.at for c in order.state.history] == [T0, at(1), at(2), at(3)]
    assert order.state.timestamps.as_dict() == {
        "accepted": T0, "stock_reserved": at(1), "payment_authorized": at(2), "confirmed": at(3)
    }
    assert order.state.outcome is Outcome.CONFIRMED
    assert order.state.is_settled
    assert order.state.held == items()  # a confirmed order keeps its stock: it is sold


def test_rebuilding_from_events_gives_an_equal_order_at_every_step():
    order = placed()
    steps: list[Callable[[], Any]] = [
        lambda: order.record_stock_reserved(items(), at(1)),
        lambda: order.record_payment_authorized(PAY, TOTAL, at(2)),
        lambda: order.cancel("too slow", CancelledBy.CLIENT, at(3)),
    ]
    for step in steps:
        step()
        rebuilt = Order.from_events(order.events)
        assert rebuilt == order
        assert rebuilt.state == order.state
        assert rebuilt.version == len(order.events)
        assert rebuilt.pending_events == ()
    assert fold(order.events) == order.state


def test_evolve_is_pure_and_never_changes_the_state_it_is_given():
    order = placed()
    before = order.state
    reserved = ev.StockReserved(order_id=ORDER, occurred_at=at(1), lines=items())
    after = evolve(before, reserved)
    assert before.status is S.PENDING and before.version == 1
    assert after.status is S.STOCK_RESERVED and after.version == 2
    assert evolve(before, reserved) == after


def test_a_stream_must_start_with_order_placed_and_belong_to_one_order():
    first = placed().events[0]
    reserved = ev.StockReserved(order_id=ORDER, occurred_at=at(1), lines=items())
    with pytest.raises(ValueError, match="at least"):
        Order.from_events([])
    with pytest.raises(ValueError, match="must start with OrderPlaced"):
        Order.from_events([reserved])
    with pytest.raises(ValueError, match="has started"):
        Order.from_events([first, first])
    with pytest.raises(ValueError, match="applied to order"):
        Order.from_events([first, dataclasses.replace(reserved, order_id=OTHER_ORDER)])


def test_events_are_immutable():
    event = placed().events[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.order_id = OTHER_ORDER  # type: ignore[misc]


def test_every_event_class_is_registered_by_name():
    assert set(ev.EVENT_TYPES) == {cls.__name__ for cls in ev.OrderEvent.__subclasses__()}
    assert ev.EVENT_TYPES["StockReserved"] is ev.StockReserved


# The transition table: every command in every status ------------------------------------------

ACTIONS: dict[str, Callable[[Order], Any]] = {
    "reserve": lambda o: o.record_stock_reserved(items(), at(10)),
    "stock_rejected": lambda o: o.record_stock_rejected("none left", P1, at(10)),
    "authorize": lambda o: o.record_payment_authorized("pay-new", TOTAL, at(10)),
    "decline": lambda o: o.record_payment_declined("card expired", at(10)),
    "confirm": lambda o: o.confirm(at(10)),
    "release": lambda o: o.release_stock("why not", at(10)),
    "void": lambda o: o.void_payment(at(10)),
    "cancel": lambda o: o.cancel("changed my mind", CancelledBy.CLIENT, at(10)),
    "reject": lambda o: o.reject("fraud suspected", at(10)),
}
OK, ILLEGAL, DUPLICATE, REFUSED = "ok", IllegalTransition, AlreadyRecorded, CannotCancel
TABLE: dict[OrderStatus, dict[str, Any]] = {
    S.PENDING: dict(reserve=OK, stock_rejected=OK, authorize=ILLEGAL, decline=ILLEGAL,
                    confirm=ILLEGAL, release=ILLEGAL, void=ILLEGAL, cancel=OK, reject=OK),
    S.STOCK_RESERVED: dict(reserve=DUPLICATE, stock_rejected=ILLEGAL, authorize=OK, decline=OK,
                           confirm=ILLEGAL, release=OK, void=ILLEGAL, cancel=OK, reject=OK),
    S.PAYMENT_AUTHORIZED: dict(reserve=DUPLICATE, stock_rejected=ILLEGAL, authorize=ILLEGAL,
                               decline=ILLEGAL, confirm=OK, release=OK, void=OK, cancel=OK,
                               reject=OK),
    S.CONFIRMED: dict(reserve=DUPLICATE, stock_rejected=ILLEGAL, authorize=ILLEGAL,
                      decline=ILLEGAL, confirm=DUPLICATE, release=ILLEGAL, void=ILLEGAL,
                      cancel=REFUSED, reject=ILLEGAL),
    # Late facts on a failed order are recorded (so they can be compensated), nothing else.
    S.CANCELLED: dict(reserve=OK, stock_rejected=ILLEGAL, authorize=OK, decline=ILLEGAL,
                      confirm=ILLEGAL, release=ILLEGAL, void=ILLEGAL, cancel=DUPLICATE,
                      reject=ILLEGAL),
    S.REJECTED: dict(reserve=OK, stock_rejected=DUPLICATE, authorize=OK, decline=ILLEGAL,
                     confirm=ILLEGAL, release=ILLEGAL, void=ILLEGAL, cancel=REFUSED,
                     reject=DUPLICATE),
}
CASES = [(status, action, TABLE[status][action]) for status in S for action in ACTIONS]


def test_the_table_covers_every_status_and_action():
    assert set(TABLE) == set(S)
    assert all(set(row) == set(ACTIONS) for row in TABLE.values())


@pytest.mark.parametrize(("status", "action", "expected"), CASES,
                         ids=[f"{s.value}-{a}" for s, a, _ in CASES])
def test_transition_table(status: OrderStatus, action: str, expected: Any):
    order = order_in(status)
    before_state, before_events = order.state, order.events
    if expected == OK:
        ACTIONS[action](order)
        assert order.version > before_state.version
        assert Order.from_events(order.events) == order
        if status.is_terminal:
            assert order.status is status  # terminal stays terminal
    else:
        with pytest.raises(expected) as caught:
            ACTIONS[action](order)
        assert type(caught.value) is expected
        assert caught.value.order_id == ORDER
        assert (order.state, order.events) == (before_state, before_events)


def test_cancel_compensates_exactly_what_is_held_before_cancelling():
    order = order_in(S.PAYMENT_AUTHORIZED)
    recorded = order.cancel("changed my mind", CancelledBy.CLIENT, at(5))

    assert [type(e) for e in recorded] == [ev.StockReleased, ev.PaymentVoided, ev.OrderCancelled]
    released, voided, cancelled = recorded
    assert isinstance(released, ev.StockReleased) and released.lines == items()
    assert isinstance(voided, ev.PaymentVoided) and voided.payment_id == PAY
    assert isinstance(cancelled, ev.OrderCancelled) and cancelled.by is CancelledBy.CLIENT
    assert order.state.held == ()
    assert not order.state.payment_outstanding
    assert order.state.is_settled
    assert order.state.reason == "changed my mind"
    assert order.state.outcome is Outcome.CANCELLED
    assert order.state.history[-1] == StatusChange(S.CANCELLED, at(5), "changed my mind")


def test_cancel_while_pending_has_nothing_to_compensate():
    recorded = order_in(S.PENDING).cancel("oops", CancelledBy.CLIENT, at(5))
    assert [type(e) for e in recorded] == [ev.OrderCancelled]


def test_reject_compensates_too():
    order = order_in(S.STOCK_RESERVED)
    recorded = order.reject("fraud suspected", at(5))
    assert [type(e) for e in recorded] == [ev.StockReleased, ev.OrderRejected]
    assert order.state.is_settled
    assert order.state.outcome is Outcome.REJECTED
    assert order.state.timestamps.rejected == at(5)


def test_a_late_reservation_on_a_cancelled_order_is_held_until_released():
    order = order_in(S.CANCELLED)
    order.record_stock_reserved(items(), at(5))
    assert order.status is S.CANCELLED
    assert order.state.held == items()
    assert not order.state.is_settled
    released = order.release_stock("late", at(6))
    assert released.lines == items()
    assert order.state.is_settled


def test_release_gives_back_exactly_the_held_lines_once():
    order = order_in(S.STOCK_RESERVED)
    assert order.release_stock("test", at(5)).lines == items()
    with pytest.raises(IllegalTransition, match="no stock is held"):
        order.release_stock("again", at(6))


def test_confirm_needs_the_full_amount_and_the_full_reservation():
    short_pay = order_in(S.STOCK_RESERVED)
    short_pay.record_payment_authorized(PAY, TOTAL - 1, at(3))
    with pytest.raises(IllegalTransition, match="authorized 2898 != total 2899"):
        short_pay.confirm(at(4))

    partial = placed()
    partial.record_stock_reserved((LineItem(P1, 2),), at(1))
    partial.record_payment_authorized(PAY, TOTAL, at(2))
    with pytest.raises(IllegalTransition, match="reserved stock does not match"):
        partial.confirm(at(3))


def test_after_a_decline_only_compensation_and_an_end_may_follow():
    order = order_in(S.STOCK_RESERVED)
    order.record_payment_declined("card expired", at(3))
    assert order.state.compensating
    with pytest.raises(IllegalTransition):
        order.record_payment_authorized(PAY, TOTAL, at(4))
    order.cancel("payment declined: card expired", CancelledBy.SAGA, at(4))
    assert order.state.outcome is Outcome.PAYMENT_DECLINED
    assert order.state.cancelled_by is CancelledBy.SAGA


def test_stock_rejection_keeps_reason_and_product():
    order = order_in(S.PENDING)
    order.record_stock_rejected("insufficient stock", P2, at(1))
    order.reject("stock rejected", at(1))
    assert (order.state.stock_rejected_reason, order.state.stock_rejected_product) == (
        "insufficient stock", P2)
    assert order.state.outcome is Outcome.STOCK_REJECTED
    assert order.state.timestamps.stock_rejected == at(1)


@pytest.mark.parametrize(
    "lines",
    [(), (LineItem(P1, 1), LineItem(P1, 1)), (LineItem(P1, 0),), (LineItem(P1, -2),)],
)
def test_malformed_reservations_are_refused(lines: tuple[LineItem, ...]):
    order = order_in(S.PENDING)
    with pytest.raises(ValueError):
        order.record_stock_reserved(lines, at(1))
    assert order.version == 1


def test_reasons_must_not_be_empty_and_times_must_be_aware():
    order = order_in(S.STOCK_RESERVED)
    with pytest.raises(ValueError, match="reason"):
        order.cancel("  ", CancelledBy.CLIENT, at(3))
    with pytest.raises(ValueError, match="timezone"):
        order.cancel("naive", CancelledBy.CLIENT, datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="timezone"):
        order.record_payment_authorized(PAY, TOTAL, datetime(2026, 1, 1))
    assert order.version == 2 and order.status is S.STOCK_RESERVED


def test_copy_is_independent_of_the_original():
    order = order_in(S.PENDING)
    twin = order.copy()
    twin.record_stock_reserved(items(), at(1))
    assert order.status is S.PENDING and order.version == 1
    assert twin.status is S.STOCK_RESERVED


def test_sync_mode_is_recorded_on_the_order():
    order = Order.place(order_id=ORDER, command=command(mode=ProcessingMode.SYNC),
                        unit_prices=PRICES, at=T0)
    assert order.state.mode is ProcessingMode.SYNC
    assert Order.from_events(order.events).state.mode is ProcessingMode.SYNC


def test_orders_compare_by_state_and_events_and_are_not_hashable():
    assert placed() == placed()
    assert placed() != order_in(S.STOCK_RESERVED)
    assert placed() != "order"
    with pytest.raises(TypeError):
        hash(placed())


def test_held_stock_counts_quantities_per_product():
    order = placed(lines=((P1, 2), (P2, 3)))
    order.record_stock_reserved((LineItem(P2, 3), LineItem(P1, 2)), at(1))
    assert order.state.held == (LineItem(P2, 3), LineItem(P1, 2))
