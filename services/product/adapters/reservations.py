"""Reservations in PostgreSQL: stock is taken with one conditional UPDATE per product, so two
orders racing for the last unit cannot both get it. Every call runs inside the caller's transaction
and is idempotent per order."""

from __future__ import annotations

import uuid
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any

import msgspec

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


def _stock_changed(product: Any, delta: int, reason: str) -> outbox.Message:
    data = {
        "id": product["id"],
        "stock": product["stock"],
        "previous": int(product["stock"]) - delta,
        "delta": delta,
        "reason": reason,
        "version": product["version"],
    }
    event = new_event(model.STOCK_CHANGED, str(product["id"]), data, source=SOURCE)
    return outbox.Message(model.TOPIC, str(product["id"]), event, {"event_type": model.STOCK_CHANGED})


# Every line in one statement: the rows are locked in product-id order first (so two orders
# never deadlock), a line the stock cannot cover takes nothing (its row is not updated), and the
# caller undoes the others (a savepoint) when fewer rows came back than lines.
_TAKE = (
    "WITH locked AS MATERIALIZED (SELECT id FROM products WHERE id = ANY($1::uuid[])"
    " ORDER BY id FOR UPDATE)"
    " UPDATE products p SET stock = p.stock - w.quantity, version = p.version + 1,"
    " updated_at = clock_timestamp()"
    " FROM unnest($1::uuid[], $2::int[]) AS w(product_id, quantity), locked l"
    " WHERE p.id = w.product_id AND l.id = p.id AND p.stock >= w.quantity"
    " RETURNING p.id::text AS id, p.stock, p.version, p.price_cents"
)
# The held lines and their StockChanged events, one round trip.
_HELD = (
    "WITH held AS (INSERT INTO reservations (order_id, product_id, quantity, unit_price_cents, status)"
    " SELECT $1, p, q, c, $5 FROM unnest($2::uuid[], $3::int[], $4::bigint[]) AS l(p, q, c)),"
    f" published AS ({outbox.insert_sql(6)})"
    " SELECT pg_notify($12, '')"
)


def _canonical(product_id: str) -> str:
    try:
        return str(uuid.UUID(product_id))
    except ValueError:
        return product_id


async def reserve(conn: Connection, order_id: str, lines: list[Line]) -> Reservation:
    """Hold every line or none. Raises OutOfStock / UnknownProduct, and remembers the refusal."""
    row = await conn.fetchrow(
        "SELECT (SELECT json_agg(json_build_object('p', product_id, 'q', quantity,"
        "        'c', unit_price_cents, 's', status) ORDER BY product_id)::text"
        "        FROM reservations WHERE order_id = $1) AS held,"
        " (SELECT json_build_object('r', reason, 'p', product_id)::text"
        "  FROM reservation_refusals WHERE order_id = $1) AS refused",
        order_id,
    )
    assert row is not None
    if row["held"] is not None:
        held = msgspec.json.decode(row["held"])
        lines_held = tuple(HeldLine(h["p"], h["q"], h["c"]) for h in held)
        return Reservation(order_id, held[0]["s"], lines_held)
    if row["refused"] is not None:
        refused = msgspec.json.decode(row["refused"])
        if refused["r"] == "unknown product":
            raise UnknownProduct(refused["p"] or "")
        raise OutOfStock(refused["p"] or "", 0, 0)
    return await _hold(conn, order_id, lines)


async def hold(conn: Connection, order_id: str, lines: list[Line]) -> Reservation:
    """``reserve`` for a caller that has just found no reservation of the order."""
    refused = await refusal(conn, order_id)
    if refused is not None:
        reason, product_id = refused
        if reason == "unknown product":
            raise UnknownProduct(product_id or "")
        raise OutOfStock(product_id or "", 0, 0)
    return await _hold(conn, order_id, lines)


async def _hold(conn: Connection, order_id: str, lines: list[Line]) -> Reservation:
    ordered = check_lines(lines)
    # A savepoint undoes the lines already taken when another is refused; a single line has
    # taken nothing when it is refused, so it goes without (two round trips fewer).
    undo: AbstractAsyncContextManager[Any] = (
        conn.transaction() if len(ordered) > 1 else nullcontext()
    )
    try:
        async with undo:
            rows = await conn.fetch(
                _TAKE, [line.product_id for line in ordered], [line.quantity for line in ordered]
            )
            # by the product id as the request spelt it (the database gives the canonical form)
            by_id = {r["id"]: r for r in rows}
            taken = {
                line.product_id: by_id[c]
                for line in ordered
                if (c := _canonical(line.product_id)) in by_id
            }
            if len(taken) < len(ordered):
                short = next(line for line in ordered if line.product_id not in taken)
                available = await conn.fetchval(
                    "SELECT stock FROM products WHERE id = $1", short.product_id
                )
                if available is None:
                    raise UnknownProduct(short.product_id)
                raise OutOfStock(short.product_id, short.quantity, available)
    except UnknownProduct as exc:
        await _refuse(conn, order_id, exc.product_id, "unknown product")
        raise
    except OutOfStock as exc:
        await _refuse(conn, order_id, exc.product_id, "out of stock")
        raise
    held = tuple(
        HeldLine(line.product_id, line.quantity, taken[line.product_id]["price_cents"])
        for line in ordered
    )
    reason = f"reserved for order {order_id}"
    changes = [_stock_changed(taken[line.product_id], -line.quantity, reason) for line in ordered]
    await conn.execute(
        _HELD, order_id, [h.product_id for h in held], [h.quantity for h in held],
        [h.unit_price_cents for h in held], HELD, *outbox.insert_args(changes),
        outbox.NOTIFY_CHANNEL,
    )  # fmt: skip
    return Reservation(order_id, HELD, held)


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
            change = _stock_changed(product, r["quantity"], f"released from order {order_id}")
            await outbox.add_all(conn, [change])
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
