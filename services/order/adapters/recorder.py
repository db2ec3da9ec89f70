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

import msgspec

from services.order.adapters import event_store, projection
from services.order.adapters.event_store import StoredEvent
from services.order.domain import events as ev
from services.order.domain.order import Order
from services.order.domain.partitioning import PartitionStrategy, message_key
from services.order.domain.state import OrderState, fold
from shopstream import outbox
from shopstream.db import Connection
from shopstream.events import Event

ORDER_TOPIC = "order-events"
PAYMENT_TOPIC = "payment-events"
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


async def record(conn: Connection, order: Order, strategy: PartitionStrategy) -> Recorded:
    """Store ``order``'s pending events, its projection and their outbox messages."""
    pending = order.pending_events
    if not pending:
        return Recorded(order.state, ())
    committed = order.events[: len(order.events) - len(pending)]
    seen = len(fold(committed).history) if committed else 0
    stored = await event_store.append(conn, order.id, order.committed_version, pending)
    await projection.save(conn, order.state)  # and NOTIFY order_changes
    key = message_key(pending[0], strategy, order.state).decode("ascii")
    messages: list[outbox.Message] = []
    for item in stored:
        event = envelope(item)
        headers = {"event_type": item.type, "order_version": str(item.version)}
        messages.append(outbox.Message(ORDER_TOPIC, key, event, headers))
        if isinstance(item.event, PAYMENT_EVENTS):
            messages.append(outbox.Message(PAYMENT_TOPIC, key, _payment_copy(item, event), headers))
    await outbox.add_all(conn, messages)
    state = order.state
    order.collect_events()
    entered = tuple(change.status.value for change in state.history[seen:])
    return Recorded(state, tuple(stored), entered)
