"""``shopstream rebuild-projections``: the orders projection rebuilt from the order event store.

The rebuild runs in one transaction: readers keep reading the old rows until it commits, writers
of orders wait for it. ``--check`` changes nothing and exits 1 when a live row differs from its
rebuilt self (a projection that drifted from its events).
"""

from __future__ import annotations

import asyncio

import asyncpg

from services.order.adapters import projection
from shopstream.config import Settings


async def rebuild(settings: Settings, *, apply: bool) -> projection.RebuildReport:
    conn = await asyncpg.connect(settings.database_url("order"))
    try:
        return await projection.rebuild(conn, apply=apply)
    finally:
        await conn.close()


def main(settings: Settings, *, check: bool) -> int:
    report = asyncio.run(rebuild(settings, apply=not check))
    verb = "rebuilt" if report.applied else "checked"
    print(
        f"orders projection {verb}: {report.orders} orders in the event store,"
        f" {report.differing} live rows differed{' and were replaced' if report.applied else ''}"
    )
    return 1 if check and report.differing else 0
