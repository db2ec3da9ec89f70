"""``shopstream seed --orders N``: bulk-load a year of order history (``history.py``) with COPY.

Each batch goes into both databases with COPY (asyncpg's binary ``copy_records_to_table``, the
driver the services use), the order database's tables in one transaction and the product
database's in another, so a load stopped half way leaves whole orders (the two copies run at
once, while the next batch is made). Loading the same count again is a no-op (the first order's
id is looked up). The orders are made of the seeded catalog, which must be there first
(``seed --products``).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID

import asyncpg

from shopstream.config import Settings
from shopstream_tools import history

SEEDED_SKU = "^[A-Z]{3}-[0-9]{7}$"
ORDER_TABLES = {
    "order_events": "order_events",
    "orders": "orders",
    "order_publications": "order_publications",
}
PRODUCT_TABLES = {"reservations": "reservations", "reservation_refusals": "reservation_refusals"}
SIZED = {
    "order": ("order_events", "orders", "order_publications"),
    "product": ("reservations", "reservation_refusals"),
}


@dataclass
class LoadReport:
    orders: int
    seconds: float
    loaded: bool
    """False when the history was there already."""
    bytes_by_table: dict[str, int] = field(default_factory=dict)
    """``pg_total_relation_size`` (heap, indexes, TOAST) per ``service.table``."""

    def summary(self) -> str:
        lines = [f"{self.orders} orders {'loaded' if self.loaded else 'present'}"
                 + (f" in {self.seconds:.1f}s ({self.orders / self.seconds:.0f}/s)"
                    if self.loaded and self.seconds else "")]  # fmt: skip
        total = 0
        for table, size in self.bytes_by_table.items():
            total += size
            per = size / self.orders if self.orders else 0.0
            lines.append(f"  {table:<34}{size / 2**20:>10.1f} MiB{per:>10.0f} B/order")
        per = total / self.orders if self.orders else 0.0
        lines.append(f"  {'total':<34}{total / 2**20:>10.1f} MiB{per:>10.0f} B/order")
        return "\n".join(lines)


def default_until() -> datetime:
    """The history ends at the last full hour: the same rows all hour long."""
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


async def _catalog(conn: asyncpg.Connection) -> list[tuple[UUID, int]]:
    rows = await conn.fetch(
        "SELECT id, price_cents FROM products WHERE sku ~ $1 ORDER BY sku",
        SEEDED_SKU,
    )
    return [(r["id"], r["price_cents"]) for r in rows]


async def _copy(conn: asyncpg.Connection, batch: history.Batch, tables: dict[str, str]) -> None:
    async with conn.transaction():
        for attr, table in tables.items():
            rows = getattr(batch, attr)
            if rows:
                await conn.copy_records_to_table(
                    table, records=rows, columns=list(history.COLUMNS[attr])
                )


async def sizes(settings: Settings) -> dict[str, int]:
    """Bytes on disk of the tables the history lives in, by ``service.table``."""
    out: dict[str, int] = {}
    for service, tables in SIZED.items():
        conn = await asyncpg.connect(settings.database_url(service))
        try:
            for table in tables:
                size = await conn.fetchval("SELECT pg_total_relation_size($1::regclass)", table)
                out[f"{service}.{table}"] = int(size)
        finally:
            await conn.close()
    return out


async def load_orders(
    settings: Settings,
    count: int,
    until: datetime | None = None,
    batch_size: int = 5000,
    seed: int = history.SEED,
) -> LoadReport:
    """Load ``count`` orders of history ending at ``until`` (default: the last full hour)."""
    windows = history.Windows(until or default_until())
    # the admin: a bulk load ends with ANALYZE, which only the tables' owner (or the admin) may run
    product = await asyncpg.connect(settings.admin_database_url("product"))
    order = await asyncpg.connect(settings.admin_database_url("order"))
    try:
        catalog = await _catalog(product)
        first = next(history.batches(count, catalog, windows, size=1, seed=seed)).orders[0][0]
        if await order.fetchval("SELECT 1 FROM orders WHERE id = $1", first):
            return LoadReport(count, 0.0, False, await sizes(settings))
        started = time.perf_counter()
        for conn in (order, product):
            await conn.execute("SET synchronous_commit = off")  # a bulk load; ANALYZE syncs it
        # a pipeline: the next batch is made (in a thread) while both databases copy this one
        batches = history.batches(count, catalog, windows, size=batch_size, seed=seed)
        batch = await asyncio.to_thread(next, batches, None)
        while batch is not None:
            copies = asyncio.gather(
                _copy(order, batch, ORDER_TABLES), _copy(product, batch, PRODUCT_TABLES)
            )
            batch, _ = await asyncio.gather(asyncio.to_thread(next, batches, None), copies)
        await order.execute("ANALYZE order_events; ANALYZE orders; ANALYZE order_publications")
        await product.execute("ANALYZE reservations; ANALYZE reservation_refusals")
        seconds = time.perf_counter() - started
    finally:
        await order.close()
        await product.close()
    return LoadReport(count, seconds, True, await sizes(settings))
