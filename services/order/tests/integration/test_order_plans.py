"""The hot queries of the orders projection keep their indexes when the table is large: EXPLAIN on
a copy of the table (its indexes included) filled with 200k orders, 1% of them still in flight,
the way a shop's projection looks after months. A plan that scans the whole table is what makes a
query cost grow with the shop's history (issue 17)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest

from services.order.adapters import projection, queries
from tests.query_plans import SCHEMA, Statements, plans_on_copy, scans

pytestmark = pytest.mark.integration

ORDERS = 200_000
CUSTOMER = uuid.UUID(int=7)  # one customer of 20k, with ~10 orders


def _scans(plan: dict[str, Any]) -> list[tuple[str, str | None, str | None]]:
    """(node type, table, index) of every scan in a plan tree."""
    return [(n["Node Type"], n.get("Relation Name"), n.get("Index Name")) for n in scans(plan)]


FILL = (
    *(f"CREATE TABLE {SCHEMA}.{table} (LIKE public.{table} INCLUDING ALL)"
      for table in ("orders", "order_publications")),
    f"INSERT INTO {SCHEMA}.orders SELECT"
    " ('00000000-0000-0000-0000-' || lpad(to_hex(n), 12, '0'))::uuid,"
    " ('00000000-0000-0000-0000-' || lpad(to_hex(n % 20000), 12, '0'))::uuid,"
    " CASE WHEN n % 100 = 0 THEN 'PENDING' WHEN n % 10 = 1 THEN 'CANCELLED' ELSE 'CONFIRMED' END,"
    " CASE WHEN n % 2 = 0 THEN 'async' ELSE 'sync' END,"
    " CASE WHEN n % 100 = 0 THEN 'in_progress' WHEN n % 10 = 1 THEN 'cancelled' ELSE 'confirmed' END,"
    " 3, 1000,"
    " '[]', '{}', '[]', '[]', NULL, NULL, NULL, NULL, NULL, '[]', '{}', NULL,"
    " now() - make_interval(secs => n * 150), now() - make_interval(secs => n * 150)"
    f" FROM generate_series(1, {ORDERS}) AS n",
    f"ANALYZE {SCHEMA}.orders; ANALYZE {SCHEMA}.order_publications",
)  # fmt: skip


async def _plans(settings, statements: Statements) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return await plans_on_copy(settings, "order", FILL, SCHEMA, statements)


def test_hot_queries_use_their_indexes_on_a_large_projection(platform) -> None:
    page = (
        f"{queries._SELECT} WHERE o.customer_id = $1 ORDER BY o.created_at DESC, o.id DESC LIMIT 21"
    )
    by_status = (
        f"{queries._SELECT} WHERE o.customer_id = $1 AND o.status = $2"
        " ORDER BY o.created_at DESC, o.id DESC LIMIT 21"
    )
    recent = f"{queries._SELECT} ORDER BY o.created_at DESC, o.id DESC LIMIT 21"
    plans = asyncio.run(
        _plans(
            platform.settings,
            {
                "in-flight gauge": (projection.IN_FLIGHT_BY_STATUS, []),
                "quiet orders": (projection._QUIET, ["async", 120.0, 200]),
                "one order": (f"{queries._SELECT} WHERE o.id = $1", [CUSTOMER]),
                "a customer's orders": (page, [CUSTOMER]),
                "a customer's orders by status": (by_status, [CUSTOMER, "CONFIRMED"]),
                "every order, newest first": (recent, []),
            },
        )
    )
    for name, plan in plans.items():
        on_orders = [scan for scan in _scans(plan) if scan[1] == "orders"]
        assert on_orders and all(kind != "Seq Scan" for kind, _, _ in on_orders), (name, on_orders)
    # the gauge counts through the partial index of orders in flight, not every order
    assert [index for _, _, index in _scans(plans["in-flight gauge"])] == ["orders_created_at_idx"]
    # the sweep's follow-ups read the same partial index, whichever mode
    assert all(index == "orders_created_at_idx" for _, _, index in _scans(plans["quiet orders"]))


async def test_the_event_store_keeps_one_index(platform) -> None:
    """Only the primary key (order_id, version), which every read uses. The event id is derived
    from that pair (migration 0005 dropped its unique index: a random insert per event into an
    index nothing reads, growing with the history)."""
    conn = await asyncpg.connect(platform.settings.database_url("order"))
    try:
        indexes = await conn.fetch(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'order_events' ORDER BY 1"
        )
    finally:
        await conn.close()
    assert [row["indexname"] for row in indexes] == ["order_events_pkey"]
