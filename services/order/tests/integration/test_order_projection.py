"""The orders table is a projection of the event store: `shopstream rebuild-projections` gives
back exactly the live rows, notices rows that drifted, and repairs them."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from services.order.adapters import event_store, projection, queries
from services.order.domain.state import fold
from services.order.entrypoints.views import order_view, recorded_view
from services.order.tests.integration.conftest import command
from services.order.tests.integration.helpers import (
    APPROVE,
    DECLINE,
    body,
    create,
    order_db,
    wait_until_ended,
)

pytestmark = pytest.mark.integration


def _cli(platform, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **platform.settings.as_env()}
    return subprocess.run(
        [sys.executable, "-m", "shopstream_tools.cli", "rebuild-projections", *args],
        env=env, capture_output=True, text=True, timeout=120,
    )


async def test_rebuild_gives_back_the_live_projection(platform) -> None:
    with platform.client() as gw:
        pid = create(gw, stock=3)["id"]
        ids = [
            gw.post("/orders", params={"mode": "sync"}, json=body([(pid, 1)])).json()["id"],
            gw.post("/orders", params={"mode": "sync"}, json=body([(pid, 1)], DECLINE)).json()["order_id"],
            gw.post("/orders", params={"mode": "sync"}, json=body([(pid, 7)])).json()["order_id"],
            gw.post("/orders", json=body([(pid, 1)])).json()["id"],
        ]
        for order_id in ids:
            wait_until_ended(gw, order_id)
    keys = [uuid.UUID(i) for i in ids]
    conn = await order_db(platform)
    try:
        columns = ", ".join(projection.COLUMNS)
        query = f"SELECT {columns} FROM orders WHERE id = ANY($1::uuid[]) ORDER BY id"
        live = [tuple(r) for r in await conn.fetch(query, keys)]
        assert len(live) == 4
        for order_id in keys:  # each live row is the fold of its stream
            order = await event_store.load(conn, order_id)
            assert order is not None
            rebuilt = projection.row_of(fold(order.events))
            stored = await conn.fetchrow(
                f"SELECT {', '.join(f'{c}::text' if c in projection.JSON_COLUMNS else c for c in projection.COLUMNS)}"
                " FROM orders WHERE id = $1", order_id)
            assert stored is not None
            for column, want, got in zip(projection.COLUMNS, rebuilt, stored, strict=True):
                if column in projection.JSON_COLUMNS and want is not None:
                    assert await conn.fetchval("SELECT $1::jsonb = $2::jsonb", want, got), column
                else:
                    assert want == got, column

        checked = _cli(platform, "--check")
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert " 0 live rows differed" in checked.stdout

        await conn.execute("UPDATE orders SET status = 'PENDING', version = 1 WHERE id = $1", keys[0])
        await conn.execute("DELETE FROM orders WHERE id = $1", keys[1])
        drifted = _cli(platform, "--check")
        assert drifted.returncode == 1 and " 2 live rows differed" in drifted.stdout, drifted.stdout
        assert await conn.fetchval("SELECT status FROM orders WHERE id = $1", keys[0]) == "PENDING"

        repaired = _cli(platform)
        assert repaired.returncode == 0, repaired.stdout + repaired.stderr
        assert [tuple(r) for r in await conn.fetch(query, keys)] == live
        assert _cli(platform, "--check").returncode == 0
    finally:
        await conn.close()


async def test_the_event_store_is_append_only(platform) -> None:
    conn = await order_db(platform)
    try:
        order_id = await conn.fetchval("SELECT order_id FROM order_events LIMIT 1")
        with pytest.raises(Exception, match="append-only"):
            await conn.execute("UPDATE order_events SET type = 'X' WHERE order_id = $1", order_id)
        with pytest.raises(Exception, match="append-only"):
            await conn.execute("DELETE FROM order_events WHERE order_id = $1", order_id)
        order = await event_store.load(conn, order_id)
        assert order is not None
        with pytest.raises(event_store.VersionConflict):
            async with conn.transaction():
                await event_store.append(conn, order_id, order.version - 1, order.events[-1:])
    finally:
        await conn.close()


async def test_an_accepted_orders_answer_is_its_projection_row(platform, order_service) -> None:
    """A 202 is built from the state just recorded, not read back: it must be what the row says."""
    service = order_service()
    with platform.client("product") as p:
        pid = create(p, stock=5)["id"]
    placed = await service.place(command(body([(pid, 2)], APPROVE), "sync"))  # nothing moves it on
    conn = await order_db(platform)
    try:
        row = await queries.get(conn, placed.state.order_id)
    finally:
        await conn.close()
    assert row is not None
    from_row = order_view(row)
    from_row.timestamps.pop("published", None)  # the relay's, after the answer
    assert recorded_view(placed.state) == from_row
