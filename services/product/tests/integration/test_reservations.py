"""Stock reservations: over HTTP (sync orders) and through Kafka (the async saga)."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest
from confluent_kafka import Producer

from services.product.tests.integration.helpers import assert_problem, create
from shopstream import events
from tests.platform_fixture import consume_events

pytestmark = pytest.mark.integration


def _order(*lines: tuple[str, int]) -> dict:
    return {
        "order_id": str(uuid.uuid4()),
        "lines": [{"product_id": p, "quantity": q} for p, q in lines],
    }


def test_reserve_all_or_nothing_release_exactly_and_commit(platform) -> None:
    with platform.client("product") as c:
        a, b = create(c, stock=5, price=2.5), create(c, stock=1)
        order = _order((a["id"], 3), (b["id"], 2))
        refused = c.post("/reservations", json=order)
        assert_problem(refused, 409, "lines[1].quantity")
        assert c.get(f"/products/{a['id']}").json()["stock"] == 5, (
            "nothing held when one line fails"
        )

        order = _order((a["id"], 3), (b["id"], 1))
        held = c.post("/reservations", json=order)
        assert held.status_code == 201, held.text
        assert {
            (x["product_id"], x["quantity"], x["unit_price_cents"]) for x in held.json()["lines"]
        } == {(a["id"], 3, 250), (b["id"], 1, 1000)}
        assert c.post("/reservations", json=order).status_code == 200, (
            "a retry is answered, not re-applied"
        )
        assert c.get(f"/products/{a['id']}").json()["stock"] == 2
        assert_problem(
            c.post("/reservations", json={**order, "lines": order["lines"][:1]}), 409, "lines"
        )

        released = c.post(f"/reservations/{order['order_id']}/release").json()
        assert released["status"] == "released" and len(released["lines"]) == 2
        assert c.get(f"/products/{a['id']}").json()["stock"] == 5
        assert c.get(f"/products/{b['id']}").json()["stock"] == 1
        again = c.post(f"/reservations/{order['order_id']}/release").json()
        assert again["lines"] == [], "a second release gives back nothing"
        assert c.get(f"/products/{a['id']}").json()["stock"] == 5

        sold = _order((a["id"], 2))
        assert c.post("/reservations", json=sold).status_code == 201
        assert c.post(f"/reservations/{sold['order_id']}/commit").json()["status"] == "committed"
        assert c.post(f"/reservations/{sold['order_id']}/release").json()["lines"] == []
        assert c.get(f"/products/{a['id']}").json()["stock"] == 3


def test_reservation_bad_input(platform) -> None:
    with platform.client("product") as c:
        pid = create(c)["id"]
        assert_problem(
            c.post(
                "/reservations",
                json={"order_id": "x", "lines": [{"product_id": pid, "quantity": 1}]},
            ),
            400,
            "order_id",
        )
        assert_problem(c.post("/reservations", json=_order((pid, 0))), 400, "lines[0].quantity")
        assert_problem(
            c.post("/reservations", json=_order((pid, 1), (pid, 2))), 400, "lines[1].product_id"
        )
        assert_problem(
            c.post("/reservations", json={"order_id": str(uuid.uuid4()), "lines": []}), 400, "lines"
        )
        assert_problem(
            c.post("/reservations", json=_order((str(uuid.uuid4()), 1))), 422, "lines[0].product_id"
        )
        assert_problem(c.post(f"/reservations/{uuid.uuid4()}/release"), 404, "order_id")
        assert c.get(f"/products/{pid}").json()["stock"] == 5


async def test_fifty_orders_for_the_last_ten_units_sell_exactly_ten(platform) -> None:
    with platform.client("product") as c:
        pid = create(c, stock=10)["id"]
    async with httpx.AsyncClient(timeout=30, headers=platform.headers("product")) as ac:
        urls = [platform.url("product", 1 + i % 2) for i in range(50)]  # both instances race
        answers = await asyncio.gather(
            *[ac.post(f"{url}/reservations", json=_order((pid, 1))) for url in urls]
        )
    statuses = [a.status_code for a in answers]
    assert statuses.count(201) == 10 and statuses.count(409) == 40, statuses
    with platform.client("product") as c:
        assert c.get(f"/products/{pid}").json()["stock"] == 0


def _placed(order_id: str, lines: list[tuple[str, int]], mode: str = "async") -> events.Event:
    data = {
        "order_id": order_id,
        "occurred_at": events.now_iso(),
        "customer_id": str(uuid.uuid4()),
        "shipping_address": {"name": "Ada", "line1": "1 Main St", "city": "Paris",
                             "postal_code": "75001", "country": "FR"},
        "mode": mode,
        "lines": [{"product_id": p, "quantity": q, "unit_price_cents": 100} for p, q in lines],
    }
    return events.new_event("OrderPlaced", order_id, data, source="test")


def _send(platform, *evs: events.Event) -> None:
    producer = Producer(
        {"bootstrap.servers": platform.settings.kafka_servers, "enable.idempotence": True}
    )
    for e in evs:
        producer.produce("order-events", key=e.aggregate_id.encode(), value=events.encode(e))
    producer.flush(10)


def test_saga_reservation_through_kafka_applies_each_event_once(platform) -> None:
    with platform.client("product") as c:
        pid = create(c, stock=4)["id"]
        scarce = create(c, stock=1)["id"]
    ok, short, sync_order = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    placed = _placed(ok, [(pid, 3)])
    _send(
        platform,
        placed,
        placed,
        _placed(short, [(pid, 1), (scarce, 2)]),
        _placed(sync_order, [(pid, 1)], "sync"),
    )
    answers = consume_events(
        platform.settings,
        "stock-events",
        keep=lambda e: e.aggregate_id in {ok, short},
        until=lambda evs: {e.aggregate_id for e in evs} == {ok, short},
    )
    by_order = {e.aggregate_id: e for e in answers}
    assert by_order[ok].type == "StockReserved" and by_order[ok].data["lines"] == [
        {"product_id": pid, "quantity": 3}
    ]
    assert by_order[short].type == "StockRejected" and by_order[short].data["product_id"] == scarce
    with platform.client("product") as c:
        assert c.get(f"/products/{pid}").json()["stock"] == 1, (
            "reserved once despite two deliveries; sync ignored"
        )
        released = events.new_event(
            "StockReleased",
            ok,
            {
                "order_id": ok,
                "lines": [{"product_id": pid, "quantity": 3}],
                "reason": "payment declined",
                "occurred_at": events.now_iso(),
            },
        )
        _send(platform, released, released)
        consume_events(
            platform.settings,
            "stock-events",
            keep=lambda e: e.aggregate_id == ok,
            until=lambda evs: any(e.type == "ReservationReleased" for e in evs),
        )
        assert c.get(f"/products/{pid}").json()["stock"] == 4
        assert c.get(f"/reservations/{ok}").json()["status"] == "released"


def test_an_order_that_ends_unconfirmed_holds_nothing(platform) -> None:
    """A sync order whose request lost the reservation's answer ends rejected without knowing what
    was held: its OrderRejected event alone gives the stock back."""
    with platform.client("product") as c:
        pid = create(c, stock=6)["id"]
        lost = _order((pid, 4))
        assert c.post("/reservations", json=lost).status_code == 201
        assert c.get(f"/reservations/{lost['order_id']}").json()["status"] == "held"
    oid = lost["order_id"]
    rejected = events.new_event(
        "OrderRejected",
        oid,
        {"order_id": oid, "reason": "product service unreachable", "occurred_at": events.now_iso()},
    )
    _send(platform, rejected)
    consume_events(
        platform.settings,
        "stock-events",
        keep=lambda e: e.aggregate_id == oid,
        until=lambda evs: any(e.type == "ReservationReleased" for e in evs),
    )
    with platform.client("product") as c:
        assert c.get(f"/reservations/{oid}").json()["status"] == "released"
    deadline = time.monotonic() + 10  # the instance's cache follows the StockChanged event
    with platform.client("product") as c:
        while c.get(f"/products/{pid}").json()["stock"] != 6:
            assert time.monotonic() < deadline
            time.sleep(0.05)
