"""The records of applied events are pruned once no redelivery can come, and only then."""

from __future__ import annotations

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
        kept = {r["event_id"] for r in await conn.fetch(
            "SELECT event_id FROM processed_events WHERE consumer_group = $1", group)}
        # a redelivery of `edge` or `recent` finds its record and is skipped; `old` is past the
        # topics' retention, so it can no longer be delivered
        assert kept == {edge, recent}
        assert await conn.fetchval(
            "SELECT 1 FROM pg_indexes WHERE indexname = 'processed_events_processed_at'"
        ), "the pruning finds old records by index, not by scanning every record"
    finally:
        await conn.execute("DELETE FROM processed_events WHERE consumer_group = $1", group)
        await conn.close()
