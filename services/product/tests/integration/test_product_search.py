"""Search, filters, sorts, ranking, facets and keyset pagination on the real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from services.product.tests.integration.helpers import create

pytestmark = pytest.mark.integration


def _ids(page: dict[str, Any]) -> list[str]:
    return [p["id"] for p in page["items"]]


def _walk(c: httpx.Client, params: dict[str, Any]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = ""
    while True:
        page = c.get("/products", params={**params, **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200, page.text
        body = page.json()
        items.extend(body["items"])
        cursor = body["next_cursor"]
        if not cursor:
            return items


@pytest.fixture
def shelf(platform) -> dict[str, Any]:
    """Twelve products under one brand of their own, with varied categories, prices and stock."""
    brand = f"Brand{uuid.uuid4().hex[:8]}"
    specs = [
        ("Lanternfish Desk Lamp", "Office", 25.00, 3),
        ("Lanternfish Floor Lamp", "Office", 80.00, 0),
        ("Reading Light", "Office", 15.50, 9),
        ("Camping Lantern", "Garden", 30.00, 2),
        ("Garden Hose", "Garden", 12.00, 0),
        ("Hose Reel", "Garden", 45.00, 4),
        ("Trail Backpack", "Sports", 60.00, 1),
        ("Yoga Mat", "Sports", 22.00, 8),
        ("Water Bottle", "Sports", 9.99, 20),
        ("Cookbook of Lamps", "Books", 18.00, 5),
        ("Atlas", "Books", 35.00, 0),
        ("Poetry", "Books", 11.00, 6),
    ]
    made = []
    with platform.client("product") as c:
        for name, category, price, stock in specs:
            description = (
                "a lamp for late nights" if name == "Reading Light" else f"{name.lower()} for you"
            )
            made.append(
                create(
                    c,
                    name=name,
                    category=category,
                    price=price,
                    stock=stock,
                    brand=brand,
                    description=description,
                )
            )
    return {"brand": brand, "products": made}


def test_filters(platform, shelf) -> None:
    brand = shelf["brand"]
    with platform.client("product") as c:
        everything = _walk(c, {"brand": brand})
        assert len(everything) == 12
        office = _walk(c, {"brand": brand, "category": "Office"})
        assert {p["name"] for p in office} == {
            "Lanternfish Desk Lamp",
            "Lanternfish Floor Lamp",
            "Reading Light",
        }
        ranged = _walk(c, {"brand": brand, "min_price": 20, "max_price": 45})
        assert sorted(p["price"] for p in ranged) == [22.0, 25.0, 30.0, 35.0, 45.0]
        stocked = _walk(c, {"brand": brand, "in_stock": "true"})
        assert len(stocked) == 9 and all(p["stock"] > 0 for p in stocked)
        combined = _walk(
            c, {"brand": brand, "category": "Garden", "in_stock": "true", "max_price": 40}
        )
        assert [p["name"] for p in combined] == ["Camping Lantern"]


def test_sorts(platform, shelf) -> None:
    brand = shelf["brand"]
    with platform.client("product") as c:
        by_price = [p["price"] for p in _walk(c, {"brand": brand, "sort": "price_asc", "limit": 5})]
        assert by_price == sorted(by_price) and len(by_price) == 12
        by_price_desc = [
            p["price"] for p in _walk(c, {"brand": brand, "sort": "price_desc", "limit": 5})
        ]
        assert by_price_desc == sorted(by_price_desc, reverse=True)
        by_name = [p["name"] for p in _walk(c, {"brand": brand, "sort": "name", "limit": 4})]
        assert by_name == sorted(by_name)
        newest = [p["id"] for p in _walk(c, {"brand": brand, "limit": 5})]
        assert newest == [p["id"] for p in reversed(shelf["products"])]


def test_full_text_ranking_and_typos(platform, shelf) -> None:
    brand = shelf["brand"]
    with platform.client("product") as c:
        lamps = c.get("/products", params={"brand": brand, "q": "lamp"}).json()
        names = [p["name"] for p in lamps["items"]]
        # the name weighs more than the description: names with "lamp" come before a description match
        assert set(names[:2]) == {"Lanternfish Desk Lamp", "Lanternfish Floor Lamp"}
        assert "Reading Light" in names
        assert lamps["relevance"] == sorted(lamps["relevance"], reverse=True)
        assert "Garden Hose" not in names
        typo = c.get("/products", params={"brand": brand, "q": "lanternfsh"}).json()
        assert {p["name"] for p in typo["items"]} >= {
            "Lanternfish Desk Lamp",
            "Lanternfish Floor Lamp",
        }
        stemmed = c.get("/products", params={"brand": brand, "q": "lamps"}).json()
        assert len(stemmed["items"]) >= 3


def test_relevance_pages_walk_every_hit_once(platform, shelf) -> None:
    with platform.client("product") as c:
        one_page = c.get(
            "/products", params={"brand": shelf["brand"], "q": "lamp", "limit": 50}
        ).json()
        walked = _walk(c, {"brand": shelf["brand"], "q": "lamp", "limit": 1})
        assert [p["id"] for p in walked] == _ids(one_page)


def test_facets_count_per_category_ignoring_the_category_filter(platform, shelf) -> None:
    with platform.client("product") as c:
        page = c.get(
            "/products", params={"brand": shelf["brand"], "category": "Books", "facets": "true"}
        ).json()
        assert page["facets"]["category"] == {"Office": 3, "Garden": 3, "Sports": 3, "Books": 3}
        stocked = c.get(
            "/products", params={"brand": shelf["brand"], "in_stock": "true", "facets": "true"}
        ).json()
        assert stocked["facets"]["category"] == {"Office": 2, "Garden": 2, "Sports": 3, "Books": 2}


async def test_pages_stay_stable_while_products_are_inserted(platform) -> None:
    brand = f"Busy{uuid.uuid4().hex[:8]}"
    with platform.client("product") as c:
        before = [create(c, brand=brand, price=10 + i)["id"] for i in range(30)]
    inserted: list[str] = []
    stop = asyncio.Event()

    async def writer() -> None:
        async with httpx.AsyncClient(
        base_url=platform.url("product"), timeout=30, headers=platform.headers("product")
    ) as ac:
            i = 0
            while not stop.is_set():
                r = await ac.post(
                    "/products",
                    json={
                        "sku": f"B-{uuid.uuid4().hex[:12].upper()}",
                        "name": f"Inserted {i}",
                        "category": "Busy",
                        "brand": brand,
                        "price": 15.5,
                        "stock": 1,
                    },
                )
                assert r.status_code == 201
                inserted.append(r.json()["id"])
                i += 1

    task = asyncio.create_task(writer())
    seen: dict[str, list[str]] = {}
    async with httpx.AsyncClient(
        base_url=platform.url("product"), timeout=30, headers=platform.headers("product")
    ) as ac:
        for sort in ("newest", "price_asc", "name"):
            ids: list[str] = []
            cursor = ""
            while True:
                params = {
                    "brand": brand,
                    "sort": sort,
                    "limit": 4,
                    **({"cursor": cursor} if cursor else {}),
                }
                body = (await ac.get("/products", params=params)).json()
                ids.extend(_ids(body))
                cursor = body["next_cursor"]
                await asyncio.sleep(0.01)
                if not cursor:
                    break
            seen[sort] = ids
    stop.set()
    await task
    assert len(inserted) > 0, "the writer must have inserted during the walk"
    for sort, ids in seen.items():
        assert len(ids) == len(set(ids)), f"{sort}: a product appeared twice"
        assert set(before) <= set(ids), (
            f"{sort}: a product that existed before the walk was skipped"
        )


async def test_a_search_shows_the_version_it_found_not_an_older_cached_copy(platform) -> None:
    """A search reads ids and versions and takes each product's JSON from the instance's cache only
    at that version. Here the row changes behind the cache's back (no event): the product page
    still serves the cached copy until its TTL, the search shows the row it matched."""
    from tests.platform_fixture import as_owner

    brand = f"Brand{uuid.uuid4().hex[:8]}"
    with platform.client("product") as c:
        made = create(c, name="Kettle", category="Kitchen", price=20.0, stock=5, brand=brand)
        page = c.get(f"/products/{made['id']}")
        assert page.status_code == 200 and page.json()["stock"] == 5  # now cached at version 1
        found = c.get("/products", params={"brand": brand})
        assert found.json()["items"] == [page.json()]  # the same JSON a product page serves
        assert found.content.count(page.content) == 1  # byte for byte: the cached page itself
    await as_owner(
        platform.settings,
        "product",
        f"UPDATE products SET stock = 0, version = version + 1 WHERE id = '{made['id']}'",
    )
    with platform.client("product") as c:
        assert c.get(f"/products/{made['id']}").json()["stock"] == 5  # the cache, no event came
        (item,) = c.get("/products", params={"brand": brand}).json()["items"]
        assert (item["stock"], item["version"], item["in_stock"]) == (0, 2, False)
        assert c.get("/products", params={"brand": brand, "in_stock": "true"}).json()["items"] == []


def test_a_search_answered_in_front_of_the_framework_is_the_routes_answer(platform, shelf) -> None:
    """A plain query string is answered in front of Litestar (hot_reads); a name the layer does not
    know (``via``, which the route ignores) sends the same search through the route."""
    brand = shelf["brand"]
    queries = [
        f"brand={brand}",
        f"brand={brand}&category=Office&in_stock=true&sort=price_asc&limit=2",
        f"brand={brand}&min_price=12&max_price=45.5&sort=name&facets=true",
        f"brand={brand}&q=lamp+light&limit=3",
        f"brand={brand}&q=lanternfsh",  # a typo: trigram similarity
    ]
    token = platform.customer_token(uuid.uuid4())
    with (
        platform.client("product") as c,
        platform.client("product", token=token) as signed,
        platform.client("product", token=None) as anonymous,
    ):
        for query in queries:
            fast, routed = c.get(f"/products?{query}"), c.get(f"/products?{query}&via=route")
            assert fast.status_code == routed.status_code == 200, (query, routed.text)
            assert fast.json() == routed.json() and fast.json()["items"], query
            for name in ("content-type", "cache-control"):
                assert fast.headers[name] == routed.headers[name], (query, name)
            cursor = fast.json()["next_cursor"]
            if cursor:  # the next page, both ways
                more = f"/products?{query}&cursor={cursor}"
                assert c.get(more).json() == c.get(f"{more}&via=route").json()
            assert signed.get(f"/products?{query}").json() == fast.json()
            assert anonymous.get(f"/products?{query}").json() == fast.json()
        refused = c.get("/products", headers={"Authorization": "Bearer forged"})
        assert refused.status_code == 401
        invalid = c.get("/products?limit=0")
        assert invalid.status_code == 400 and invalid.json()["errors"][0]["field"] == "limit"
