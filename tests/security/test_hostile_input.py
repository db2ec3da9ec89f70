"""Hostile input through the gateway: a 4xx problem naming the field, nothing written, and
nothing in the services' logs at ERROR (an ERROR pages someone; a bad request is the client's)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from services.order.tests.integration.helpers import ADDRESS
from shopstream_tools.runtime import processes

pytestmark = pytest.mark.integration
JSON = {"Content-Type": "application/json"}
LOGS = ("product-1", "product-2", "order-1")


def _product(sku: str, **fields: object) -> dict[str, object]:
    return {"sku": sku, "name": "Hostile lamp", "category": "Lighting", "brand": "Acme",
            "price": "9.90", "stock": 1, **fields}  # fmt: skip


def _skus_stored(platform, prefix: str) -> int:
    async def count() -> int:
        conn = await asyncpg.connect(platform.settings.database_url("product"))
        try:
            return int(await conn.fetchval("SELECT count(*) FROM products WHERE sku LIKE $1",
                                           f"{prefix}%"))  # fmt: skip
        finally:
            await conn.close()

    return asyncio.run(count())


@pytest.fixture
def error_log_lines(platform) -> Iterator[list[str]]:
    """The ERROR lines the services log while the test runs."""
    paths = [processes.log_file(platform.settings, name) for name in LOGS]
    sizes = {p: p.stat().st_size if p.exists() else 0 for p in paths}
    found: list[str] = []
    yield found
    for path in paths:
        found.extend(_errors_after(path, sizes[path]))


def _errors_after(path: Path, offset: int) -> list[str]:
    if not path.exists():
        return []
    with path.open("rb") as log:
        log.seek(offset)
        lines = log.read().decode("utf-8", "replace").splitlines()
    return [line for line in lines if '"level": "ERROR"' in line or '"level":"ERROR"' in line]


def _assert_problem(answer: httpx.Response, status: int = 400, field: str = "") -> dict:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json"), answer.text
    problem = answer.json()
    assert problem["status"] == status
    if field:
        assert any(e["field"].startswith(field) for e in problem.get("errors", [])), problem
    return problem


def test_hostile_product_bodies_are_refused_and_nothing_is_written(
    platform, error_log_lines
) -> None:
    prefix = f"HOSTILE-{uuid.uuid4().hex[:8].upper()}"
    deep = "[" * 100_000 + "]" * 100_000
    wide = json.dumps(_product(f"{prefix}-WIDE", tags=["x"] * 5000))
    cases: list[tuple[bytes, str]] = [
        (json.dumps(_product(f"{prefix}-NUL", name="lamp\u0000")).encode(), "name"),
        (json.dumps(_product(f"{prefix}-CTL", name="lamp\u0007\u001b[31m")).encode(), "name"),
        (json.dumps(_product(f"{prefix}-BIG", stock=10**40)).encode(), "stock"),
        (json.dumps(_product(f"{prefix}-NEG", stock=-1)).encode(), "stock"),
        (json.dumps(_product(f"{prefix}-PRICE", price="1e308")).encode(), "price"),
        (json.dumps(_product(f"{prefix}-NAN", price="NaN")).encode(), "price"),
        (json.dumps(_product(f"{prefix}-SKU\u0000")).encode(), "sku"),
        (f'{{"sku":"{prefix}-UTF8","name":"\xff\xfe"}}'.encode("latin-1"), "body"),
        (b'{"sku": "' + prefix.encode() + b'-cut", "name": ', "body"),
        (deep.encode()[:60_000], "body"),
        (wide.encode(), "tags"),
    ]
    with platform.client() as admin:
        for raw, field in cases:
            _assert_problem(admin.post("/products", content=raw, headers=JSON), 400, field)
        # over the gateway's body limit (64k): refused before any service reads it
        _assert_problem(admin.post("/products", content=b" " * 70_000 + b"{}", headers=JSON), 413)
    assert _skus_stored(platform, prefix) == 0
    assert error_log_lines == []


def test_hostile_queries_paths_and_headers_are_4xx_problems(platform, error_log_lines) -> None:
    with platform.client() as admin:
        for params, field in (
            ({"q": "lamp\x00"}, "q"),
            ({"brand": "\x1b[2J"}, "brand"),
            ({"limit": str(10**30)}, "limit"),
            ({"limit": "-1"}, "limit"),
            ({"min_price": "9" * 400}, "min_price"),
            ({"max_price": "-Infinity"}, "max_price"),
            ({"cursor": "\x00" * 10}, "cursor"),
            ({"q": "x" * 5000}, "q"),
        ):
            _assert_problem(admin.get("/products", params=params), 400, field)
        _assert_problem(admin.get("/products/%00"), 400)  # the gateway's: nginx refuses a NUL
        _assert_problem(admin.get("/products/%01"), 400, "id")
        _assert_problem(admin.get("/orders/" + "9" * 300), 400, "order_id")
        _assert_problem(admin.get("/orders", params={"customer_id": "\x00"}), 400, "customer_id")
        too_big = {"X-Padding": "x" * 20_000}
        _assert_problem(admin.get("/products", headers=too_big), 431)
        stale = {"If-Match": '"' + "9" * 400 + '"'}
        answer = admin.put(f"/products/{uuid.uuid4()}", json=_product("X"), headers=stale)
        assert 400 <= answer.status_code < 500, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
    assert error_log_lines == []


def test_hostile_orders_are_refused_and_nothing_is_written(platform, error_log_lines) -> None:
    customer = str(uuid.uuid4())

    def order(lines: list[dict[str, object]], **fields: object) -> dict[str, object]:
        return {"lines": lines, "shipping_address": dict(ADDRESS), **fields}

    with platform.client(token=platform.customer_token(customer)) as shopper:
        for body, field in (
            (order([{"product_id": str(uuid.uuid4()), "quantity": 10**40}]), "lines"),
            (order([{"product_id": "\x00", "quantity": 1}]), "lines"),
            (order([{"product_id": str(uuid.uuid4()), "quantity": 1}] * 100_000), ""),
            (order([], shipping_address="\x00"), "shipping_address"),
            (
                order(
                    [{"product_id": str(uuid.uuid4()), "quantity": 1}],
                    shipping_address={**ADDRESS, "line1": "12\x00 Row"},
                ),
                "shipping_address",
            ),
        ):
            raw = json.dumps(body).encode()
            answer = shopper.post("/orders", content=raw, headers=JSON)
            assert answer.status_code in (400, 413, 422), answer.text
            _assert_problem(answer, answer.status_code, field)
        listed = shopper.get("/orders", params={"customer_id": customer})
        assert listed.status_code == 200, listed.text
        assert listed.json()["items"] == []
    assert error_log_lines == []
