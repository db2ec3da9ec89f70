"""The order event store in PostgreSQL: one append-only stream of events per order.

``append`` writes events at the versions after ``expected_version`` only when the stream is at
that version; the primary key (order_id, version) turns a concurrent append at the same version
into ``VersionConflict`` (optimistic concurrency), and a stream is never written with a gap. ``load`` rebuilds the Order
aggregate from its stream. Events are stored as the JSON msgspec makes of the domain dataclasses,
and each gets a deterministic id (from order id and version) that its Kafka envelope carries too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID, uuid5

import asyncpg
import msgspec

from services.order.domain import events as ev
from services.order.domain.order import Order
from shopstream.db import Connection

_EVENT_ID_NAMESPACE = UUID("3e0a3c52-8f71-4f0e-b5d4-0c9a51f3e6a7")


class VersionConflict(Exception):
    """Another writer appended to the stream first: reload the order and decide again."""

    def __init__(self, order_id: UUID, expected: int, actual: int | None = None) -> None:
        at = "" if actual is None else f", it is at {actual}"
        super().__init__(f"order {order_id}: expected version {expected}{at}")
        self.order_id = order_id
        self.expected = expected


@dataclass(frozen=True, slots=True)
class StoredEvent:
    order_id: UUID
    version: int
    event_id: UUID
    event: ev.OrderEvent
    recorded_at: datetime | None = None

    @property
    def type(self) -> str:
        return self.event.name


def event_id(order_id: UUID, version: int) -> UUID:
    """The id of the ``version``-th event of an order: the same on every write and replay."""
    return uuid5(_EVENT_ID_NAMESPACE, f"{order_id}/{version}")


_encoder = msgspec.json.Encoder()


def encode(event: ev.OrderEvent) -> str:
    return _encoder.encode(event).decode()


def decode(type_name: str, data: str | bytes) -> ev.OrderEvent:
    try:
        cls = ev.EVENT_TYPES[type_name]
    except KeyError:
        raise ValueError(f"unknown order event type {type_name!r}") from None
    return msgspec.json.decode(data, type=cls)


async def current_version(conn: Connection, order_id: UUID) -> int:
    version = await conn.fetchval(
        "SELECT max(version) FROM order_events WHERE order_id = $1", order_id
    )
    return int(version or 0)


# The version check is part of the INSERT (one round trip, no savepoint): the rows go in only
# when the stream is at the expected version, all of them or none.
APPEND = (
    "INSERT INTO order_events (order_id, version, event_id, type, data, occurred_at)"
    " SELECT $1, v, i, t, d::jsonb, o"
    " FROM unnest($2::int[], $3::uuid[], $4::text[], $5::text[], $6::timestamptz[])"
    " AS x(v, i, t, d, o)"
    " WHERE (SELECT coalesce(max(version), 0) FROM order_events WHERE order_id = $1) = $7"
)


def stored_events(
    order_id: UUID, expected_version: int, events: Sequence[ev.OrderEvent]
) -> list[StoredEvent]:
    """The events as they will be stored after ``expected_version``, with their ids."""
    return [
        StoredEvent(order_id, expected_version + i, event_id(order_id, expected_version + i), e)
        for i, e in enumerate(events, start=1)
    ]


def append_args(
    order_id: UUID, expected_version: int, stored: Sequence[StoredEvent]
) -> list[object]:
    """``APPEND``'s seven parameters."""
    return [
        order_id,
        [s.version for s in stored],
        [s.event_id for s in stored],
        [s.type for s in stored],
        [encode(s.event) for s in stored],
        [s.event.occurred_at for s in stored],
        expected_version,
    ]


async def append(
    conn: Connection, order_id: UUID, expected_version: int, events: Sequence[ev.OrderEvent]
) -> list[StoredEvent]:
    """Append ``events`` after ``expected_version``, in the caller's transaction.

    A conflict raises VersionConflict: either the stream was not at ``expected_version`` (nothing
    written, the transaction goes on) or a concurrent writer committed the same version first
    (the primary key refused it, which aborts the caller's transaction). Either way the caller
    decides again in a new transaction, as ``OrderService.decide_now`` and the consumers do."""
    if not events:
        return []
    if any(e.order_id != order_id for e in events):
        raise ValueError(f"every event appended to order {order_id} must be about it")
    stored = stored_events(order_id, expected_version, events)
    try:
        status = await conn.execute(APPEND, *append_args(order_id, expected_version, stored))
    except asyncpg.UniqueViolationError:
        raise VersionConflict(order_id, expected_version) from None
    if status != f"INSERT 0 {len(stored)}":
        raise VersionConflict(order_id, expected_version, await current_version(conn, order_id))
    return stored


def _stored(row: asyncpg.Record) -> StoredEvent:
    return StoredEvent(
        row["order_id"],
        row["version"],
        row["event_id"],
        decode(row["type"], row["data"]),
        row["recorded_at"],
    )


async def load_events(conn: Connection, order_id: UUID) -> list[StoredEvent]:
    rows = await conn.fetch(
        "SELECT order_id, version, event_id, type, data::text AS data, recorded_at"
        " FROM order_events WHERE order_id = $1 ORDER BY version",
        order_id,
    )
    return [_stored(r) for r in rows]


async def load(conn: Connection, order_id: UUID, *, lock: bool = False) -> Order | None:
    """The order rebuilt from its stream, or None. ``lock`` serialises writers of this order
    for the rest of the transaction (the version check still guards against any that do not)."""
    if lock:
        await conn.execute("SELECT 1 FROM orders WHERE id = $1 FOR UPDATE", order_id)
    stored = await load_events(conn, order_id)
    if not stored:
        return None
    return Order.from_events(s.event for s in stored)


async def load_many(
    conn: Connection, order_ids: Sequence[UUID], *, lock: bool = False
) -> dict[UUID, Order]:
    """``load`` for many orders in two round trips; the orders that do not exist are absent.
    Locks are taken in id order, so two batches sharing orders cannot deadlock."""
    ids = sorted(set(order_ids))
    if lock:
        await conn.execute(
            "SELECT 1 FROM orders WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE", ids
        )
    rows = await conn.fetch(
        "SELECT order_id, version, event_id, type, data::text AS data, recorded_at"
        " FROM order_events WHERE order_id = ANY($1::uuid[]) ORDER BY order_id, version",
        ids,
    )
    streams: dict[UUID, list[ev.OrderEvent]] = {}
    for row in rows:
        streams.setdefault(row["order_id"], []).append(decode(row["type"], row["data"]))
    return {order_id: Order.from_events(stream) for order_id, stream in streams.items()}
