"""The ``orders`` projection: the table the API reads, one row per order.

A row is a pure function of the order's state (``row_of``), which is a pure fold of its stream,
so the live projection (written in the same transaction as the events) and a rebuild from the
event store (``rebuild``) give identical rows. Times in a row come from the events, never from
the clock of the writer.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import msgspec

from services.order.adapters import event_store
from services.order.domain.state import OrderState, fold
from shopstream.db import Connection

log = logging.getLogger(__name__)

CHANGES_CHANNEL = "order_changes"
# Orders still in flight by status and mode. Only these are counted (through the partial index
# orders_open, a set as large as the rate times the saga's latency): a count of every order
# scanned the whole table every 15 s, seconds with millions of orders. Ended orders are counted
# as they end (order_transitions_total). orders_open's predicate is the outcome, which changes
# only when an order ends, so the steps before are HOT updates (order migration 0004).
IN_FLIGHT_BY_STATUS = (
    "SELECT status, mode, count(*) AS n FROM orders WHERE outcome = 'in_progress' GROUP BY 1, 2"
)
# Async orders in flight, one number for admission (``backlog.py``), over the same index.
IN_FLIGHT_ASYNC = "SELECT count(*) FROM orders WHERE outcome = 'in_progress' AND mode = 'async'"

# Orders of one mode in flight and unchanged for a while, quietest first (orders_open again: it
# holds only the orders in flight, so sorting them by their last change is cheap).
_QUIET = (
    "SELECT id FROM orders WHERE outcome = 'in_progress' AND mode = $1"
    " AND updated_at < now() - make_interval(secs => $2) ORDER BY updated_at LIMIT $3"
)


async def quiet_orders(conn: Connection, mode: str, older_than: float, limit: int) -> list[UUID]:
    """Orders of ``mode`` not ended and unchanged for ``older_than`` seconds."""
    return [r["id"] for r in await conn.fetch(_QUIET, mode, older_than, limit)]


COLUMNS = (
    "id", "customer_id", "status", "mode", "outcome", "version", "total_cents", "lines",
    "shipping_address", "reserved", "released", "payment", "stock_rejected",
    "payment_declined_reason", "reason", "cancelled_by", "history", "timestamps",
    "idempotency_key", "created_at", "updated_at",
)
JSON_COLUMNS = frozenset(
    {"lines", "shipping_address", "reserved", "released", "payment", "stock_rejected",
     "history", "timestamps"}
)
_encoder = msgspec.json.Encoder()


def _json(value: Any) -> str | None:
    return None if value is None else _encoder.encode(value).decode()


def _items(items: Any) -> list[dict[str, Any]]:
    return [{"product_id": str(i.product_id), "quantity": i.quantity} for i in items]


def row_of(state: OrderState) -> tuple[Any, ...]:
    """The projection row of ``state``, in ``COLUMNS`` order (JSON columns as JSON text)."""
    stamps = state.timestamps.as_dict()
    accepted = state.timestamps.accepted
    assert accepted is not None, "every order has its acceptance time"
    a = state.shipping_address
    payment = None
    if state.payment_id is not None:
        payment = {"id": state.payment_id, "authorized_cents": state.authorized_cents,
                   "voided": state.payment_voided}
    rejected = None
    if state.stock_rejected_reason is not None:
        product = state.stock_rejected_product
        rejected = {"reason": state.stock_rejected_reason,
                    "product_id": None if product is None else str(product)}
    return (
        state.order_id,
        state.customer_id,
        state.status.value,
        state.mode.value,
        state.outcome.value,
        state.version,
        state.total_cents,
        _json([{"product_id": str(line.product_id), "quantity": line.quantity,
                "unit_price_cents": line.unit_price_cents, "total_cents": line.total_cents}
               for line in state.lines]),
        _json({"name": a.name, "line1": a.line1, "line2": a.line2, "city": a.city,
               "postal_code": a.postal_code, "country": a.country}),
        _json(_items(state.reserved)),
        _json(_items(state.released)),
        _json(payment),
        _json(rejected),
        state.payment_declined_reason,
        state.reason,
        None if state.cancelled_by is None else state.cancelled_by.value,
        _json([{"status": h.status.value, "at": h.at, "reason": h.reason}
               for h in state.history]),
        _json(stamps),
        state.idempotency_key,
        accepted,
        max(stamps.values()),
    )


_PLACEHOLDERS = ", ".join(
    f"${i}::jsonb" if c in JSON_COLUMNS else f"${i}" for i, c in enumerate(COLUMNS, start=1)
)
_UPDATES = ", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS if c not in ("id", "created_at"))
_UPSERT = (
    f"INSERT INTO orders ({', '.join(COLUMNS)}) VALUES ({_PLACEHOLDERS})"
    f" ON CONFLICT (id) DO UPDATE SET {_UPDATES} WHERE orders.version < EXCLUDED.version"
)


# The followers' NOTIFY rides on the upsert: one round trip for both.
_SAVE = f"WITH saved AS ({_UPSERT}) SELECT pg_notify(${len(COLUMNS) + 1}, ${len(COLUMNS) + 2})"


async def save(conn: Connection, state: OrderState) -> None:
    """Write the row of ``state`` unless the table already holds a newer version, and NOTIFY
    ``order_changes`` with ``<order id>:<version>:<status>`` (delivered at commit) for the
    requests following the order."""
    notice = f"{state.order_id}:{state.version}:{state.status}"
    await conn.execute(_SAVE, *row_of(state), CHANGES_CHANNEL, notice)


# Rebuild ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RebuildReport:
    orders: int
    """Orders in the event store."""
    differing: int
    """Live rows that did not equal the rebuilt ones (changed, missing or without a stream)."""
    applied: bool
    """Whether the rebuilt rows replaced the live ones (False for a check)."""


async def _streams(conn: Connection, batch: int) -> AsyncIterator[OrderState]:
    """Every order's state, folding the event store in (order id, version) order."""
    current: UUID | None = None
    pending: list[Any] = []
    async for row in conn.cursor(
        "SELECT order_id, type, data::text AS data FROM order_events ORDER BY order_id, version",
        prefetch=batch,
    ):
        if row["order_id"] != current and pending:
            yield fold(pending)
            pending = []
        current = row["order_id"]
        pending.append(event_store.decode(row["type"], row["data"]))
    if pending:
        yield fold(pending)


