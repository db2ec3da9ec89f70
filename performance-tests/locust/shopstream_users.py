"""Locust users for the performance lab (run by ``shopstream lab``, configured by environment).

LAB_WEIGHTS   task weights, e.g. ``search=3,by_id=6,list_orders=1,place_order=2``
LAB_DATA      JSON written by the lab: product ids, order products, customers, search windows;
              unset, the file runs on its own against any gateway (the post-deploy smoke test):
              it finds its products by searching the catalog (``locust -f ... --host URL``)
LAB_MODE      processing mode of placed orders: sync, async, or mixed (each order draws one)
LAB_THINK     think time between a user's requests, seconds (0: none, a closed loop at full speed)
LAB_PHASES    [[seconds, users, spawn rate], ...]: a load shape (the burst test); empty: -u/-t
LAB_OUT       where the results go at the end: HDR histogram per request name, statuses, timeline
LAB_STATUS    a small JSON rewritten every second: elapsed, users, requests, rate, failures
LAB_METRICS_PORT  when set, Prometheus metrics on 127.0.0.1:<port>/metrics while it runs: requests
              by name, method and status, failures, a latency histogram, users (the lab lists
              the port as a scrape target for as long as this process runs)

Answers that are business outcomes (409 out of stock, 402 payment declined) count as successes
with their status; 429, 5xx and transport errors are failures.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import random
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from catalog_search import search_path
from gevent import spawn_later
from locust import FastHttpUser, LoadTestShape, between, constant, events
from locust.env import Environment
from prometheus_client import (
    CollectorRegistry,
    Gauge,
    Histogram,
    disable_created_metrics,
    make_wsgi_app,
)
from prometheus_client import Counter as PromCounter

from shopstream_tools.lab.hdr import Latencies

DATA: dict[str, Any] = (
    json.loads(Path(os.environ["LAB_DATA"]).read_text()) if os.environ.get("LAB_DATA") else {}
)
# On its own (no lab data) it browses only, unless told to place orders too.
_DEFAULT_WEIGHTS = "by_id=1" if DATA else "search=3,by_id=6,list_orders=1"
WEIGHTS = {
    k: int(v)
    for k, v in (
        item.split("=")
        for item in os.environ.get("LAB_WEIGHTS", _DEFAULT_WEIGHTS).split(",")
        if item
    )
}
MODE = os.environ.get("LAB_MODE", "async")
THINK = float(os.environ.get("LAB_THINK", "0") or 0)
PHASES = json.loads(os.environ.get("LAB_PHASES", "[]") or "[]")
BUSINESS = {402, 409}

_hist: dict[str, Latencies] = {}
_counts: Counter[str] = Counter()
_failures: Counter[str] = Counter()
_statuses: dict[str, Counter[str]] = {}
_second: list[float] = []
_second_failures = [0]
_timeline: list[dict[str, Any]] = []
_started = [0.0]
_started_wall = [0.0]
_env: list[Environment] = []

# Its own registry: what the load generator did, without the default process collectors.
REGISTRY = CollectorRegistry()
disable_created_metrics()  # a *_created series per label set is noise at a scrape a second
REQUESTS = PromCounter(
    "locust_requests", "Requests sent, by name, method and HTTP status (0: no answer)",
    ["name", "method", "status"], registry=REGISTRY,
)  # fmt: skip
FAILURES = PromCounter(
    "locust_request_failures", "Requests counted as failures (429, 5xx, transport errors)",
    ["name", "method"], registry=REGISTRY,
)  # fmt: skip
LATENCY = Histogram(
    "locust_request_duration_seconds", "Response time as the user saw it",
    ["name", "method"], registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)  # fmt: skip
USERS = Gauge("locust_users", "Users running", registry=REGISTRY)


@events.request.add_listener
def _on_request(
    request_type: str,
    name: str,
    response_time: float,
    response_length: int,
    exception: Exception | None = None,
    response: Any = None,
    **_: Any,
) -> None:
    key = f"{request_type} {name}"
    _hist.setdefault(key, Latencies()).record_ms(max(response_time, 0.001))
    _counts[key] += 1
    status = getattr(response, "status_code", 0) or 0
    _statuses.setdefault(key, Counter())[str(status)] += 1
    _second.append(response_time)
    REQUESTS.labels(name, request_type, str(status)).inc()
    LATENCY.labels(name, request_type).observe(max(response_time, 0.0) / 1000)
    if exception is not None:
        _failures[key] += 1
        _second_failures[0] += 1
        FAILURES.labels(name, request_type).inc()


def _users() -> int:
    return _env[0].runner.user_count if _env and _env[0].runner else 0


USERS.set_function(_users)


def _serve_metrics() -> None:
    """gevent's own WSGI server: one more greenlet in Locust's loop, no thread of its own."""
    port = os.environ.get("LAB_METRICS_PORT")
    if not port:
        return
    from gevent.pywsgi import WSGIServer

    WSGIServer(("127.0.0.1", int(port)), make_wsgi_app(REGISTRY), log=None).start()


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    _serve_metrics()


def _tick() -> None:
    """Once a second: close the second in the timeline and rewrite the status file."""
    now = time.monotonic() - _started[0]
    values = Latencies.of_ms(v for v in _second if v > 0)
    entry: dict[str, Any] = {
        "t": round(now, 2),
        "requests": len(_second),
        "failures": _second_failures[0],
        "users": _users(),
    }
    if values.count:
        entry.update(
            p50=values.percentile_ms(50), p95=values.percentile_ms(95), p99=values.percentile_ms(99)
        )
    _timeline.append(entry)
    _second.clear()
    _second_failures[0] = 0
    status = os.environ.get("LAB_STATUS")
    if status:
        Path(status).write_text(
            json.dumps(
                {
                    "users": entry["users"],
                    "requests": sum(_counts.values()),
                    "failures": sum(_failures.values()),
                    "rate": entry["requests"],
                }
            )
        )
    spawn_later(1.0, _tick)


def _discover(host: str, pages: int = 5) -> dict[str, Any]:
    """The lab's data, found through the gateway's search: products in stock, their categories
    and price ranges (the search windows), and made-up customers."""
    import urllib.request

    found: list[dict[str, Any]] = []
    cursor = ""
    for _ in range(pages):
        url = f"{host.rstrip('/')}/products?in_stock=true&limit=100" + (
            f"&cursor={cursor}" if cursor else ""
        )
        request = urllib.request.Request(url, headers={"X-Client-Id": "locust-discovery"})
        with urllib.request.urlopen(request, timeout=15) as answer:
            page = json.loads(answer.read())
        found += page["items"]
        cursor = page.get("next_cursor") or ""
        if not cursor:
            break
    if not found:
        raise SystemExit(f"no product in stock at {host}: nothing to browse or order")
    prices: dict[str, list[float]] = {}
    for p in found:
        prices.setdefault(p["category"], []).append(float(p["price"]))
    windows = [
        [cat, int(min(v)), max(int(min(v)), int(max(v))), 1, max(1, int(max(v) - min(v)) // 2)]
        for cat, v in prices.items()
    ]
    return {
        "products": [p["id"] for p in found],
        "order_products": [p["id"] for p in found if p["stock"] >= 10] or [p["id"] for p in found],
        "windows": windows,
        "customers": [str(uuid.uuid4()) for _ in range(20)],
    }


@events.test_start.add_listener
def _on_start(environment: Environment, **_: Any) -> None:
    if not DATA:
        DATA.update(_discover(environment.host or "http://127.0.0.1:8080"))
    _env.append(environment)
    _started[0] = time.monotonic()
    _started_wall[0] = time.time()
    spawn_later(1.0, _tick)


@events.quitting.add_listener
def _on_quit(environment: Environment, **_: Any) -> None:
    out = os.environ.get("LAB_OUT")
    if not out:
        return
    seconds = time.monotonic() - _started[0] if _started[0] else 0.0
    result = {
        "seconds": seconds,
        "started_wall": _started_wall[0],
        "users": _users(),
        "requests": {
            key: {
                "count": _counts[key],
                "failures": _failures[key],
                "statuses": dict(_statuses.get(key, {})),
                "hdr": hist.encode(),
            }
            for key, hist in _hist.items()
        },
        "timeline": _timeline,
    }
    Path(out).write_text(json.dumps(result))


def _address() -> dict[str, str]:
    return {
        "name": "Lab Customer",
        "line1": "1 Benchmark Way",
        "city": "Lisbon",
        "postal_code": "1000-001",
        "country": "PT",
    }


@functools.cache
def _popularity() -> list[float]:
    """Cumulative Zipf weights (rank r: 1/r) over DATA's products, in their listed order."""
    return list(itertools.accumulate(1.0 / rank for rank in range(1, len(DATA["products"]) + 1)))


