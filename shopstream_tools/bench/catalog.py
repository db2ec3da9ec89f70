"""The seeded catalog the reads draw from, and the bench schema that lets pgbench draw it too."""

from __future__ import annotations

from shopstream.config import Settings

SEEDED_PRODUCTS = 100_000
SEEDED_SKU = "^[A-Z]{3}-[0-9]{7}$"
BENCH_SCHEMA = "bench"


async def prepare_catalog(settings: Settings) -> tuple[list[str], str]:
    """Seed if needed; (the seeded ids in SKU order, the server version); fill the id mapping."""
    import asyncpg

    from services.product.entrypoints.seed import seed_catalog

    await seed_catalog(settings, SEEDED_PRODUCTS)
    # the admin: the services' own role may create nothing, the bench schema included
    conn = await asyncpg.connect(settings.admin_database_url("product"))
    try:
        ids = [
            str(r["id"])
            for r in await conn.fetch(
                "SELECT id FROM products WHERE sku ~ $1 ORDER BY sku", SEEDED_SKU
            )
        ]
        # pgbench draws numbers, not uuids: n -> id lets it read the same products as wrk does.
        await conn.execute(
            f"CREATE SCHEMA IF NOT EXISTS {BENCH_SCHEMA};"
            f" DROP TABLE IF EXISTS {BENCH_SCHEMA}.product_ids;"
            f" CREATE TABLE {BENCH_SCHEMA}.product_ids (n integer PRIMARY KEY, id uuid NOT NULL)"
        )
        await conn.execute(
            f"INSERT INTO {BENCH_SCHEMA}.product_ids (n, id)"
            " SELECT row_number() OVER (ORDER BY sku), id FROM products WHERE sku ~ $1",
            SEEDED_SKU,
        )
        await conn.execute(f"ANALYZE {BENCH_SCHEMA}.product_ids")
        version = str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()
    return ids, version


async def drop_bench_schema(settings: Settings) -> None:
    import asyncpg

    conn = await asyncpg.connect(settings.admin_database_url("product"))
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {BENCH_SCHEMA} CASCADE")
    finally:
        await conn.close()