async def rebuild(conn: asyncpg.Connection, *, apply: bool = True, batch: int = 2000) -> RebuildReport:
    """Rebuild every row of ``orders`` from the event store, in one transaction.

    Writers of orders wait while it runs (readers do not); a check (``apply=False``) only counts
    the live rows that differ from their rebuilt selves.
    """
    async with conn.transaction():
        await conn.execute("LOCK TABLE orders IN EXCLUSIVE MODE")
        await conn.execute(
            "CREATE TEMP TABLE rebuilt_orders (LIKE orders INCLUDING DEFAULTS) ON COMMIT DROP"
        )
        insert = (
            f"INSERT INTO rebuilt_orders ({', '.join(COLUMNS)}) VALUES ({_PLACEHOLDERS})"
        )
        rows: list[tuple[Any, ...]] = []
        count = 0
        async for state in _streams(conn, batch):
            rows.append(row_of(state))
            count += 1
            if len(rows) >= batch:
                await conn.executemany(insert, rows)
                rows = []
        if rows:
            await conn.executemany(insert, rows)
        columns = ", ".join(COLUMNS)
        differing = await conn.fetchval(
            f"SELECT (SELECT count(*) FROM (SELECT {columns} FROM orders"
            f"        EXCEPT SELECT {columns} FROM rebuilt_orders) AS stale)"
            " + (SELECT count(*) FROM rebuilt_orders r"
            "    WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.id = r.id))"
        )
        if apply:
            await conn.execute(
                "DELETE FROM orders o WHERE NOT EXISTS (SELECT 1 FROM rebuilt_orders r WHERE r.id = o.id)"
            )
            updates = ", ".join(f"{c} = r.{c}" for c in COLUMNS if c != "id")
            await conn.execute(
                f"UPDATE orders o SET {updates} FROM rebuilt_orders r"
                f" WHERE o.id = r.id AND (o.*) IS DISTINCT FROM (r.*)"
            )
            await conn.execute(
                f"INSERT INTO orders ({columns}) SELECT {columns} FROM rebuilt_orders"
                " ON CONFLICT (id) DO NOTHING"
            )
    return RebuildReport(orders=count, differing=int(differing), applied=apply)
