"""Bad input gets a 4xx problem+json naming the field, and writes nothing."""

from __future__ import annotations

import asyncpg
import pytest

from services.product.tests.integration.helpers import assert_problem, create, new_product

pytestmark = pytest.mark.integration


async def _counts(platform) -> tuple[int, int]:
    conn = await asyncpg.connect(platform.settings.database_url("product"))
    try:
        return (
            await conn.fetchval("SELECT count(*) FROM products"),
            await conn.fetchval("SELECT count(*) FROM outbox"),
        )
    finally:
        await conn.close()


BAD_CREATES = [
    ({"price": "abc"}, "price"),
    ({"price": -1}, "price"),
    ({"price": 1.001}, "price"),
    ({"price": True}, "price"),
    ({"stock": -5}, "stock"),
    ({"stock": "5"}, "stock"),
    ({"stock": 2.5}, "stock"),
    ({"name": ""}, "name"),
    ({"name": "x" * 300}, "name"),
    ({"sku": "lower case"}, "sku"),
    ({"category": 7}, "category"),
    ({"colour": "red"}, "colour"),
]


@pytest.mark.parametrize(("change", "field"), BAD_CREATES)
async def test_bad_create_names_the_field_and_writes_nothing(platform, change, field) -> None:
    before = await _counts(platform)
    with platform.client("product") as c:
        assert_problem(c.post("/products", json=new_product(**change)), 400, field)
    assert await _counts(platform) == before


async def test_missing_field_and_malformed_json(platform) -> None:
    before = await _counts(platform)
    body = new_product()
    del body["brand"]
    with platform.client("product") as c:
        assert_problem(c.post("/products", json=body), 400, "brand")
        assert_problem(
            c.post("/products", content=b"{not json", headers={"content-type": "application/json"}),
            400,
            "body",
        )
        assert_problem(c.post("/products", json=[1, 2]), 400, "body")
    assert await _counts(platform) == before


async def test_bad_updates_write_nothing(platform) -> None:
    with platform.client("product") as c:
        pid = create(c)["id"]
        before = await _counts(platform)
        assert_problem(c.patch(f"/products/{pid}", json={"price": -3}), 400, "price")
        assert_problem(c.patch(f"/products/{pid}", json={"stock": 3}), 400, "stock")
        assert_problem(
            c.patch(f"/products/{pid}", json={"name": "ok"}, headers={"If-Match": "nonsense"}),
            400,
            "If-Match",
        )
        assert_problem(c.put(f"/products/{pid}/stock", json={"stock": -1}), 400, "stock")
        assert_problem(
            c.post(f"/products/{pid}/stock/adjustments", json={"delta": "x"}), 400, "delta"
        )
        assert await _counts(platform) == before
        assert c.get(f"/products/{pid}").json()["version"] == 1


def test_unknown_and_malformed_ids(platform) -> None:
    with platform.client("product") as c:
        missing = "00000000-0000-4000-8000-000000000000"
        assert_problem(c.get(f"/products/{missing}"), 404, "id")
        assert_problem(c.patch(f"/products/{missing}", json={"name": "x"}), 404, "id")
        assert_problem(c.delete(f"/products/{missing}"), 404, "id")
        assert_problem(c.get("/products/not-a-uuid"), 400, "id")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 1000}, "limit"),
        ({"limit": 0}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"cursor": "garbage!"}, "cursor"),
        ({"cursor": "eyJub3QiOiJhIGN1cnNvciJ9"}, "cursor"),
        ({"sort": "random"}, "sort"),
        ({"sort": "relevance"}, "sort"),
        ({"min_price": "cheap"}, "min_price"),
        ({"min_price": 50, "max_price": 10}, "min_price"),
        ({"max_price": -1}, "max_price"),
        ({"in_stock": "perhaps"}, "in_stock"),
    ],
)
def test_bad_search_parameters(platform, params, field) -> None:
    with platform.client("product") as c:
        assert_problem(c.get("/products", params=params), 400, field)


def test_cursor_of_another_query_is_refused(platform) -> None:
    with platform.client("product") as c:
        category = create(c)["category"]
        create(c, category=category)
        page = c.get("/products", params={"category": category, "limit": 1}).json()
        assert page["next_cursor"]
        other = c.get(
            "/products",
            params={"category": category, "sort": "price_asc", "cursor": page["next_cursor"]},
        )
        assert_problem(other, 400, "cursor")
