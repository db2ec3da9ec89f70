"""Recording a decision: the order's new events, its projection row and their outbox messages
commit together, in the caller's transaction, or none of them does.

Every event of the store is published on ``order-events`` (payment events on ``payment-events``
too, for observers) as an envelope whose ``type`` is the event class name, ``data`` the event's
fields and ``aggregate_id`` the order id. The message key follows the configured partitioning
strategy and is the same for all of one order's messages, so they stay in order on one partition.
A NOTIFY on ``order_changes`` (delivered at commit) wakes the clients following the order.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import asyncpg
import msgspec

from services.order.adapters import event_store, projection
from services.order.adapters.event_store import StoredEvent
from services.order.domain import events as ev
from services.order.domain.order import Order
from services.order.domain.partitioning import PartitionStrategy, message_key
from services.order.domain.state import OrderState, fold
from shopstream import outbox
from shopstream.contracts import topics
from shopstream.db import Connection
from shopstream.events import Event

ORDER_TOPIC = topics.ORDER_EVENTS
PAYMENT_TOPIC = topics.PAYMENT_EVENTS
CHANGES_CHANNEL = projection.CHANGES_CHANNEL
SOURCE = "order-service"
PAYMENT_EVENTS = (ev.PaymentAuthorized, ev.PaymentDeclined, ev.PaymentVoided)


@dataclass(frozen=True, slots=True)
class Recorded:
    """What one ``record`` call stored (for the metrics, observed after the commit)."""

    state: OrderState
    events: tuple[StoredEvent, ...]
    new_statuses: tuple[str, ...] = ()
    """The statuses the order entered with these events, in order."""


def envelope(stored: StoredEvent) -> Event:
    """The Kafka envelope of a stored event; its id is the event's id in the store."""
    return Event(
        id=str(stored.event_id),
        type=stored.type,
        version=1,
        occurred_at=stored.event.occurred_at.isoformat(timespec="microseconds"),
        aggregate_id=str(stored.order_id),
        data=msgspec.to_builtins(stored.event),
        source=SOURCE,
    )


def _payment_copy(stored: StoredEvent, event: Event) -> Event:
    """The same event for payment-events, under an id of its own (outbox ids are unique)."""
    copy_id = event_store.event_id(stored.event_id, 0)
    return msgspec.structs.replace(event, id=str(copy_id))


_COLUMNS = ", ".join(projection.COLUMNS)
_N = len(projection.COLUMNS)
_ROW = ", ".join(
    f"${i}::jsonb" if c in projection.JSON_COLUMNS else f"${i}"
    for i, c in enumerate(projection.COLUMNS, start=8)
)
_UPDATES = ", ".join(
    f"{c} = EXCLUDED.{c}" for c in projection.COLUMNS if c not in ("id", "created_at")
)
_PARAM = {c: f"${i}" for i, c in enumerate(projection.COLUMNS, start=8)}
# An order's later steps update its row in place: a plain UPDATE (every parameter is used, so
# each has a type; created_at is set to what it was, which keeps the update HOT), without the
# speculative insertion and tuple lock of INSERT ... ON CONFLICT.
_SET = ", ".join(
    f"{c} = {p}::jsonb" if c in projection.JSON_COLUMNS else f"{c} = {p}"
    for c, p in _PARAM.items() if c != "id"
)  # fmt: skip
_SAVE_NEW = (
    f"INSERT INTO orders ({_COLUMNS}) VALUES ({_ROW})"
    f" ON CONFLICT (id) DO UPDATE SET {_UPDATES} WHERE orders.version < EXCLUDED.version"
)
_SAVE_NEXT = (
    f"UPDATE orders SET {_SET} WHERE id = {_PARAM['id']} AND version < {_PARAM['version']}"
)
_O = 8 + _N  # the outbox's parameters follow the row's
# One round trip for a whole decision: the events (only if the stream is at the expected
# version: RETURNING says how many went in), the projection row, the outbox messages and both
# NOTIFYs (delivered at commit). A stream at another version writes no event and the caller's
# transaction is rolled back by the VersionConflict raised; a placement runs it as a statement
# of its own (atomic by itself), optionally with its Idempotency-Key claimed first.
_RECORD = (
    f"WITH appended AS ({event_store.APPEND} RETURNING 1),"
    f" saved AS ({_SAVE_NEW}),"
    f" published AS ({outbox.insert_sql(_O)})"
    f" SELECT (SELECT count(*) FROM appended) AS appended,"
    f" pg_notify(${_O + 6}, ''), pg_notify(${_O + 7}, ${_O + 8})"
)
_RECORD_NEXT = _RECORD.replace(_SAVE_NEW, _SAVE_NEXT, 1)
_CLAIM = (
    "claimed AS (INSERT INTO idempotency_keys (customer_id, key, order_id, fingerprint)"
    f" VALUES (${_O + 9}, ${_O + 10}, $1, ${_O + 11}) ON CONFLICT DO NOTHING RETURNING 1), "
)
_RECORD_CLAIMED = _RECORD.replace("WITH ", "WITH " + _CLAIM, 1) + ", (SELECT count(*) FROM claimed)"


class KeyTaken(Exception):
    """The order's Idempotency-Key (or its deterministic id) was claimed by another request."""


async def record(
    conn: Connection,
    order: Order,
    strategy: PartitionStrategy,
    claim: tuple[UUID, str, str] | None = None,
) -> Recorded:
    """Store ``order``'s pending events, its projection and their outbox messages in one
    statement. ``claim``: (customer id, key, fingerprint) of a new order's Idempotency-Key,
    claimed in the same statement (KeyTaken when another request has it)."""
    pending = order.pending_events
    if not pending:
        return Recorded(order.state, ())
    committed = order.events[: len(order.events) - len(pending)]
    seen = len(fold(committed).history) if committed else 0
    expected = order.committed_version
    stored = event_store.stored_events(order.id, expected, pending)
    key = message_key(pending[0], strategy, order.state).decode("ascii")
    messages: list[outbox.Message] = []
    for item in stored:
        event = envelope(item)
        headers = {"event_type": item.type, "order_version": str(item.version)}
        messages.append(outbox.Message(ORDER_TOPIC, key, event, headers))
        if isinstance(item.event, PAYMENT_EVENTS):
            messages.append(outbox.Message(PAYMENT_TOPIC, key, _payment_copy(item, event), headers))
    state = order.state
    args = [*event_store.append_args(order.id, expected, stored), *projection.row_of(state),
            *outbox.insert_args(messages), outbox.NOTIFY_CHANNEL, CHANGES_CHANNEL,
            f"{state.order_id}:{state.version}:{state.status}"]  # fmt: skip
    try:
        if claim is None:
            row = await conn.fetchrow(_RECORD_NEXT if expected else _RECORD, *args)
        else:
            row = await conn.fetchrow(_RECORD_CLAIMED, *args, *claim)
    except asyncpg.UniqueViolationError as exc:
        if claim is not None:
            raise KeyTaken(order.id) from exc
        raise event_store.VersionConflict(order.id, expected) from None
    assert row is not None
    if claim is not None and row[3] == 0:
        raise KeyTaken(order.id)
    if row["appended"] != len(stored):
        raise event_store.VersionConflict(
            order.id, expected, await event_store.current_version(conn, order.id)
        )
    order.collect_events()
    entered = tuple(change.status.value for change in state.history[seen:])
    return Recorded(state, tuple(stored), entered)
