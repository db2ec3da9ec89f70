"""Reservations in PostgreSQL: stock is taken with one conditional UPDATE per product, so two
orders racing for the last unit cannot both get it. Every call runs inside the caller's transaction
and is idempotent per order."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any

from services.product.domain import model
from services.product.domain.reservation import (
    COMMITTED,
    HELD,
    RELEASED,
    HeldLine,
    Line,
    OutOfStock,
    Reservation,
    UnknownProduct,
    check_lines,
)
from shopstream import outbox
from shopstream.db import Connection
from shopstream.events import new_event

SOURCE = "product-service"


async def find(conn: Connection, order_id: str) -> Reservation | None:
    rows = await conn.fetch(
        "SELECT product_id, quantity, unit_price_cents, status FROM reservations"
        " WHERE order_id = $1 ORDER BY product_id",
        order_id,
    )
    if not rows:
        return None
    lines = tuple(
        HeldLine(str(r["product_id"]), r["quantity"], r["unit_price_cents"]) for r in rows
    )
    return Reservation(order_id, rows[0]["status"], lines)


async def refusal(conn: Connection, order_id: str) -> tuple[str, str | None] | None:
    row = await conn.fetchrow(
        "SELECT reason, product_id FROM reservation_refusals WHERE order_id = $1", order_id
    )
    if row is None:
        return None
    return row["reason"], (str(row["product_id"]) if row["product_id"] else None)


async def _stock_changed(
    conn: Connection, product: dict[str, int | str], delta: int, reason: str
) -> None:
    data = {
        "id": product["id"],
        "stock": product["stock"],
        "previous": int(product["stock"]) - delta,
        "delta": delta,
        "reason": reason,
        "version": product["version"],
    }
    event = new_event(model.STOCK_CHANGED, str(product["id"]), data, source=SOURCE)
    await outbox.add(
        conn, model.TOPIC, str(product["id"]), event, {"event_type": model.STOCK_CHANGED}
    )


async def reserve(conn: Connection, order_id: str, lines: list[Line]) -> Reservation:
    """Hold every line or none. Raises OutOfStock / UnknownProduct, and remembers the refusal."""
    existing = await find(conn, order_id)
    if existing is not None:
        return existing
    return await hold(conn, order_id, lines)


async def hold(conn: Connection, order_id: str, lines: list[Line]) -> Reservation:
    """``reserve`` for a caller that has just found no reservation of the order."""
    refused = await refusal(conn, order_id)
    if refused is not None:
        reason, product_id = refused
        if reason == "unknown product":
            raise UnknownProduct(product_id or "")
        raise OutOfStock(product_id or "", 0, 0)
    ordered = check_lines(lines)
    held: list[HeldLine] = []
    # A savepoint undoes the lines already taken when a later one is refused; a single line has
    # taken nothing when it is refused, so it goes without (two round trips fewer).
    undo: AbstractAsyncContextManager[Any] = (
        conn.transaction() if len(ordered) > 1 else nullcontext()
    )
    try:
        async with undo:
            for line in ordered:
                row = await conn.fetchrow(
                    "UPDATE products SET stock = stock - $2, version = version + 1,"
                    " updated_at = clock_timestamp() WHERE id = $1 AND stock >= $2"
                    " RETURNING id::text, stock, version, price_cents",
                    line.product_id,
                    line.quantity,
                )
                if row is None:
                    available = await conn.fetchval(
                        "SELECT stock FROM products WHERE id = $1", line.product_id
                    )
                    if available is None:
                        raise UnknownProduct(line.product_id)
                    raise OutOfStock(line.product_id, line.quantity, available)
                held.append(HeldLine(line.product_id, line.quantity, row["price_cents"]))
                await conn.execute(
                    "INSERT INTO reservations (order_id, product_id, quantity, unit_price_cents, status)"
                    " VALUES ($1, $2, $3, $4, $5)",
                    order_id,
                    line.product_id,
                    line.quantity,
                    row["price_cents"],
                    HELD,
                )
                await _stock_changed(
                    conn, dict(row), -line.quantity, f"reserved for order {order_id}"
                )
    except UnknownProduct as exc:
        await _refuse(conn, order_id, exc.product_id, "unknown product")
        raise
    except OutOfStock as exc:
        await _refuse(conn, order_id, exc.product_id, "out of stock")
        raise
    return Reservation(order_id, HELD, tuple(held))


async def _refuse(conn: Connection, order_id: str, product_id: str, reason: str) -> None:
    await conn.execute(
        "INSERT INTO reservation_refusals (order_id, product_id, reason) VALUES ($1, $2, $3)"
        " ON CONFLICT DO NOTHING",
        order_id,
        product_id or None,
        reason,
    )


async def release(conn: Connection, order_id: str) -> Reservation | None:
    """Give back exactly what is held for the order. Returns what was released now (no lines if
    it was already released or committed), or None when nothing was ever reserved."""
    rows = await conn.fetch(
        "UPDATE reservations SET status = $2, updated_at = clock_timestamp()"
        " WHERE order_id = $1 AND status = $3 RETURNING product_id, quantity, unit_price_cents",
        order_id,
        RELEASED,
        HELD,
    )
    if not rows:
        existing = await find(conn, order_id)
        return None if existing is None else Reservation(order_id, existing.status, ())
    released = []
    for r in sorted(rows, key=lambda r: str(r["product_id"])):
        product = await conn.fetchrow(
            "UPDATE products SET stock = stock + $2, version = version + 1, updated_at = clock_timestamp()"
            " WHERE id = $1 RETURNING id::text, stock, version",
            r["product_id"],
            r["quantity"],
        )
        if product is not None:  # a product deleted meanwhile has no stock to return to
            await _stock_changed(
                conn, dict(product), r["quantity"], f"released from order {order_id}"
            )
        released.append(HeldLine(str(r["product_id"]), r["quantity"], r["unit_price_cents"]))
    return Reservation(order_id, RELEASED, tuple(released))


async def commit(conn: Connection, order_id: str) -> Reservation | None:
    """The order is confirmed: the held stock is sold. Idempotent. One statement when the stock
    was held, so it needs no transaction of its own."""
    rows = await conn.fetch(
        "UPDATE reservations SET status = $2, updated_at = clock_timestamp()"
        " WHERE order_id = $1 AND status = $3 RETURNING product_id, quantity, unit_price_cents",
        order_id,
        COMMITTED,
        HELD,
    )
    if not rows:  # committed before, released, or never reserved
        return await find(conn, order_id)
    lines = sorted(
        (HeldLine(str(r["product_id"]), r["quantity"], r["unit_price_cents"]) for r in rows),
        key=lambda line: line.product_id,
    )
    return Reservation(order_id, COMMITTED, tuple(lines))
