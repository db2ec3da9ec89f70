"""Locust users of the peers comparison (run by ``shopstream lab peers``): the same four kinds of
work against shopstream's gateway and against each peer, one user class per (platform, work).

PEERS_CATEGORIES  comma-separated shop categories (the seeded catalog's)
PEERS_PRODUCTS    number of seeded products (Oscar's ids are 1..N)
PEERS_COUNTRY     shipping country URL for Oscar's checkout
Order answers 409 (out of stock) count as successes: a business outcome, not a failure.
"""

from __future__ import annotations

import os
import random
import uuid

from locust import FastHttpUser, task

CATEGORIES = os.environ.get("PEERS_CATEGORIES", "Books,Electronics").split(",")
PRODUCTS = int(os.environ.get("PEERS_PRODUCTS", "100000"))
ALL_CATEGORIES = ["Electronics", "Computers", "Home & Kitchen", "Sports & Outdoors", "Books",
                  "Toys & Games", "Beauty", "Garden", "Fashion", "Office"]  # fmt: skip
ADDRESS = {"name": "Lab Customer", "line1": "1 Benchmark Way", "city": "Lisbon",
           "postal_code": "1000-001", "country": "PT"}  # fmt: skip


class _Shopstream(FastHttpUser):
    abstract = True
    ids: list[str] = []

    def on_start(self) -> None:
        if not _Shopstream.ids:
            r = self.client.get("/products?in_stock=true&limit=100", name="discover")
            _Shopstream.ids = [p["id"] for p in r.json()["items"]]

    def order(self, mode: str) -> None:
        lines = [{"product_id": pid, "quantity": 1} for pid in random.sample(self.ids, 2)]
        body = {"customer_id": str(uuid.uuid4()), "lines": lines, "shipping_address": ADDRESS,
                "mode": mode}  # fmt: skip
        with self.client.post("/orders", json=body, headers={"Idempotency-Key": str(uuid.uuid4())},
                              name=f"order {mode}", catch_response=True) as r:  # fmt: skip
            if r.status_code in (200, 201, 202, 409):
                r.success()


class ShopstreamById(_Shopstream):
    @task
    def by_id(self) -> None:
        self.client.get(f"/products/{random.choice(self.ids)}", name="by_id")


class ShopstreamSearch(_Shopstream):
    @task
    def search(self) -> None:
        cat = random.choice(CATEGORIES)
        self.client.get(
            f"/products?category={cat}&in_stock=true&sort=price_asc&limit=20", name="search"
        )


class ShopstreamCategory(_Shopstream):
    @task
    def category(self) -> None:
        self.client.get(f"/products?category={random.choice(CATEGORIES)}&limit=20", name="category")


class ShopstreamOrderSync(_Shopstream):
    @task
    def place(self) -> None:
        self.order("sync")


class ShopstreamOrderAsync(_Shopstream):
    @task
    def place(self) -> None:
        self.order("async")


class OscarById(FastHttpUser):
    @task
    def by_id(self) -> None:
        self.client.get(f"/api/products/{random.randint(1, PRODUCTS)}/", name="by_id")


class OscarSearch(FastHttpUser):
    @task
    def search(self) -> None:
        # Oscar's storefront search (haystack); the query names a category, sorted by price
        word = random.choice(CATEGORIES).split()[0].lower()
        self.client.get(f"/search/?q={word}&sort_by=price-asc", name="search")


class OscarCategory(FastHttpUser):
    @task
    def category(self) -> None:
        # the loader creates the ten categories in name order: ids 1..10
        n, name = random.choice(list(enumerate(sorted(ALL_CATEGORIES), start=1)))
        slug = "-".join(w for w in name.lower().replace("&", " ").split())
        self.client.get(f"/catalogue/category/{slug}_{n}/", name="category")


class OscarOrder(FastHttpUser):
    @task
    def place(self) -> None:
        self.client.cookiejar.clear()  # a new guest (session, basket) per order
        product = f"{self.host}/api/products/{random.randint(1, PRODUCTS)}/"
        self.client.post("/api/basket/add-product/", json={"url": product, "quantity": 1},
                         name="order: add to basket")  # fmt: skip
        basket = self.client.get("/api/basket/", name="order: basket").json()["url"]
        address = {"first_name": "Lab", "last_name": "Customer", "line1": ADDRESS["line1"],
                   "line4": ADDRESS["city"], "postcode": ADDRESS["postal_code"],
                   "country": f"{self.host}/api/countries/PT/"}  # fmt: skip
        with self.client.post("/api/checkout/", json={"basket": basket, "guest_email": "lab@example.com",
                              "shipping_address": address}, name="order", catch_response=True) as r:  # fmt: skip
            if r.status_code in (200, 406):  # 406: the basket line went out of stock
                r.success()
