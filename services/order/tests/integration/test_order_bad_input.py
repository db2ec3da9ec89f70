"""Bad input gets a 4xx problem+json naming the field at fault, and writes nothing: no event,
no projection row, no idempotency key, no outbox message."""

from __future__ import annotations

import uuid

import pytest

from services.order.tests.integration.helpers import (
    assert_problem,
    body,
    create,
    new_customer,
    order_db,
    stock,
)

pytestmark = pytest.mark.integration


async def _written(platform, customer: str) -> tuple[int, int, int]:
    conn = await order_db(platform)
    try:
        return (
            await conn.fetchval("SELECT count(*) FROM orders WHERE customer_id = $1", uuid.UUID(customer)),
            await conn.fetchval(
                "SELECT count(*) FROM idempotency_keys WHERE customer_id = $1", uuid.UUID(customer)
            ),
            await conn.fetchval("SELECT count(*) FROM outbox"),
        )
    finally:
        await conn.close()


async def test_bad_orders_are_refused_and_write_nothing(platform) -> None:
    customer = new_customer()
    with platform.client("product") as p:
        pid = create(p, stock=5)["id"]
        other = create(p, stock=5)["id"]
    before = await _written(platform, customer)
    unknown = str(uuid.uuid4())
    address = body([(pid, 1)])["shipping_address"]
    cases = [
        # (body, status, field)
        (body([], customer), 422, "lines"),
        (body([(pid, 0)], customer), 422, "lines[0].quantity"),
        (body([(pid, -3)], customer), 422, "lines[0].quantity"),
        (body([(pid, 1001)], customer), 422, "lines[0].quantity"),
        (body([(pid, 1), (other, 1), (pid, 2)], customer), 422, "lines[2].product_id"),
        (body([(str(uuid.uuid4()), 1) for _ in range(101)], customer), 422, "lines"),
        (body([(pid, 1), (unknown, 1)], customer), 422, "lines[1].product_id"),
        (body([("not-a-uuid", 1)], customer), 422, "lines[0].product_id"),
        (body([(pid, 1)], "12345"), 422, "customer_id"),
        (body([(pid, 1)], customer, shipping_address={**address, "country": "XX"}), 422,
         "shipping_address.country"),
        (body([(pid, 1)], customer, shipping_address={**address, "city": "  "}), 422,
         "shipping_address.city"),
        (body([(pid, 1)], customer, shipping_address={**address, "name": "x" * 201}), 422,
         "shipping_address.name"),
        (body([(pid, 1)], customer, shipping_address={**address, "line1": "a\u0007b"}), 422,
         "shipping_address.line1"),
        # Wrong JSON types and unknown fields are refused before any rule is checked.
        (body([(pid, "2")], customer), 400, "lines[0].quantity"),
        (body([(pid, 1.5)], customer), 400, "lines[0].quantity"),
        (body([(pid, True)], customer), 400, "lines[0].quantity"),
        ({**body([(pid, 1)], customer), "discount": 10}, 400, "discount"),
        ({"customer_id": customer, "lines": [{"product_id": pid, "quantity": 1}]}, 400,
         "shipping_address"),
    ]
    with platform.client("order") as c:
        for payload, status, field in cases:
            for mode in ("async", "sync"):
                answer = c.post("/orders", params={"mode": mode}, json=payload)
                assert_problem(answer, status, field)
        assert_problem(c.post("/orders", params={"mode": "later"}, json=body([(pid, 1)], customer)),
                       422, "mode")
        assert_problem(c.post("/orders", json=body([(pid, 1)], customer, mode="fast")), 422, "mode")
        assert_problem(c.post("/orders", json=body([(pid, 1)], customer),
                              headers={"X-Processing-Mode": "SYNC"}), 422, "mode")
        assert_problem(
            c.post("/orders", json=body([(pid, 1)], customer), headers={"Idempotency-Key": "a b"}),
            422, "Idempotency-Key",
        )
        assert_problem(
            c.post("/orders", content=b"{not json", headers={"content-type": "application/json"}),
            400, "body",
        )
        assert_problem(c.post("/orders", json=[1, 2]), 400, "body")
        nested = c.post("/orders", json=body([(pid, 1)], customer,
                                             shipping_address={**address, "zip": "1"}))
        assert nested.status_code == 400
        assert [e["field"].rsplit(".", 1)[-1] for e in nested.json()["errors"]] == ["zip"]
    assert await _written(platform, customer) == before
    with platform.client("product") as p:
        assert stock(p, pid) == 5 and stock(p, other) == 5


def test_bad_ids_and_queries_get_400_and_unknown_orders_404(platform) -> None:
    with platform.client("order") as c:
        assert_problem(c.get("/orders/not-a-uuid"), 400, "order_id")
        assert_problem(c.get(f"/orders/{uuid.uuid4()}"), 404, "order_id")
        assert_problem(c.get(f"/orders/{uuid.uuid4()}/events"), 404, "order_id")
        assert_problem(c.post(f"/orders/{uuid.uuid4()}/cancel"), 404, "order_id")
        assert_problem(c.post("/orders/12/cancel"), 400, "order_id")
        assert_problem(c.get("/orders", params={"customer_id": "bob"}), 400, "customer_id")
        assert_problem(c.get("/orders", params={"status": "LOST"}), 400, "status")
        assert_problem(c.get("/orders", params={"limit": 0}), 400, "limit")
        assert_problem(c.get("/orders", params={"limit": 10_000}), 400, "limit")
        assert_problem(c.get("/orders", params={"cursor": "%%%"}), 400, "cursor")
        order_id = str(uuid.uuid4())
        assert_problem(c.get(f"/orders/{order_id}", params={"wait": 99}), 400, "wait")
        assert_problem(c.get(f"/orders/{order_id}", params={"wait": -1}), 400, "wait")
        assert_problem(c.get(f"/orders/{order_id}", params={"wait": 1, "version": -1}), 400,
                       "version")


def test_gateway_refuses_what_it_must_before_the_service(platform) -> None:
    with platform.client() as gw:
        too_big = body([(str(uuid.uuid4()), 1)], shipping_address={"name": "x" * 70_000})
        assert gw.post("/orders", json=too_big).status_code == 413
        assert gw.post("/orders", content=b"a=b",
                       headers={"content-type": "application/x-www-form-urlencoded"}
                       ).status_code == 415
        assert gw.put(f"/orders/{uuid.uuid4()}", json={}).status_code == 405