class Shopper(FastHttpUser):
    """One shopper: browses (search, product pages), looks at their orders, places orders."""

    wait_time = between(THINK * 0.5, THINK * 1.5) if THINK > 0 else constant(0)
    network_timeout = 30.0
    connection_timeout = 10.0

    def on_start(self) -> None:
        self.client_id = f"lab-{uuid.uuid4().hex[:12]}"
        customers = DATA.get("customers") or [str(uuid.uuid4())]
        self.customer = random.choice(customers)
        # The catalog is browsed the way a storefront calls it, with no credentials, so the
        # gateway's read cache may answer; orders carry the shopper's token.
        self.browsing = {"X-Client-Id": self.client_id, "Accept": "application/json"}
        self.headers = dict(self.browsing)
        token = (DATA.get("tokens") or {}).get(self.customer)
        if token:  # a shopper signs in: orders are placed and listed as this customer
            self.headers["Authorization"] = f"Bearer {token}"

    def _get(self, path: str, name: str, headers: dict[str, str] | None = None) -> None:
        sent = self.headers if headers is None else headers
        with self.client.get(path, name=name, headers=sent, catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"HTTP {r.status_code}")

    def search(self) -> None:
        self._get(search_path(random.choice(DATA["windows"])), "/products?search", self.browsing)

    def by_id(self) -> None:
        # popularity follows Zipf's law (s=1) over the lab's products, as a shop's best sellers do
        pid = random.choices(DATA["products"], cum_weights=_popularity())[0]
        self._get(f"/products/{pid}", "/products/{id}", self.browsing)

    def list_orders(self) -> None:
        self._get(f"/orders?customer_id={self.customer}&limit=20", "/orders?customer_id")

    def place_order(self) -> None:
        mode = random.choice(("sync", "async")) if MODE == "mixed" else MODE
        pool = DATA["order_products"]
        scarce = DATA.get("scarce_products") or []
        lines = [{"product_id": pid, "quantity": 1} for pid in random.sample(pool, 2)]
        if scarce and random.random() < DATA.get("scarce_share", 0.0):
            lines.append({"product_id": random.choice(scarce), "quantity": 1})
        body = {
            "customer_id": self.customer,
            "lines": lines,
            "shipping_address": _address(),
            "mode": mode,
        }
        headers = {**self.headers, "Idempotency-Key": uuid.uuid4().hex}
        with self.client.post(
            "/orders", json=body, name=f"/orders ({mode})", headers=headers, catch_response=True
        ) as r:
            if r.status_code in (200, 201, 202) or r.status_code in BUSINESS:
                r.success()
            elif r.status_code == 503 and r.headers.get("Retry-After"):
                # Refused, nothing written (the saga's backlog is full): a client waits as asked.
                r.failure("HTTP 503 refused, Retry-After")
                time.sleep(float(r.headers["Retry-After"]))
            else:
                r.failure(f"HTTP {r.status_code}")

    tasks = {
        fn: WEIGHTS[name]
        for name, fn in (
            ("search", search),
            ("by_id", by_id),
            ("list_orders", list_orders),
            ("place_order", place_order),
        )
        if WEIGHTS.get(name)
    }


if PHASES:

    class Phases(LoadTestShape):
        """The burst: users per phase, one phase after the other, then stop."""

        def tick(self) -> tuple[int, float] | None:
            elapsed = self.get_run_time()
            for seconds, users, rate in PHASES:
                if elapsed < seconds:
                    return int(users), float(rate)
                elapsed -= seconds
            return None
