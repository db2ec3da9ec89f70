"""EXPLAIN on a large copy of a table, for the tests that check a hot query keeps its index as the
shop grows (issue 17): the copy lives in a schema of its own, dropped afterwards."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import asyncpg

from shopstream.config import Settings

SCHEMA = "plan_check"
Statements = dict[str, tuple[str, list[Any]]]


def scans(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """Every scan node of a plan tree, depth first."""
    found = [plan] if "Scan" in plan["Node Type"] else []
    for child in plan.get("Plans", []):
        found.extend(scans(child))
    return found


async def plans_on_copy(
    settings: Settings, database: str, fill: Sequence[str], search_path: str, statements: Statements
) -> dict[str, Any]:
    """Run ``fill`` (statements creating and filling the copies in SCHEMA), then EXPLAIN each
    statement with ``search_path``: the plans by name."""
    # the admin: the service's own role may create nothing (docs/security.md)
    conn = await asyncpg.connect(settings.admin_database_url(database))
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; CREATE SCHEMA {SCHEMA}")
        for sql in fill:
            await conn.execute(sql)
        await conn.execute(f"SET search_path = {search_path}")
        out = {}
        for name, (sql, args) in statements.items():
            row = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args)
            out[name] = json.loads(row)[0]["Plan"]
        return out
    finally:
        await conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        await conn.close()
