"""Locust users of the peers comparison (run by ``shopstream lab peers``): the same four kinds of
work against shopstream's gateway and against each peer, one user class per (platform, work).

PEERS_CATEGORIES  comma-separated shop categories (the seeded catalog's)
PEERS_PRODUCTS    number of seeded products (Oscar's ids are 1..N)
PEERS_DATA        JSON written by the runner (shopstream_tools.lab.peers_cli): shopstream's catalog,
                  products in stock, search price windows, customers with the bearer tokens the
                  local issuer minted for them, Oscar's category ids
PEERS_PACING      seconds: each user starts its work once every PEERS_PACING seconds, from a random
                  phase (an open loop of users / PEERS_PACING per second while every answer comes
                  within PEERS_PACING); unset: each user starts again as soon as it is answered
PEERS_STATUSES    where to write, at the end, each request name's HTTP statuses and its exact
                  median and 99th percentile (Locust's CSV rounds them to whole milliseconds)
Order answers 409 (out of stock) and 402 (payment declined) on shopstream and 406 (the basket went
out of stock) on Oscar count as successes: business outcomes, not failures.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gevent
from catalog_search import search_path
from locust import FastHttpUser, events, task

CATEGORIES = os.environ.get("PEERS_CATEGORIES", "Books,Electronics").split(",")
PRODUCTS = int(os.environ.get("PEERS_PRODUCTS", "100000"))
DATA: dict[str, Any] = (
    json.loads(Path(os.environ["PEERS_DATA"]).read_text()) if os.environ.get("PEERS_DATA") else {}
)
ADDRESS = {"name": "Lab Customer", "line1": "1 Benchmark Way", "city": "Lisbon",
           "postal_code": "1000-001", "country": "PT"}  # fmt: skip


PACING = float(os.environ.get("PEERS_PACING") or 0)


class _Paced(FastHttpUser):
    """Closed loop unless PEERS_PACING is set; then an open loop: each user has a schedule of its
    own, a random phase within the pacing and then one start every PEERS_PACING seconds, so the
    arrivals are spread from the first second. (Locust's `constant_pacing` runs a user's second
    task at once after its first, which doubled the rate of a one-minute step.)"""

    abstract = True

    def on_start(self) -> None:
        self.next_start = time.monotonic()
        if PACING:
            self.next_start += random.uniform(0, PACING)
            gevent.sleep(self.next_start - time.monotonic())

    def wait_time(self) -> float:
        if not PACING:
            return 0.0
        self.next_start += PACING
        return max(0.0, self.next_start - time.monotonic())  # 0: it fell behind its schedule

    @contextlib.contextmanager
    def flow(self, name: str) -> Iterator[None]:
        """Time a flow of several requests as one request `name` (a peer's order: basket or cart,
        shipping, payment, checkout), from its first request to the end of its last."""
        started = time.perf_counter()
        failed: Exception | None = None
        try:
            yield
        except Exception as exc:  # the flow's own failure: counted, then Locust sees it too
            failed = exc
            raise
        finally:
            self.environment.events.request.fire(
                request_type="FLOW", name=name, response_time=1000 * (time.perf_counter() - started),
                response_length=0, exception=failed, context={}, response=None)  # fmt: skip


class _Shopstream(_Paced):
    """A signed-in shopper, as the lab's (shopstream_users.py): its own X-Client-Id, so the
    gateway's limiter counts it apart, and a customer's bearer token on orders; the catalog is
    browsed without credentials, as a storefront does."""

    abstract = True

    def on_start(self) -> None:
        super().on_start()
        self.customer, token = random.choice(DATA["customers"])
        self.browsing = {
            "X-Client-Id": f"peers-{uuid.uuid4().hex[:12]}",
            "Accept": "application/json",
        }
        self.signed_in = {**self.browsing, "Authorization": f"Bearer {token}"}
        self.ids: list[str] = DATA["products"]

    def get(self, path: str, name: str) -> None:
        self.client.get(path, name=name, headers=self.browsing)

    def order(self, mode: str) -> None:
        lines = [{"product_id": pid, "quantity": 1} for pid in random.sample(self.ids, 2)]
        body = {"customer_id": self.customer, "lines": lines, "shipping_address": ADDRESS,
                "mode": mode}  # fmt: skip
        headers = {**self.signed_in, "Idempotency-Key": str(uuid.uuid4())}
        with self.client.post("/orders", json=body, headers=headers, name=f"order {mode}",
                              catch_response=True) as r:  # fmt: skip
            if r.status_code in (200, 201, 202, 402, 409):  # 402: payment declined
                r.success()


class ShopstreamById(_Shopstream):
    @task
    def by_id(self) -> None:
        self.get(f"/products/{random.choice(DATA['catalog'])}", "by_id")


class ShopstreamSearch(_Shopstream):
    @task
    def search(self) -> None:
        # the lab's search: a category's products in stock within a price window, cheapest first
        w = random.choice([w for w in DATA["windows"] if w[0] in CATEGORIES])
        self.get(search_path(w), "search")


class ShopstreamCategory(_Shopstream):
    @task
    def category(self) -> None:
        self.get(f"/products?category={random.choice(CATEGORIES)}&limit=20", "category")


class ShopstreamOrderSync(_Shopstream):
    @task
    def place(self) -> None:
        self.order("sync")


class ShopstreamOrderAsync(_Shopstream):
    @task
    def place(self) -> None:
        self.order("async")


class OscarById(_Paced):
    @task
    def by_id(self) -> None:
        self.client.get(f"/api/products/{random.randint(1, PRODUCTS)}/", name="by_id")


class OscarSearch(_Paced):
    @task
    def search(self) -> None:
        # Oscar's storefront search (Haystack), a kind of product of the category, cheapest first
        kind = random.choice(DATA["kinds"][random.choice(CATEGORIES)]).lower()
        self.client.get(f"/search/?q={kind}&sort_by=price-asc", name="search")


class OscarCategory(_Paced):
    @task
    def category(self) -> None:
        # the shopsite's listing over oscar-api (peers/oscar/shopsite/views.py): Oscar's storefront
        # category page lists through Haystack, whose search-server-less backend cannot filter
        pk = DATA["oscar_categories"][random.choice(CATEGORIES)]
        self.client.get(f"/api/categories/{pk}/products/?limit=20", name="category")


class OscarOrder(_Paced):
    @task
    def place(self) -> None:
        with self.flow("order flow"):
            self.checkout()

    def checkout(self) -> None:
        self.client.cookiejar.clear()  # a new guest (session, basket) per order
        product = f"{self.host}/api/products/{random.choice(DATA['oscar_order_products'])}/"
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


class _Medusa(_Paced):
    """Medusa's store API, as its storefronts call it: the publishable key of the sales channel
    and the region (prices in its currency) on every request."""

    abstract = True

    def on_start(self) -> None:
        super().on_start()
        self.medusa = DATA["medusa"]
        self.headers = {"x-publishable-api-key": self.medusa["publishable_key"]}
        self.region = self.medusa["region_id"]


class MedusaById(_Medusa):
    @task
    def by_id(self) -> None:
        pid = random.choice(self.medusa["products"])
        self.client.get(f"/store/products/{pid}?region_id={self.region}", name="by_id",
                        headers=self.headers)  # fmt: skip


class MedusaSearch(_Medusa):
    @task
    def search(self) -> None:
        # Medusa's store search: q over the product's text within a category (no price sort
        # without its index engine, which is experimental)
        category = random.choice(CATEGORIES)
        kind = random.choice(DATA["kinds"][category]).lower()
        cat = self.medusa["categories"][category]
        self.client.get(f"/store/products?q={kind}&category_id={cat}&limit=20&region_id={self.region}",
                        name="search", headers=self.headers)  # fmt: skip


class MedusaCategory(_Medusa):
    @task
    def category(self) -> None:
        cat = self.medusa["categories"][random.choice(CATEGORIES)]
        self.client.get(f"/store/products?category_id={cat}&limit=20&region_id={self.region}",
                        name="category", headers=self.headers)  # fmt: skip


class MedusaOrder(_Medusa):
    @task
    def place(self) -> None:
        """A guest's cart, one line, the flat shipping option, the system payment provider, then
        the cart completed into an order (Medusa's completeCartWorkflow: it reserves stock)."""
        with self.flow("order flow"):
            self.checkout()

    def checkout(self) -> None:
        h, m = self.headers, self.medusa
        cart = self.client.post("/store/carts", headers=h, name="order: cart", json={
            "region_id": self.region, "email": "lab@example.com", "shipping_address": {
                "first_name": "Lab", "last_name": "Customer", "address_1": ADDRESS["line1"],
                "city": ADDRESS["city"], "postal_code": ADDRESS["postal_code"],
                "country_code": "pt"}}).json()["cart"]["id"]  # fmt: skip
        variant = random.choice(m["variants"])
        line = self.client.post(f"/store/carts/{cart}/line-items", headers=h, name="order: line",
                                json={"variant_id": variant, "quantity": 1})  # fmt: skip
        if line.status_code != 200:
            return
        self.client.post(f"/store/carts/{cart}/shipping-methods", headers=h,
                         name="order: shipping", json={"option_id": m["shipping_option_id"]})  # fmt: skip
        pay = self.client.post("/store/payment-collections", headers=h, name="order: payment",
                               json={"cart_id": cart}).json()["payment_collection"]["id"]  # fmt: skip
        self.client.post(f"/store/payment-collections/{pay}/payment-sessions", headers=h,
                         name="order: payment session", json={"provider_id": "pp_system_default"})  # fmt: skip
        with self.client.post(f"/store/carts/{cart}/complete", headers=h, name="order",
                              catch_response=True) as r:  # fmt: skip
            if r.status_code == 200 and r.json().get("type") != "order":
                r.failure(f"cart not completed: {r.text[:200]}")


STATUSES: dict[str, Counter[int]] = {}
TIMES: dict[str, list[float]] = {}


@events.request.add_listener
def _status(name: str, response_time: float, response: Any = None, **_: Any) -> None:
    """HTTP statuses and response times per request name: how many orders were business
    refusals rather than orders placed, and percentiles below a millisecond."""
    STATUSES.setdefault(name, Counter())[getattr(response, "status_code", 0) or 0] += 1
    TIMES.setdefault(name, []).append(response_time)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


@events.quitting.add_listener
def _write_statuses(**_: Any) -> None:
    if os.environ.get("PEERS_STATUSES"):
        out = {
            name: {"statuses": STATUSES[name], "p50_ms": _percentile(times, 50),
                   "p99_ms": _percentile(times, 99)}
            for name, times in TIMES.items()
        }  # fmt: skip
        Path(os.environ["PEERS_STATUSES"]).write_text(json.dumps(out))
