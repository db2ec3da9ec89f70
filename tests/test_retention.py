"""The records of applied events are pruned once no redelivery can come, and only then."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from shopstream.outbox import prune_processed_events, prune_published

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


async def test_published_outbox_rows_go_after_an_hour_and_unpublished_ones_never(platform) -> None:
    """On a copy of the outbox (the live relay prunes the real one): published over an hour ago
    goes, published recently or not published at all stays, and the pruning reads the head of
    the primary key instead of the whole table."""
    conn = await asyncpg.connect(platform.settings.admin_database_url("product"))
    try:
        await conn.execute(
            "DROP SCHEMA IF EXISTS retention_check CASCADE; CREATE SCHEMA retention_check"
        )
        await conn.execute("CREATE TABLE retention_check.outbox (LIKE public.outbox INCLUDING ALL)")
        await conn.execute("SET search_path = retention_check")
        rows = {"old published": 120, "old unpublished": None, "recent published": 5}
        for name, minutes in rows.items():
            await conn.execute(
                "INSERT INTO outbox (event_id, topic, message_key, event_type, payload,"
                " created_at, published_at) VALUES ($1, 't', $2, 'E', '\\x00', now() - interval '3 hours',"
                " now() - make_interval(mins => $3))",
                uuid.uuid4(), name, minutes,
            )  # fmt: skip
        await conn.execute(
            "UPDATE outbox SET published_at = NULL WHERE message_key = 'old unpublished'"
        )
        await conn.execute(  # an hour's worth of recent rows behind them
            "INSERT INTO outbox (event_id, topic, message_key, event_type, payload, published_at)"
            " SELECT gen_random_uuid(), 't', 'recent', 'E', '\\x00', now()"
            " FROM generate_series(1, 50000)"
        )
        await conn.execute("ANALYZE outbox")
        assert await prune_published(conn) == 1
        kept = {r["message_key"] for r in await conn.fetch("SELECT message_key FROM outbox")}
        assert kept == {"old unpublished", "recent published", "recent"}
        plan = await conn.fetchval(
            "EXPLAIN (FORMAT JSON) SELECT id FROM (SELECT id, published_at FROM outbox"
            " ORDER BY id LIMIT 10000) AS head WHERE published_at < now()"
        )
        assert "outbox_pkey" in plan and "Seq Scan" not in plan, plan
    finally:
        await conn.execute("DROP SCHEMA IF EXISTS retention_check CASCADE")
        await conn.close()
