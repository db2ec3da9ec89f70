"""Reads of the order API: the projection (one order, a customer's orders) and the event store.

Lists use keyset pagination on (created_at, id), newest first: a cursor names the last order of
a page, so pages stay stable while new orders arrive.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg
import msgspec

from shopstream.db import Connection

_SELECT = (
    "SELECT o.*, p.published_at FROM orders o"
    " LEFT JOIN order_publications p ON p.order_id = o.id"
)


class BadCursor(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Cursor:
    created_at: datetime
    order_id: UUID

    def encode(self) -> str:
        raw = msgspec.json.encode([self.created_at.isoformat(), str(self.order_id)])
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            created_at, order_id = msgspec.json.decode(raw, type=tuple[datetime, UUID])
        except (binascii.Error, ValueError, msgspec.DecodeError) as exc:
            raise BadCursor("not a cursor this service issued") from exc
        if created_at.tzinfo is None:
            raise BadCursor("not a cursor this service issued")
        return cls(created_at, order_id)


async def get(conn: Connection, order_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(f"{_SELECT} WHERE o.id = $1", order_id)


async def page(
    conn: Connection,
    *,
    customer_id: UUID | None,
    status: str | None,
    limit: int,
    after: Cursor | None,
) -> tuple[list[asyncpg.Record], Cursor | None]:
    """One page, newest first, and the cursor of the next page (None on the last)."""
    where: list[str] = []
    args: list[object] = []
    if customer_id is not None:
        args.append(customer_id)
        where.append(f"o.customer_id = ${len(args)}")
    if status is not None:
        args.append(status)
        where.append(f"o.status = ${len(args)}")
    if after is not None:
        args.extend([after.created_at, after.order_id])
        where.append(f"(o.created_at, o.id) < (${len(args) - 1}, ${len(args)})")
    args.append(limit + 1)
    sql = (
        f"{_SELECT} {'WHERE ' + ' AND '.join(where) if where else ''}"
        f" ORDER BY o.created_at DESC, o.id DESC LIMIT ${len(args)}"
    )
    rows = await conn.fetch(sql, *args)
    if len(rows) <= limit:
        return list(rows), None
    last = rows[limit - 1]
    return list(rows[:limit]), Cursor(last["created_at"], last["id"])


async def events(conn: Connection, order_id: UUID) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT version, event_id, type, data::text AS data, occurred_at, recorded_at"
        " FROM order_events WHERE order_id = $1 ORDER BY version",
        order_id,
    )
