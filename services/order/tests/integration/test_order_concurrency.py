"""Fifty orders race for the last ten units: exactly ten are confirmed, in either mode."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from services.order.tests.integration.helpers import APPROVE, TERMINAL, body, create, stock

pytestmark = pytest.mark.integration


async def _ended(client: httpx.AsyncClient, order_ids: list[str], timeout: float = 120) -> list[dict]:
    deadline = time.monotonic() + timeout
    pending = set(order_ids)
    final: dict[str, dict] = {}
    while pending:
        assert time.monotonic() < deadline, f"{len(pending)} orders did not end"
        answers = await asyncio.gather(*(client.get(f"/orders/{i}") for i in pending))
        for answer in answers:
            order = answer.json()
            if order["status"] in TERMINAL:
                final[order["id"]] = order
        pending -= final.keys()
        if pending:
            await asyncio.sleep(0.25)
    return [final[i] for i in order_ids]


@pytest.mark.parametrize("mode", ["async", "sync"])
async def test_fifty_orders_for_the_last_ten_units_sell_exactly_ten(platform, mode: str) -> None:
    with platform.client("product") as p:
        pid = create(p, stock=10)["id"]
    payload = body([(pid, 1)], APPROVE)
    limits = httpx.Limits(max_connections=50)
    async with httpx.AsyncClient(base_url=platform.url("order"), timeout=60, limits=limits,
                                 headers=platform.headers("order")) as c:
        answers = await asyncio.gather(
            *(c.post("/orders", params={"mode": mode}, json=payload) for _ in range(50))
        )
        statuses = [a.status_code for a in answers]
        if mode == "async":
            assert statuses == [202] * 50, statuses
        else:
            assert sorted(statuses) == [201] * 10 + [409] * 40, statuses
        ids = [a.json().get("order_id") or a.json()["id"] for a in answers]
        assert len(set(ids)) == 50
        final = await _ended(c, ids)
    outcomes = [o["outcome"] for o in final]
    assert outcomes.count("confirmed") == 10, outcomes
    assert outcomes.count("stock_rejected") == 40, outcomes
    assert all(o["reserved"] == [] for o in final if o["outcome"] == "stock_rejected")
    with platform.client("product") as p:
        assert stock(p, pid) == 0
