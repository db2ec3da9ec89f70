"""The planner's choices for the hot queries, on whatever data set the settings point at:
``python -m shopstream_tools.growth_plans`` (with the platform's SHOPSTREAM_* settings).

EXPLAIN (ANALYZE, BUFFERS) of the API's reads of orders and products and of the gauges' count,
with real ids drawn from the data, for docs/performance/growth.md: the same plans on the young
and the large data set, and how many buffers each touches, is what says a read stays as cheap.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from services.order.adapters import projection, queries
from services.product.adapters import repository
from services.product.domain.search import build_query
from shopstream.config import Settings


async def _explain(conn: asyncpg.Connection, sql: str, args: list[Any]) -> str:
    rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {sql}", *args)
    return "\n".join(r[0] for r in rows)


async def order_plans(settings: Settings) -> dict[str, str]:
    conn = await asyncpg.connect(settings.database_url("order"))
    try:
        # an order from the middle of the history, and its customer
        row = await conn.fetchrow(
            "SELECT id, customer_id FROM orders ORDER BY created_at DESC OFFSET"
            " (SELECT reltuples::bigint / 2 FROM pg_class WHERE relname = 'orders') LIMIT 1"
        ) or await conn.fetchrow("SELECT id, customer_id FROM orders LIMIT 1")
        if row is None:
            return {}
        order_by = "ORDER BY o.created_at DESC, o.id DESC LIMIT 21"
        statements = {
            "one order": (f"{queries._SELECT} WHERE o.id = $1", [row["id"]]),
            "an order's events": (
                "SELECT * FROM order_events WHERE order_id = $1 ORDER BY version",
                [row["id"]],
            ),
            "a customer's orders": (
                f"{queries._SELECT} WHERE o.customer_id = $1 {order_by}",
                [row["customer_id"]],
            ),
            "every order, newest first": (f"{queries._SELECT} {order_by}", []),
            "in-flight gauge": (projection.IN_FLIGHT_BY_STATUS, []),
        }
        return {name: await _explain(conn, sql, args) for name, (sql, args) in statements.items()}
    finally:
        await conn.close()


async def product_plans(settings: Settings) -> dict[str, str]:
    conn = await asyncpg.connect(settings.database_url("product"))
    try:
        some = await conn.fetchval("SELECT id FROM products ORDER BY sku LIMIT 1 OFFSET 5000")
        search = build_query(
            category="Electronics", min_price_cents=10_000, max_price_cents=12_000,
            in_stock=True, sort="price_asc",
        )  # fmt: skip
        statements = {
            "one product": (f"SELECT {repository.COLUMNS} FROM products WHERE id = $1", [some]),
            "category, price window, in stock": repository.search_sql(search),
            "a word, by relevance": repository.search_sql(build_query(text="kettle")),
            "newest first": repository.search_sql(build_query(sort="newest")),
        }
        return {
            name: await _explain(conn, sql, list(args)) for name, (sql, args) in statements.items()
        }
    finally:
        await conn.close()


async def main() -> None:
    settings = Settings.from_env()
    for name, plan in {**await order_plans(settings), **await product_plans(settings)}.items():
        print(f"-- {name}\n{plan}\n")


if __name__ == "__main__":
    asyncio.run(main())
