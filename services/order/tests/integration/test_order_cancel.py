"""A client cancel in each saga state: before the stock answer (both modes), while the payment
is pending (sync), and once the order has ended (confirmed or rejected: 409; cancelled: the
same answer again). Compensation gives back exactly what was reserved and voids a payment that
arrives late."""

from __future__ import annotations

import asyncio

import pytest

from services.order.tests.integration.conftest import Gate, command
from services.order.tests.integration.helpers import (
    APPROVE,
    DECLINE,
    assert_problem,
    body,
    create,
    eventually,
    stock,
)
from shopstream_tools.runtime import platform as runtime
from shopstream_tools.runtime import processes, topology

pytestmark = pytest.mark.integration


def _types(client, order_id: str) -> list[str]:
    return [e["type"] for e in client.get(f"/orders/{order_id}/events").json()["events"]]


async def test_cancel_while_the_sync_payment_is_pending_voids_the_late_authorization(
    platform, order_service
) -> None:
    gate = Gate()
    service = order_service(payment_gate=gate)
    with platform.client("product") as p:
        pid = create(p, stock=5)["id"]
    placed = await service.place(command(body([(pid, 2)], APPROVE), "sync"))
    order_id = str(placed.state.order_id)
    processing = asyncio.create_task(service.process_sync(placed.order))
    await asyncio.wait_for(gate.reached.wait(), 30)  # stock reserved, payment under way
    with platform.client("order") as c, platform.client("product") as p:
        assert c.get(f"/orders/{order_id}").json()["status"] == "STOCK_RESERVED"
        assert stock(p, pid) == 3
        cancelled = await asyncio.to_thread(c.post, f"/orders/{order_id}/cancel",
                                            json={"reason": "found it cheaper"})
        assert cancelled.status_code == 200, cancelled.text
        order = cancelled.json()
        assert (order["status"], order["cancelled_by"], order["reason"]) == (
            "CANCELLED", "client", "found it cheaper"
        )
        assert order["released"] == [{"product_id": pid, "quantity": 2}]
        assert stock(p, pid) == 5, "a sync order's stock comes back inside the cancel request"
        gate.open()
        final = await asyncio.wait_for(processing, 30)
        assert final.status.value == "CANCELLED"
        assert final.payment_voided and final.payment_id in service.payments.voided  # type: ignore[attr-defined]
        assert _types(c, order_id) == [
            "OrderPlaced", "StockReserved", "StockReleased", "OrderCancelled",
            "PaymentAuthorized", "PaymentVoided",
        ]
        assert stock(p, pid) == 5


async def test_cancel_while_the_sync_reservation_is_in_flight_releases_what_comes_back(
    platform, order_service
) -> None:
    gate = Gate()
    service = order_service(reserve_gate=gate)
    with platform.client("product") as p:
        pid = create(p, stock=5)["id"]
    placed = await service.place(command(body([(pid, 4)], APPROVE), "sync"))
    order_id = str(placed.state.order_id)
    processing = asyncio.create_task(service.process_sync(placed.order))
    await asyncio.wait_for(gate.reached.wait(), 30)
    with platform.client("order") as c, platform.client("product") as p:
        cancelled = await asyncio.to_thread(c.post, f"/orders/{order_id}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "CANCELLED"
        assert cancelled.json()["released"] == []  # nothing was known to be held yet
        gate.open()  # the reservation goes through now, for an order that is cancelled
        final = await asyncio.wait_for(processing, 30)
        assert final.status.value == "CANCELLED"
        assert final.reserved == final.released and final.held == ()
        assert _types(c, order_id) == [
            "OrderPlaced", "OrderCancelled", "StockReserved", "StockReleased"
        ]
        assert stock(p, pid) == 5
        assert p.get(f"/reservations/{order_id}").json()["status"] == "released"


def test_cancel_before_the_async_stock_answer_releases_the_late_reservation(platform) -> None:
    settings = platform.settings
    processes.stop(settings, "order-consume")  # the saga will not hear the answer for now
    try:
        with platform.client() as gw:
            pid = create(gw, stock=6)["id"]
            order_id = gw.post("/orders", json=body([(pid, 5)])).json()["id"]
            eventually(lambda: stock(gw, pid) == 1, "the product service reserved the stock")
            cancelled = gw.post(f"/orders/{order_id}/cancel")
            assert cancelled.status_code == 200, cancelled.text
            assert cancelled.json()["status"] == "CANCELLED"
            # The order knows of nothing to release yet, but the product service releases what it
            # holds for an order as soon as it hears the order ended (OrderCancelled).
            eventually(lambda: stock(gw, pid) == 6, "the product service released on OrderCancelled")
            again = gw.post(f"/orders/{order_id}/cancel")
            assert again.status_code == 200 and again.json() == cancelled.json(), "a no-op"
    finally:
        runtime.start_workers(settings, topology.ServiceSpec("order"))
    with platform.client() as gw:
        eventually(lambda: "StockReleased" in _types(gw, order_id), "the saga heard the late answer")
        assert stock(gw, pid) == 6, "released once: by the product service, then a no-op"
        order = gw.get(f"/orders/{order_id}").json()
        assert order["status"] == "CANCELLED"
        assert order["reserved"] == order["released"] == [{"product_id": pid, "quantity": 5}]
        assert _types(gw, order_id) == [
            "OrderPlaced", "OrderCancelled", "StockReserved", "StockReleased"
        ]


def test_cancel_of_orders_that_have_ended(platform) -> None:
    with platform.client() as gw:
        pid = create(gw, stock=3)["id"]
        confirmed = gw.post("/orders", params={"mode": "sync"}, json=body([(pid, 1)])).json()
        refused = gw.post(f"/orders/{confirmed['id']}/cancel")
        assert_problem(refused, 409, "status")
        assert refused.json()["order"]["status"] == "CONFIRMED"
        assert stock(gw, pid) == 2

        rejected = gw.post("/orders", params={"mode": "sync"}, json=body([(pid, 9)])).json()
        assert_problem(gw.post(f"/orders/{rejected['order_id']}/cancel"), 409, "status")

        declined = gw.post("/orders", params={"mode": "sync"}, json=body([(pid, 1)], DECLINE))
        order_id = declined.json()["order_id"]
        again = gw.post(f"/orders/{order_id}/cancel")
        assert again.status_code == 200, "a cancelled order stays cancelled: nothing to do"
        assert again.json()["cancelled_by"] == "saga" and again.json()["version"] == 5

        assert_problem(gw.post(f"/orders/{order_id}/cancel", json={"reason": " "}), 400, "reason")
        assert_problem(gw.post(f"/orders/{order_id}/cancel", json={"why": "x"}), 400, "why")
        eventually(lambda: stock(gw, pid) == 2, "every cancelled order's stock back")
