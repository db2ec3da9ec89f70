"""Helpers for the order-service integration tests (real platform: PostgreSQL, Kafka, services)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx

from services.order.adapters.payment_simulator import (
    ALWAYS_APPROVE_CUSTOMER,
    ALWAYS_DECLINE_CUSTOMER,
)
from services.product.tests.integration.helpers import assert_problem, create

__all__ = [
    "APPROVE",
    "DECLINE",
    "TERMINAL",
    "assert_problem",
    "body",
    "create",
    "eventually",
    "new_customer",
    "order_db",
    "stock",
    "wait_until_ended",
]

APPROVE = str(ALWAYS_APPROVE_CUSTOMER)
DECLINE = str(ALWAYS_DECLINE_CUSTOMER)
TERMINAL = {"CONFIRMED", "CANCELLED", "REJECTED"}
ADDRESS = {"name": "Ada Lovelace", "line1": "12 Analytical Row", "city": "London",
           "postal_code": "NW1 6XE", "country": "GB"}


def body(lines: list[tuple[str, int]], customer: str = APPROVE, **overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "customer_id": customer,
        "lines": [{"product_id": p, "quantity": q} for p, q in lines],
        "shipping_address": dict(ADDRESS),
    }
    payload.update(overrides)
    return payload


def stock(client: httpx.Client, product_id: str) -> int:
    """The product's stock as the database holds it now.

    ``GET /products/{id}`` may answer from an instance's read cache, which follows changes made
    by other processes (the saga consumers) only as fast as product-events reach it; search reads
    the database. The test products each have a category of their own (see ``create``).
    """
    category = client.get(f"/products/{product_id}").json()["category"]
    page = client.get("/products", params={"category": category, "limit": 100}).json()
    return int(next(p["stock"] for p in page["items"] if p["id"] == product_id))


def eventually(check: Callable[[], Any], what: str, timeout: float = 60, pause: float = 0.1) -> Any:
    """Poll ``check`` until it returns something truthy, failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        time.sleep(pause)


def wait_until_ended(client: httpx.Client, order_id: str, timeout: float = 60) -> dict[str, Any]:
    """Follow an order with the long-poll until it reaches a terminal status."""
    deadline = time.monotonic() + timeout
    order = client.get(f"/orders/{order_id}").json()
    while order["status"] not in TERMINAL:
        assert time.monotonic() < deadline, f"order {order_id} still {order['status']}"
        answer = client.get(f"/orders/{order_id}", params={"wait": 5, "version": order["version"]})
        assert answer.status_code == 200, answer.text
        order = answer.json()
    return dict(order)


async def order_db(platform: Any) -> asyncpg.Connection:
    return await asyncpg.connect(platform.settings.database_url("order"))


def new_customer() -> str:
    return str(uuid.uuid4())
