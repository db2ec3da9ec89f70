"""Reservations in PostgreSQL, the statements only (``service_layer/reservations.py`` decides):
stock is taken by conditional UPDATEs, so two orders racing for the last unit cannot both get it.
Every call runs inside the caller's transaction."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from services.product.domain import model
from services.product.domain.reservation import (
    COMMITTED,
    HELD,
    RELEASED,
    HeldLine,
    Line,
    Reservation,
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


def stock_changed(product: Any, delta: int, reason: str) -> outbox.Message:
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


async def existing(conn: Connection, order_id: str) -> tuple[Reservation | None, tuple[str, str | None] | None]:
    """The order's reservation and its refusal (at most one of the two), in one round trip."""
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
        lines = tuple(HeldLine(h["p"], h["q"], h["c"]) for h in held)
        return Reservation(order_id, held[0]["s"], lines), None
    if row["refused"] is not None:
        refused = msgspec.json.decode(row["refused"])
        return None, (refused["r"], refused["p"])
    return None, None


async def take(conn: Connection, lines: list[Line]) -> dict[str, Any]:
    """Take every line's quantity from stock where the stock covers it: the rows taken (id, stock,
    version, price_cents), by the product id as the line spells it. A line missing from the
    answer took nothing."""
    rows = await conn.fetch(
        _TAKE, [line.product_id for line in lines], [line.quantity for line in lines]
    )
    by_id = {r["id"]: r for r in rows}
    return {
        line.product_id: by_id[c] for line in lines if (c := _canonical(line.product_id)) in by_id
    }


async def stock_of(conn: Connection, product_id: str) -> int | None:
    value = await conn.fetchval("SELECT stock FROM products WHERE id = $1", product_id)
    return None if value is None else int(value)


async def record_held(
    conn: Connection, order_id: str, held: tuple[HeldLine, ...], changes: list[outbox.Message]
) -> None:
    """The held lines and their StockChanged events, one round trip."""
    await conn.execute(
        _HELD, order_id, [h.product_id for h in held], [h.quantity for h in held],
        [h.unit_price_cents for h in held], HELD, *outbox.insert_args(changes),
        outbox.NOTIFY_CHANNEL,
    )  # fmt: skip


async def refuse(conn: Connection, order_id: str, product_id: str, reason: str) -> None:
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
            change = stock_changed(product, r["quantity"], f"released from order {order_id}")
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
