"""What the databases keep of events: no record of applied events (every consumer's effect is
idempotent by what it writes), and published outbox rows leave at once."""

from __future__ import annotations

import json
import uuid

import asyncpg
import pytest

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("service", ["product", "order"])
async def test_no_database_keeps_a_record_of_applied_events(platform, service: str) -> None:
    """Migration 0004 dropped ``processed_events``: nothing reads or writes it any more."""
    conn = await asyncpg.connect(platform.settings.database_url(service))
    try:
        assert await conn.fetchval(
            "SELECT version FROM schema_migrations WHERE version = $1",
            "shared/0004_no_record_of_applied_events",
        )
        assert await conn.fetchval("SELECT to_regclass('processed_events')") is None
    finally:
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
