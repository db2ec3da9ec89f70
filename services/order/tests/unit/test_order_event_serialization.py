"""Order events are plain dataclasses that msgspec encodes and decodes without custom code:
the contract the event store and Kafka adapters rely on."""

from __future__ import annotations

import msgspec
import pytest

from services.order.domain import events as ev
from services.order.tests.unit.order_builders import all_events_of_one_order


@pytest.mark.parametrize("event", all_events_of_one_order(), ids=lambda e: e.name)
def test_each_event_round_trips_through_json_by_its_registered_name(event: ev.OrderEvent):
    data = msgspec.json.encode(event)
    assert msgspec.json.decode(data, type=ev.EVENT_TYPES[event.name]) == event


def test_the_round_trips_cover_every_event_type():
    assert {e.name for e in all_events_of_one_order()} == set(ev.EVENT_TYPES)


def test_times_are_encoded_with_their_zone_and_ids_as_text():
    placed = all_events_of_one_order()[0]
    decoded = msgspec.json.decode(msgspec.json.encode(placed))
    assert decoded["occurred_at"] == "2026-03-01T12:00:00Z"
    assert decoded["lines"][0]["product_id"] == str(placed.lines[0].product_id)  # type: ignore[attr-defined]
    assert decoded["mode"] == "async"
