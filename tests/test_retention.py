"""The records of applied events are pruned once no redelivery can come, and only then; published
outbox rows leave at once."""

from __future__ import annotations

import json
import uuid

import asyncpg
import pytest

from shopstream.outbox import prune_processed_events

pytestmark = pytest.mark.integration


async def test_records_older_than_the_window_go_and_those_inside_it_stay(platform) -> None:
    conn = await asyncpg.connect(platform.settings.database_url("product"))
    group = f"test-retention-{uuid.uuid4().hex[:6]}"
    old, recent, edge = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    try:
        await conn.executemany(
            "INSERT INTO processed_events (consumer_group, event_id, processed_at)"
            " VALUES ($1, $2, now() - make_interval(hours => $3))",
            [(group, old, 100), (group, edge, 95), (group, recent, 0)],
        )
        assert await prune_processed_events(conn, 96) >= 1
        kept = {
            r["event_id"]
            for r in await conn.fetch(
                "SELECT event_id FROM processed_events WHERE consumer_group = $1", group
            )
        }
        # a redelivery of `edge` or `recent` finds its record and is skipped; `old` is past the
        # topics' retention, so it can no longer be delivered
        assert kept == {edge, recent}
        assert await conn.fetchval(
            "SELECT 1 FROM pg_indexes WHERE indexname = 'processed_events_processed_at'"
        ), "the pruning finds old records by index, not by scanning every record"
    finally:
        await conn.execute("DELETE FROM processed_events WHERE consumer_group = $1", group)
        await conn.close()


async def test_only_the_relays_delete_of_an_order_placed_is_a_publication(platform) -> None:
    """Published rows leave the outbox by the relay's delete; the delete records the order's
    "published" stage only in a session that says it is the relay's, so an operator removing a
    row by hand does not make an order look published. (In one transaction, rolled back: the
    live relay never sees these rows.)"""
    conn = await asyncpg.connect(platform.settings.database_url("order"))
    by_hand, by_relay = uuid.uuid4(), uuid.uuid4()
    check = conn.transaction()
    await check.start()
    try:
        for order_id in (by_hand, by_relay):
            payload = json.dumps({"aggregate_id": str(order_id)}).encode()
            await conn.execute(
                "INSERT INTO outbox (event_id, topic, message_key, event_type, payload)"
                " VALUES ($1, 'order-events', $2, 'OrderPlaced', $3)",
                uuid.uuid4(), str(order_id), payload,
            )  # fmt: skip
        await conn.execute("DELETE FROM outbox WHERE message_key = $1", str(by_hand))
        await conn.execute("SET LOCAL shopstream.relay = 'publishing'")
        await conn.execute("DELETE FROM outbox WHERE message_key = $1", str(by_relay))
        published = {
            r["order_id"]
            for r in await conn.fetch(
                "SELECT order_id FROM order_publications WHERE order_id = ANY($1::uuid[])",
                [by_hand, by_relay],
            )
        }
        assert published == {by_relay}
        assert not await conn.fetchval(
            "SELECT 1 FROM information_schema.columns"
            " WHERE table_name = 'outbox' AND column_name = 'published_at'"
        ), "nothing marks rows published: they leave the table"
    finally:
        await check.rollback()
        await conn.close()
