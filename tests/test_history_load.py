"""`shopstream seed --orders N` loads history the services read back as their own: orders through
the API (projection and event stream), a projection rebuilt from the loaded events equal to the
loaded one, and the lab's consistency audit passing on them. Small (2,000 orders, seconds): the
large data set is built by its own command, never by the suite."""

from __future__ import annotations

import asyncio
import random
import re
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from services.order.adapters import event_store
from services.order.adapters.projection import row_of
from services.order.domain.state import fold
from services.product.entrypoints.seed import seed_catalog
from shopstream_tools import growth_partitions
from shopstream_tools.history_load import load_orders
from shopstream_tools.lab import audit

pytestmark = pytest.mark.integration

ORDERS = 2_000
# in 2019, away from every other test's orders; a fresh seed per run gives fresh ids
UNTIL = datetime(2020, 1, 1, tzinfo=UTC)


def _load(settings, seed: int):
    async def run():
        await seed_catalog(settings, 2_000)
        return await load_orders(settings, ORDERS, until=UNTIL, batch_size=700, seed=seed)

    return asyncio.run(run())


async def _loaded(settings, since: datetime) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(settings.database_url("order"))
    try:
        return await conn.fetch(
            "SELECT id, customer_id, status, version, total_cents, created_at FROM orders"
            " WHERE created_at >= $1 AND created_at <= $2 ORDER BY created_at",
            since,
            UNTIL,
        )
    finally:
        await conn.close()


async def _rebuilt_equal(settings, ids) -> int:
    """How many loaded orders' rows equal the row folded from their loaded stream."""
    conn = await asyncpg.connect(settings.database_url("order"))
    try:
        same = 0
        for oid in ids:
            stream = await event_store.load_events(conn, oid)
            row = await conn.fetchrow(
                "SELECT id, customer_id, status, mode, outcome, version, total_cents,"
                " created_at, updated_at FROM orders WHERE id = $1",
                oid,
            )
            assert row is not None
            folded = row_of(fold(s.event for s in stream))
            expected = (*folded[:7], folded[19], folded[20])
            same += tuple(row.values()) == tuple(
                v.value if hasattr(v, "value") else v for v in expected
            )
        return same
    finally:
        await conn.close()


def test_loaded_history_reads_back_through_the_api_and_passes_the_audit(platform) -> None:
    settings = platform.settings
    since = UNTIL - timedelta(days=366)
    before = asyncio.run(_loaded(settings, since))
    seed = random.randrange(2**31)
    report = _load(settings, seed)
    assert report.loaded and report.orders == ORDERS
    assert report.bytes_by_table["order.order_events"] > 0
    known = {r["id"] for r in before}
    rows = [r for r in asyncio.run(_loaded(settings, since)) if r["id"] not in known]
    assert len(rows) == ORDERS
    assert rows[0]["id"] != rows[-1]["id"]
    assert rows[-1]["created_at"] - rows[0]["created_at"] > timedelta(days=360), "over a year"

    sample = rows[:: ORDERS // 20]
    assert asyncio.run(_rebuilt_equal(settings, [r["id"] for r in sample])) == len(sample)
    with platform.client() as gw:
        for r in sample:
            order = gw.get(f"/orders/{r['id']}")
            assert order.status_code == 200, order.text
            body = order.json()
            assert body["status"] == r["status"] and body["total_cents"] == r["total_cents"]
            stream = gw.get(f"/orders/{r['id']}/events").json()
            assert stream["events"][0]["type"] == "OrderPlaced"
            assert len(stream["events"]) == r["version"]
        customer = sample[0]["customer_id"]
        page = gw.get("/orders", params={"customer_id": str(customer), "limit": 50}).json()
        assert sample[0]["id"] in {uuid.UUID(o["id"]) for o in page["items"]}

    after = asyncio.run(audit.collect(settings, [], since, order_service=True))
    checks = audit.check(audit.Observed(), after)["checks"]
    assert checks["reservations agree with orders"]["passed"], checks
    assert checks["no event applied twice"]["passed"], checks
    loaded = {str(r["id"]) for r in rows}
    assert not loaded & set(after.open_orders), "every loaded order has ended"
    statuses = {r["status"] for r in rows}
    assert statuses == {"CONFIRMED", "CANCELLED", "REJECTED"}, statuses

    # loading the same history again changes nothing
    assert not _load(settings, seed).loaded

    # partitioning the store by month (growth.md): a read by order id visits every month's
    # partition, and the partitioned key (order_id, version, occurred_at) lets a second version 1
    # of an order in, which the store's key refuses: its optimistic lock
    found = asyncio.run(growth_partitions.probe(settings))
    # a partition is read by a Seq Scan or, once it holds enough rows, an Index Scan "using ... on"
    visited = set(re.findall(r"Scan (?:using \S+ )?on (by_month_\d+) ", found["one stream, by month"]))
    assert len(visited) == int(found["partitions"]) >= 12, found["one stream, by month"]
    assert found["a second version 1, plain"].startswith("refused")
    assert found["a second version 1, by_month"] == "accepted"
