"""Reservation use cases: hold an order's lines (all or none), give them back, sell them.
Idempotent per order: a second call answers what the first one did. Every call runs in the
caller's unit of work (the saga consumer's batch, or the HTTP route's); the statements are in
``adapters/reservation_store.py`` (``uow.reservations``), the rules (lines, statuses, refusals) in
``domain/reservation.py``."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any

from services.product.domain.reservation import (
    HELD,
    HeldLine,
    Line,
    OutOfStock,
    Reservation,
    UnknownProduct,
    check_lines,
    refusal_error,
)
from services.product.service_layer.unit_of_work import UnitOfWork


async def find(uow: UnitOfWork, order_id: str) -> Reservation | None:
    return await uow.reservations.find(uow.conn, order_id)


async def release(uow: UnitOfWork, order_id: str) -> Reservation | None:
    """Give back exactly what the order holds (nothing twice)."""
    return await uow.reservations.release(uow.conn, order_id)


async def commit(uow: UnitOfWork, order_id: str) -> Reservation | None:
    """The order is confirmed: the held stock is sold."""
    return await uow.reservations.commit(uow.conn, order_id)


async def reserve(uow: UnitOfWork, order_id: str, lines: list[Line]) -> Reservation:
    """Hold every line or none. Raises OutOfStock / UnknownProduct, and remembers the refusal."""
    held, refused = await uow.reservations.existing(uow.conn, order_id)
    if held is not None:
        return held
    if refused is not None:
        raise refusal_error(*refused)
    return await _hold(uow, order_id, lines)


async def hold(uow: UnitOfWork, order_id: str, lines: list[Line]) -> Reservation:
    """``reserve`` for a caller that has just found no reservation of the order."""
    refused = await uow.reservations.refusal(uow.conn, order_id)
    if refused is not None:
        raise refusal_error(*refused)
    return await _hold(uow, order_id, lines)


async def _hold(uow: UnitOfWork, order_id: str, lines: list[Line]) -> Reservation:
    store, conn = uow.reservations, uow.conn
    ordered = check_lines(lines)
    # A savepoint undoes the lines already taken when another is refused; a single line has
    # taken nothing when it is refused, so it goes without (two round trips fewer).
    undo: AbstractAsyncContextManager[Any] = (
        conn.transaction() if len(ordered) > 1 else nullcontext()
    )
    try:
        async with undo:
            taken = await store.take(conn, ordered)
            if len(taken) < len(ordered):
                short = next(line for line in ordered if line.product_id not in taken)
                available = await store.stock_of(conn, short.product_id)
                if available is None:
                    raise UnknownProduct(short.product_id)
                raise OutOfStock(short.product_id, short.quantity, available)
    except (UnknownProduct, OutOfStock) as exc:
        reason = "unknown product" if isinstance(exc, UnknownProduct) else "out of stock"
        await store.refuse(conn, order_id, exc.product_id, reason)
        raise
    held = tuple(
        HeldLine(line.product_id, line.quantity, taken[line.product_id]["price_cents"])
        for line in ordered
    )
    reason = f"reserved for order {order_id}"
    changes = [store.stock_changed(taken[line.product_id], -line.quantity, reason) for line in ordered]
    await store.record_held(conn, order_id, held, changes)
    return Reservation(order_id, HELD, held)
