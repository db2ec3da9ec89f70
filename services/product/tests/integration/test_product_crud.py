"""Catalog CRUD against the real service, PostgreSQL and Kafka."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from services.product.tests.integration.helpers import create, new_product

pytestmark = pytest.mark.integration


def test_create_read_replace_patch_delete(platform) -> None:
    with platform.client("product") as c:
        created = create(c, price=19.99, stock=7)
        pid = created["id"]
        assert created["version"] == 1 and created["price"] == 19.99 and created["in_stock"]

        read = c.get(f"/products/{pid}")
        assert read.status_code == 200 and read.headers["etag"] == '"1"'
        assert read.json() == created

        replacement = {k: v for k, v in new_product(name="Renamed").items() if k != "stock"}
        put = c.put(f"/products/{pid}", json=replacement, headers={"If-Match": '"1"'})
        assert put.status_code == 200, put.text
        assert put.json()["name"] == "Renamed" and put.json()["version"] == 2
        assert put.json()["stock"] == 7, "a full update leaves stock alone"

        patch = c.patch(f"/products/{pid}", json={"price": 5.5}, headers={"If-Match": '"2"'})
        assert patch.status_code == 200 and patch.json()["price"] == 5.5
        assert patch.json()["name"] == "Renamed" and patch.headers["etag"] == '"3"'

        assert c.get(f"/products/{pid}", headers={"If-None-Match": '"3"'}).status_code == 304

        deleted = c.delete(f"/products/{pid}", headers={"If-Match": '"3"'})
        assert deleted.status_code == 204
        assert c.get(f"/products/{pid}").status_code == 404
        assert c.delete(f"/products/{pid}").status_code == 404


def test_stock_set_and_adjust(platform) -> None:
    with platform.client("product") as c:
        pid = create(c, stock=3)["id"]
        r = c.put(f"/products/{pid}/stock", json={"stock": 10})
        assert r.status_code == 200 and r.json()["stock"] == 10
        r = c.post(f"/products/{pid}/stock/adjustments", json={"delta": -4})
        assert r.status_code == 200 and r.json()["stock"] == 6
        r = c.post(f"/products/{pid}/stock/adjustments", json={"delta": -7})
        assert r.status_code == 409
        assert c.get(f"/products/{pid}").json()["stock"] == 6
        r = c.put(f"/products/{pid}/stock", json={"stock": 0})
        assert r.json()["in_stock"] is False


def test_stale_write_is_refused(platform) -> None:
    with platform.client("product") as c:
        pid = create(c)["id"]
        assert (
            c.patch(
                f"/products/{pid}", json={"name": "First"}, headers={"If-Match": '"1"'}
            ).status_code
            == 200
        )
        stale = c.patch(f"/products/{pid}", json={"name": "Second"}, headers={"If-Match": '"1"'})
        assert stale.status_code == 412
        assert c.get(f"/products/{pid}").json()["name"] == "First"


async def test_concurrent_writers_with_the_same_etag_one_wins(platform) -> None:
    with platform.client("product") as c:
        pid = create(c)["id"]
    async with httpx.AsyncClient(
        base_url=platform.url("product"), timeout=30, headers=platform.headers("product")
    ) as ac:
        answers = await asyncio.gather(
            *[
                ac.patch(
                    f"/products/{pid}", json={"name": f"Writer {i}"}, headers={"If-Match": '"1"'}
                )
                for i in range(12)
            ]
        )
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(200) == 1 and statuses.count(412) == 11, statuses


async def test_concurrent_stock_removals_never_go_below_zero(platform) -> None:
    with platform.client("product") as c:
        pid = create(c, stock=10)["id"]
    async with httpx.AsyncClient(
        base_url=platform.url("product"), timeout=30, headers=platform.headers("product")
    ) as ac:
        answers = await asyncio.gather(
            *[ac.post(f"/products/{pid}/stock/adjustments", json={"delta": -1}) for _ in range(30)]
        )
    statuses = [a.status_code for a in answers]
    assert statuses.count(200) == 10 and statuses.count(409) == 20, statuses
    with platform.client("product") as c:
        assert c.get(f"/products/{pid}").json()["stock"] == 0


def test_duplicate_sku_is_a_conflict(platform) -> None:
    with platform.client("product") as c:
        first = create(c)
        again = c.post("/products", json=new_product(sku=first["sku"]))
        assert again.status_code == 409
        assert again.json()["errors"][0]["field"] == "sku"
        other = create(c)
        renamed = c.patch(f"/products/{other['id']}", json={"sku": first["sku"]})
        assert renamed.status_code == 409 and renamed.json()["errors"][0]["field"] == "sku"


def test_openapi_document_is_served(platform) -> None:
    with platform.client("product") as c:
        doc = c.get("/docs/openapi.json").json()
        assert "/products" in doc["paths"] and "/products/{product_id}" in doc["paths"]
        assert "NewProduct" in str(doc["components"])
        assert c.get("/docs").status_code == 200


def test_a_product_page_reads_the_same_in_front_of_the_framework(platform) -> None:
    """`/products/<uuid>` is answered by hot_reads; the same id spelt without hyphens goes through
    the framework's route. Both answers, anonymous and signed in, must be the same."""
    with platform.client("product") as c:
        pid = create(c, price=12.5)["id"]
    compact = pid.replace("-", "")
    for token in (None, platform.customer_token(uuid.uuid4())):
        with platform.client("product", token=token) as c:
            layer, framework = c.get(f"/products/{pid}"), c.get(f"/products/{compact}")
            for answer in (layer, framework):
                assert answer.status_code == 200, answer.text
            assert layer.json() == framework.json() and layer.json()["price"] == 12.5
            for header in ("etag", "cache-control", "content-type"):
                assert layer.headers[header] == framework.headers[header], header
            echoed = c.get(f"/products/{pid}", headers={"X-Request-Id": "page-1"})
            assert echoed.headers["x-request-id"] == "page-1"
    with platform.client("product", token="forged") as c:
        refused = c.get(f"/products/{pid}")
        assert refused.status_code == 401 and refused.json()["errors"][0]["field"] == "Authorization"
