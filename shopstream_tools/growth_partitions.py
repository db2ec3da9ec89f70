"""What partitioning the event store by month would do to its reads and its lock:
``python -m shopstream_tools.growth_partitions`` (with the platform's SHOPSTREAM_* settings, on a
loaded history), for docs/performance/growth.md.

It copies a sample of ``order_events`` (whole streams: every event of 1 order in ``SAMPLE``) into
a table partitioned by month of ``occurred_at`` in a scratch schema, and into a plain table of the
same shape beside it, then EXPLAINs the store's one read (an order's events, by order id) on both.
PostgreSQL requires a partitioned table's primary key to include the partition key, so the copy's
key is (order_id, version, occurred_at): the script also shows that this key lets two events of
one order at the same version in, which the store's key (order_id, version) refuses; that
refusal is the event store's optimistic lock. The scratch schema is dropped at the end.
"""

from __future__ import annotations

import asyncio

import asyncpg

from shopstream.config import Settings

SCHEMA = "growth_partitions"
SAMPLE = 20  # one order in SAMPLE: whole streams, chosen by the order id's hash


async def _explain(conn: asyncpg.Connection, sql: str, *args: object) -> str:
    rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {sql}", *args)
    return "\n".join(r[0] for r in rows)


async def probe(settings: Settings) -> dict[str, str]:
    conn = await asyncpg.connect(settings.admin_database_url("order"))
    s = SCHEMA
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {s} CASCADE; CREATE SCHEMA {s}")
        bounds = await conn.fetchrow(
            "SELECT date_trunc('month', min(occurred_at)), max(occurred_at) FROM order_events"
        )
        assert bounds is not None
        first, last = bounds
        await conn.execute(
            f"CREATE TABLE {s}.by_month (LIKE public.order_events)"
            " PARTITION BY RANGE (occurred_at);"
            f" CREATE TABLE {s}.plain (LIKE public.order_events)"
        )
        months = await conn.fetch(
            "SELECT m, m + interval '1 month' AS n FROM generate_series($1::timestamptz,"
            " $2::timestamptz, interval '1 month') AS m",
            first, last,
        )  # fmt: skip
        for i, month in enumerate(months):
            await conn.execute(
                f"CREATE TABLE {s}.by_month_{i} PARTITION OF {s}.by_month"
                f" FOR VALUES FROM ('{month['m'].isoformat()}') TO ('{month['n'].isoformat()}')"
            )
        await conn.execute(
            f"INSERT INTO {s}.plain SELECT * FROM public.order_events"
            f" WHERE abs(hashtext(order_id::text)) % {SAMPLE} = 0;"
            f" INSERT INTO {s}.by_month SELECT * FROM {s}.plain;"
            f" ALTER TABLE {s}.by_month ADD PRIMARY KEY (order_id, version, occurred_at);"
            f" ALTER TABLE {s}.plain ADD PRIMARY KEY (order_id, version);"
            f" ANALYZE {s}.by_month; ANALYZE {s}.plain"
        )
        # an order placed well inside the history, so a copy a month later has a partition
        order_id = await conn.fetchval(
            f"SELECT order_id FROM {s}.plain WHERE version = 1"
            " AND occurred_at BETWEEN $1::timestamptz + interval '2 months'"
            " AND $2::timestamptz - interval '2 months' LIMIT 1",
            first, last,
        )  # fmt: skip
        read = "SELECT * FROM {} WHERE order_id = $1 ORDER BY version"
        out = {
            "partitions": str(len(months)),
            "events copied": str(await conn.fetchval(f"SELECT count(*) FROM {s}.plain")),
            "one stream, plain table": await _explain(conn, read.format(f"{s}.plain"), order_id),
            "one stream, by month": await _explain(conn, read.format(f"{s}.by_month"), order_id),
        }
        # the same order and version a month later: the store's key refuses it, the partitioned not
        again = (
            f"INSERT INTO {s}.%s SELECT order_id, version, event_id, type, data,"
            f" occurred_at + interval '1 month', recorded_at FROM {s}.plain"
            " WHERE order_id = $1 AND version = 1"
        )
        for table in ("plain", "by_month"):
            try:
                await conn.execute(again % table, order_id)
                out[f"a second version 1, {table}"] = "accepted"
            except asyncpg.UniqueViolationError:
                out[f"a second version 1, {table}"] = "refused (unique violation)"
        return out
    finally:
        await conn.execute(f"DROP SCHEMA IF EXISTS {s} CASCADE")
        await conn.close()


async def main() -> None:
    for name, text in (await probe(Settings.from_env())).items():
        print(f"-- {name}\n{text}\n")


if __name__ == "__main__":
    asyncio.run(main())
