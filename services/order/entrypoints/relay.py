"""What order-service adds to the shared outbox relay (``shopstream relay order``): the
"published" stage of each order, observed when the relay has its OrderPlaced acknowledged by
Kafka (the database keeps the same time in ``order_publications``, by a trigger)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg

from services.order.adapters import metrics
from shopstream import events


def on_published(rows: Sequence[asyncpg.Record]) -> None:
    now = datetime.now(UTC)
    for row in rows:
        if row["event_type"] != "OrderPlaced":
            continue
        event = events.decode(bytes(row["payload"]))
        accepted = datetime.fromisoformat(str(event.data.get("occurred_at") or event.occurred_at))
        if accepted.tzinfo is None:
            accepted = accepted.replace(tzinfo=UTC)
        metrics.observe_published(str(event.data.get("mode", "")), accepted, now)
