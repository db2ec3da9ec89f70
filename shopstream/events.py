"""Integration events: the envelope every message on Kafka carries.

An event has an id (consumers deduplicate on it), a type, a schema version, the time it happened, the
id of the aggregate it is about (the default message key) and its data. See docs/events.md.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec


class Event(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    type: str
    version: int
    occurred_at: str
    aggregate_id: str
    data: dict[str, Any]
    source: str = ""


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Event)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def new_event(
    type: str, aggregate_id: str, data: dict[str, Any], *, version: int = 1, source: str = ""
) -> Event:
    return Event(
        id=str(uuid.uuid4()),
        type=type,
        version=version,
        occurred_at=now_iso(),
        aggregate_id=aggregate_id,
        data=data,
        source=source,
    )


def encode(event: Event) -> bytes:
    return _encoder.encode(event)


def decode(raw: bytes) -> Event:
    return _decoder.decode(raw)


def age_seconds(event: Event) -> float:
    """How long ago the event happened, by the wall clock."""
    return (datetime.now(UTC) - datetime.fromisoformat(event.occurred_at)).total_seconds()
