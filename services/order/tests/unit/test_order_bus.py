"""The real message bus with fakes for its adapters: an in-memory unit of work and command
handlers that record what they were asked."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from types import TracebackType
from uuid import UUID

from services.order.domain import events as ev
from services.order.domain.commands import (
    AuthorizePayment,
    CancelOrder,
    Command,
    ReleaseStock,
    ReserveStock,
    VoidPayment,
)
from services.order.domain.order import Order
from services.order.domain.state import OrderStatus
from services.order.domain.values import ProcessingMode
from services.order.service_layer.messagebus import MessageBus
from services.order.tests.unit.order_builders import ORDER, OTHER_ORDER, PRICES, T0, at, command


class FakeUnitOfWork:
    """Orders in a dict; a transaction's writes become visible only at commit."""

    def __init__(self, store: dict[UUID, Order], commits: list[int]) -> None:
        self.store = store
        self.commits = commits
        self.working: dict[UUID, Order] = {}

    async def __aenter__(self) -> FakeUnitOfWork:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:  # fmt: skip
        if kind is None:
            self.store.update(self.working)
            self.commits.append(len(self.working))

    async def load_all(self, order_ids: Iterable[UUID]) -> None:
        for order_id in order_ids:
            await self.get(order_id)

    async def get(self, order_id: UUID) -> Order | None:
        if order_id not in self.working and order_id in self.store:
            self.working[order_id] = Order.from_events(self.store[order_id].events)
        return self.working.get(order_id)

    async def record(self, order: Order) -> None:
        order.collect_events()
        self.working[order.id] = order


class FakeActions:
    """Command handlers: payments approved after a shared barrier (so they must overlap)."""

    def __init__(self, payments_at_once: int = 1) -> None:
        self.done: list[Command] = []
        self.barrier = asyncio.Barrier(payments_at_once)

    async def authorize(self, command: Command) -> ev.OrderEvent:
        assert isinstance(command, AuthorizePayment)
        self.done.append(command)
        await asyncio.wait_for(self.barrier.wait(), 2)
        return ev.PaymentAuthorized(order_id=command.order_id, occurred_at=at(2),
                                    payment_id=f"pay-{command.order_id}",
                                    amount_cents=command.amount_cents)  # fmt: skip

    async def record(self, command: Command) -> None:
        self.done.append(command)

    async def reserve(self, command: Command) -> ev.OrderEvent:
        assert isinstance(command, ReserveStock)
        self.done.append(command)
        return ev.StockReserved(order_id=command.order_id, occurred_at=at(1), lines=command.lines)

    def table(self) -> dict[ProcessingMode, dict[type[Command], object]]:
        return {
            ProcessingMode.SYNC: {ReserveStock: self.reserve, ReleaseStock: self.record,
                                  AuthorizePayment: self.authorize, VoidPayment: self.record},
            ProcessingMode.ASYNC: {ReserveStock: self.record, ReleaseStock: self.record,
                                   AuthorizePayment: self.authorize, VoidPayment: self.record},
        }  # fmt: skip


def world(*orders: Order, payments_at_once: int = 1) -> tuple[MessageBus, dict[UUID, Order], list[int], FakeActions]:
    store = {o.id: o for o in orders}
    commits: list[int] = []
    actions = FakeActions(payments_at_once)
    bus = MessageBus(lambda: FakeUnitOfWork(store, commits), actions.table(), lambda: at(3))  # type: ignore[arg-type, return-value]
    return bus, store, commits, actions


def placed(order_id: UUID, mode: ProcessingMode) -> Order:
    order = Order.place(order_id=order_id, command=command(mode=mode), unit_prices=PRICES, at=T0)
    order.collect_events()
    return order


def reserved(order: Order) -> ev.StockReserved:
    return ev.StockReserved(order_id=order.id, occurred_at=at(1), lines=order.state.items)


async def test_a_batch_of_async_stock_answers_is_decided_at_once_and_paid_concurrently() -> None:
    first, second = placed(ORDER, ProcessingMode.ASYNC), placed(OTHER_ORDER, ProcessingMode.ASYNC)
    bus, store, commits, actions = world(first, second, payments_at_once=2)
    states = await bus.handle_all([reserved(first), reserved(second)])
    assert {s.status for s in states.values()} == {OrderStatus.CONFIRMED}
    assert commits == [2, 2], "one transaction for the answers, one for the payments' outcomes"
    assert sorted(type(c).__name__ for c in actions.done) == ["AuthorizePayment"] * 2
    assert [type(e).__name__ for e in store[ORDER].events] == [
        "OrderPlaced", "StockReserved", "PaymentAuthorized", "OrderConfirmed"]


async def test_a_redelivered_answer_resumes_the_payment_the_order_still_waits_for() -> None:
    order = placed(ORDER, ProcessingMode.ASYNC)
    bus, store, _, actions = world(order)
    await bus.decide_all([reserved(order)])  # decided and committed, then the process died
    assert store[ORDER].status is OrderStatus.STOCK_RESERVED and not actions.done
    states = await bus.handle_all([reserved(order)], resume=True)
    assert states[ORDER].status is OrderStatus.CONFIRMED
    again = await bus.handle_all([reserved(order)], resume=True)
    assert again[ORDER].status is OrderStatus.CONFIRMED and len(actions.done) == 1


async def test_sync_and_async_act_on_the_same_decision_through_their_own_table() -> None:
    sync, async_ = placed(ORDER, ProcessingMode.SYNC), placed(OTHER_ORDER, ProcessingMode.ASYNC)
    bus, _, _, actions = world(sync, async_)
    states = await bus.handle_all([sync.events[0], async_.events[0]])
    assert states[ORDER].status is OrderStatus.CONFIRMED, "sync: reserved over HTTP, paid"
    assert states[OTHER_ORDER].status is OrderStatus.PENDING, "async: the event carries it"
    assert [type(c).__name__ for c in actions.done if c.order_id == OTHER_ORDER] == ["ReserveStock"]


async def test_a_cancel_releases_through_the_mode_of_the_order() -> None:
    order = placed(ORDER, ProcessingMode.ASYNC)
    bus, _, _, actions = world(order)
    await bus.decide_all([reserved(order)])
    states = await bus.handle_all([CancelOrder(order_id=ORDER, reason="changed my mind")])
    assert states[ORDER].status is OrderStatus.CANCELLED
    assert [type(c).__name__ for c in actions.done] == ["ReleaseStock"]
