"""Following an order without polling hard (long-poll, server-sent events), listing a customer's
orders page by page, and retries made safe by an Idempotency-Key."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import msgspec
import pytest

from services.order.tests.integration.helpers import (
    APPROVE,
    TERMINAL,
    assert_problem,
    body,
    create,
    new_customer,
    order_db,
    stock,
    wait_until_ended,
)
from shopstream_tools.runtime import platform as runtime
from shopstream_tools.runtime import processes, topology

pytestmark = pytest.mark.integration


def test_long_poll_answers_when_the_order_changes(platform) -> None:
    settings = platform.settings
    with platform.client() as gw:
        pid = create(gw, stock=5)["id"]
        processes.stop(settings, "order-consume")  # hold the saga until the poll is waiting
        try:
            placed = gw.post("/orders", json=body([(pid, 1)])).json()
            quiet = gw.get(f"/orders/{placed['id']}", params={"wait": 0.5, "version": 1})
            assert quiet.status_code == 200 and quiet.json()["version"] == 1, "nothing changed"
        finally:
            runtime.start_workers(settings, topology.ServiceSpec("order"))
        changed = gw.get(f"/orders/{placed['id']}", params={"wait": 25, "version": 1})
        assert changed.status_code == 200 and changed.json()["version"] > 1
        final = wait_until_ended(gw, placed["id"])
        assert final["status"] == "CONFIRMED"
        ended = gw.get(f"/orders/{placed['id']}", params={"wait": 25})
        assert ended.json()["version"] == final["version"], "an ended order answers at once"


def test_server_sent_events_follow_an_order_to_its_end(platform) -> None:
    with platform.client() as gw:
        pid = create(gw, stock=5)["id"]
        placed = gw.post("/orders", json=body([(pid, 1)])).json()
        seen: list[dict] = []
        with gw.stream("GET", f"/orders/{placed['id']}/updates", timeout=60) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            event = ""
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and event == "order":
                    seen.append(msgspec.json.decode(line.split(":", 1)[1].strip()))
        versions = [o["version"] for o in seen]
        assert versions == sorted(set(versions)) and seen[0]["id"] == placed["id"]
        assert seen[-1]["status"] in TERMINAL and seen[-1]["status"] == "CONFIRMED"
        assert_problem(gw.get(f"/orders/{uuid.uuid4()}/updates"), 404, "order_id")


async def test_list_walks_a_customers_orders_newest_first(platform) -> None:
    customer = new_customer()
    with platform.client("order") as c, platform.client("product") as p:
        pid = create(p, stock=20)["id"]
        ids = [c.post("/orders", params={"mode": "sync"}, json=body([(pid, 1)], customer)).json()
               for _ in range(5)]
        order_ids = [o.get("id") or o["order_id"] for o in ids]
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            params: dict = {"customer_id": customer, "limit": 2}
            if cursor:
                params["cursor"] = cursor
            page = c.get("/orders", params=params).json()
            pages += 1
            seen += [o["id"] for o in page["items"]]
            assert all(o["customer_id"] == customer for o in page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert pages == 3 and seen == list(reversed(order_ids)), "newest first, each once"
        statuses = {o["status"] for o in c.get("/orders", params={"customer_id": customer}).json()["items"]}
        wanted = statuses.pop()
        filtered = c.get("/orders", params={"customer_id": customer, "status": wanted}).json()
        assert filtered["items"] and all(o["status"] == wanted for o in filtered["items"])
        assert c.get("/orders", params={"customer_id": new_customer()}).json() == {
            "items": [], "next_cursor": None
        }
        assert len(c.get("/orders", params={"limit": 3}).json()["items"]) == 3


async def test_an_idempotency_key_makes_a_retry_safe(platform) -> None:
    customer = new_customer()
    with platform.client("order") as c, platform.client("product") as p:
        pid = create(p, stock=10)["id"]
        for mode, created in (("async", 202), ("sync", 201)):
            key = f"retry-{uuid.uuid4().hex}"
            payload = body([(pid, 1)], APPROVE if mode == "sync" else customer)
            first = c.post("/orders", params={"mode": mode}, json=payload,
                           headers={"Idempotency-Key": key})
            assert first.status_code == created, first.text
            if mode == "async":
                wait_until_ended(c, first.json()["id"])
            again = c.post("/orders", params={"mode": mode}, json=payload,
                           headers={"Idempotency-Key": key})
            assert again.status_code == created and again.headers["idempotent-replayed"] == "true"
            assert again.json()["id"] == first.json()["id"]
            assert again.json()["idempotency_key"] == key
            other = c.post("/orders", params={"mode": mode}, json=body([(pid, 2)], payload["customer_id"]),
                           headers={"Idempotency-Key": key})
            assert_problem(other, 422, "Idempotency-Key")
        # The same key from another customer is another order.
        key = f"shared-{uuid.uuid4().hex}"
        a, b = (
            c.post("/orders", params={"mode": "sync"}, json=body([(pid, 1)], new_customer()),
                   headers={"Idempotency-Key": key}).json()
            for _ in range(2)
        )
        assert (a.get("id") or a["order_id"]) != (b.get("id") or b["order_id"])
        before = stock(p, pid)  # sync orders are settled when answered

    key = f"race-{uuid.uuid4().hex}"
    async with httpx.AsyncClient(base_url=platform.url("order"), timeout=60,
                                 headers=platform.headers("order")) as ac:
        answers = await asyncio.gather(*(
            ac.post("/orders", params={"mode": "sync"}, json=body([(pid, 1)], customer),
                    headers={"Idempotency-Key": key})
            for _ in range(10)
        ))
    ids = {a.json().get("id") or a.json().get("order_id") for a in answers}
    assert len(ids) == 1, [a.text for a in answers]
    # A repeat sent while the first request runs is answered 409 "in progress" (it does not take
    # the same steps beside it); one sent after the order ended gets its answer. Never a 500, never
    # a 503, never a second order.
    assert all(a.status_code in (201, 402, 409) for a in answers), [a.status_code for a in answers]
    conn = await order_db(platform)
    try:
        assert await conn.fetchval(
            "SELECT count(*) FROM order_events WHERE order_id = $1 AND type = 'OrderPlaced'",
            uuid.UUID(ids.pop()),
        ) == 1
    finally:
        await conn.close()
    with platform.client("product") as p:
        assert stock(p, pid) >= before - 1, "one order reserved at most one unit"
