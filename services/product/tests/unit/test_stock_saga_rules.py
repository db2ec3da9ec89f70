"""The stock saga run for real (its handler table, the reservation use cases and rules) over a
fake unit of work: stock in a dict, the answers it emits collected instead of written."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime
from typing import Any

from services.product.adapters import reservation_store
from services.product.domain.reservation import (
    COMMITTED,
    HELD,
    RELEASED,
    HeldLine,
    Line,
    Reservation,
)
from services.product.service_layer.saga import StockSaga
from services.product.service_layer.unit_of_work import UnitOfWork
from shopstream.contracts import orders

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class FakeConnection:
    def transaction(self) -> contextlib.AbstractAsyncContextManager[None]:
        return contextlib.nullcontext()  # type: ignore[return-value]


class FakeReservations:
    """``adapters/reservation_store.py`` over dicts (the savepoint is the caller's: a refused
    multi-line hold here takes nothing, as the real one ends up taking nothing)."""

    stock_changed = staticmethod(reservation_store.stock_changed)

    def __init__(self, stock: dict[str, int]) -> None:
        self.stock = stock
        self.held: dict[str, Reservation] = {}
        self.refused: dict[str, tuple[str, str | None]] = {}

    async def find(self, conn: Any, order_id: str) -> Reservation | None:
        return self.held.get(order_id)

    async def existing(self, conn: Any, order_id: str) -> tuple[Reservation | None, Any]:
        return self.held.get(order_id), self.refused.get(order_id)

    async def refusal(self, conn: Any, order_id: str) -> tuple[str, str | None] | None:
        return self.refused.get(order_id)

    async def take(self, conn: Any, lines: list[Line]) -> dict[str, Any]:
        if not all(self.stock.get(x.product_id, -1) >= x.quantity for x in lines):
            return {x.product_id: self._row(x.product_id) for x in lines[:0]}
        for x in lines:
            self.stock[x.product_id] -= x.quantity
        return {x.product_id: self._row(x.product_id) for x in lines}

    def _row(self, product_id: str) -> dict[str, Any]:
        return {"id": product_id, "stock": self.stock[product_id], "version": 2, "price_cents": 500}

    async def stock_of(self, conn: Any, product_id: str) -> int | None:
        return self.stock.get(product_id)

    async def refuse(self, conn: Any, order_id: str, product_id: str, reason: str) -> None:
        self.refused.setdefault(order_id, (reason, product_id))

    async def record_held(self, conn: Any, order_id: str, held: tuple[HeldLine, ...], changes: Any) -> None:
        self.held[order_id] = Reservation(order_id, HELD, held)

    async def release(self, conn: Any, order_id: str) -> Reservation | None:
        found = self.held.get(order_id)
        if found is None or found.status != HELD:
            return None if found is None else Reservation(order_id, found.status, ())
        for line in found.lines:
            self.stock[line.product_id] += line.quantity
        self.held[order_id] = Reservation(order_id, RELEASED, found.lines)
        return self.held[order_id]

    async def commit(self, conn: Any, order_id: str) -> Reservation | None:
        found = self.held.get(order_id)
        if found is not None and found.status == HELD:
            self.held[order_id] = Reservation(order_id, COMMITTED, found.lines)
        return self.held.get(order_id)


class FakeUnitOfWork(UnitOfWork):
    def __init__(self, store: FakeReservations) -> None:
        super().__init__(None, FakeConnection())  # type: ignore[arg-type]
        self.reservations = store
        self.published: list[tuple[str, str, dict[str, Any]]] = []

    async def __aexit__(self, kind: Any, exc: Any, tb: Any) -> None:
        if kind is None:
            self.published += [(m.topic, m.event.type, m.event.data) for m in self.emitted]
        self.emitted = []


PEN, INK = str(uuid.uuid4()), str(uuid.uuid4())


def _placed(order_id: uuid.UUID, *lines: tuple[str, int]) -> orders.OrderPlaced:
    return orders.OrderPlaced(
        order_id=order_id, occurred_at=NOW, customer_id=uuid.uuid4(), shipping_address={},
        mode="async", lines=[orders.OrderLine(product_id=uuid.UUID(p), quantity=q, unit_price_cents=500)
                             for p, q in lines],
    )  # fmt: skip


def _run(store: FakeReservations, *messages: object) -> list[tuple[str, str, dict[str, Any]]]:
    saga, published = StockSaga(lambda: NOW), []

    async def go() -> None:
        for message in messages:
            async with FakeUnitOfWork(store) as uow:
                await saga.handle(uow, message)
            published.extend(uow.published)

    asyncio.run(go())
    return published


def test_an_async_placement_holds_every_line_and_answers_reserved() -> None:
    store, order = FakeReservations({PEN: 5, INK: 2}), uuid.uuid4()
    answers = _run(store, _placed(order, (PEN, 2), (INK, 2)))
    assert [(t, k) for t, k, _ in answers] == [("stock-events", "StockReserved")]
    assert store.stock == {PEN: 3, INK: 0}
    assert store.held[str(order)].status == HELD


def test_a_placement_short_of_stock_holds_nothing_and_is_refused_again() -> None:
    store, order = FakeReservations({PEN: 5, INK: 1}), uuid.uuid4()
    answers = _run(store, _placed(order, (PEN, 2), (INK, 2)), _placed(order, (PEN, 2), (INK, 2)))
    assert [k for _, k, _ in answers] == ["StockRejected", "StockRejected"]
    assert {d["reason"] for _, _, d in answers} == {"out of stock"}
    assert store.stock == {PEN: 5, INK: 1}


def test_a_cancelled_order_gives_its_stock_back_once() -> None:
    store, order = FakeReservations({PEN: 5}), uuid.uuid4()
    cancelled = orders.OrderCancelled(order_id=order, occurred_at=NOW, reason="changed mind", by="client")
    answers = _run(store, _placed(order, (PEN, 3)), cancelled, cancelled)
    assert [k for _, k, _ in answers] == ["StockReserved", "ReservationReleased"]
    assert store.stock == {PEN: 5}


def test_a_confirmed_order_sells_what_it_held_and_answers_nothing() -> None:
    store, order = FakeReservations({PEN: 5}), uuid.uuid4()
    confirmed = orders.OrderConfirmed(order_id=order, occurred_at=NOW)
    answers = _run(store, _placed(order, (PEN, 1)), confirmed)
    assert [k for _, k, _ in answers] == ["StockReserved"]
    assert store.held[str(order)].status == COMMITTED and store.stock == {PEN: 4}


def _asked_again(placed: orders.OrderPlaced) -> orders.StockRequestedAgain:
    return orders.StockRequestedAgain(order_id=placed.order_id, occurred_at=NOW, lines=placed.lines)


def test_an_order_asking_again_gets_the_same_answer_and_holds_once() -> None:
    store, order = FakeReservations({PEN: 5, INK: 1}), uuid.uuid4()
    placed = _placed(order, (PEN, 2))
    answers = _run(store, placed, _asked_again(placed))
    assert [k for _, k, _ in answers] == ["StockReserved", "StockReserved"]
    assert answers[0][2]["lines"] == answers[1][2]["lines"]
    assert store.stock == {PEN: 3, INK: 1}
    refused = _placed(uuid.uuid4(), (INK, 2))
    again = _run(store, refused, _asked_again(refused))
    assert [k for _, k, _ in again] == ["StockRejected", "StockRejected"]


def test_an_order_whose_placement_was_lost_is_served_by_asking_again() -> None:
    store, order = FakeReservations({PEN: 5}), uuid.uuid4()
    answers = _run(store, _asked_again(_placed(order, (PEN, 4))))
    assert [k for _, k, _ in answers] == ["StockReserved"]
    assert store.stock == {PEN: 1} and store.held[str(order)].status == HELD
