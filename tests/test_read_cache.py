"""The gateway's read cache (docs/gateway.md#read-cache), through the real gateway and services:
anonymous catalog reads are answered from it for the service's max-age, a request with a token
never is (every token is still verified), and nothing private is ever kept."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from services.order.tests.integration.helpers import body, create
from shopstream_tools.runtime import gateway

pytestmark = pytest.mark.integration


def _log_entries(platform, marker: str, count: int) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """The access log's lines of the requests whose id starts with marker (flushed within 1 s)."""
    log = gateway.access_log_path(platform.settings)
    deadline = time.monotonic() + 5
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        lines = log.read_text().splitlines() if log.exists() else []
        found = [e for e in map(json.loads, lines) if e["request_id"].startswith(marker)]
        if len(found) >= count:
            break
        time.sleep(0.1)
    return sorted(found, key=lambda e: e["msec"])


def test_anonymous_reads_are_served_from_the_cache_within_max_age(platform) -> None:
    with platform.client() as admin, platform.client(token=None) as anonymous:
        pid = create(admin, stock=5)["id"]
        marker = uuid.uuid4().hex
        # kept from a URI's second request on: a product read once costs no cache file
        first, second, third = (
            anonymous.get(f"/products/{pid}", headers={"X-Request-Id": f"{marker}-{n}"})
            for n in (1, 2, 3)
        )
        assert first.status_code == second.status_code == third.status_code == 200
        assert first.headers["cache-control"] == (
            f"public, max-age={platform.settings.product_read_max_age}"
        )
        assert third.json() == first.json()
        entries = _log_entries(platform, marker, 3)
        assert [e["cache"] for e in entries] == ["MISS", "MISS", "HIT"], entries
        assert entries[2]["upstream_addr"] == "", "a hit never reaches an instance"

        # a change is seen by anonymous readers once max-age has passed
        changed = admin.patch(f"/products/{pid}", json={"name": "Renamed by the cache test"})
        assert changed.status_code == 200, changed.text
        # (the instances' own caches hear of the change through Kafka, within moments)
        deadline = time.monotonic() + 10
        while admin.get(f"/products/{pid}").json()["name"] != "Renamed by the cache test":
            assert time.monotonic() < deadline, "the service never served the change"
            time.sleep(0.1)
        deadline = time.monotonic() + platform.settings.product_read_max_age + 1
        while anonymous.get(f"/products/{pid}").json()["name"] != "Renamed by the cache test":
            assert time.monotonic() < deadline, "the cache kept a changed product past max-age"
            time.sleep(0.2)


def test_a_request_with_a_token_is_never_answered_from_the_cache(platform) -> None:
    with platform.client() as admin, platform.client(token=None) as anonymous:
        pid = create(admin, stock=5)["id"]
        anonymous.get(f"/products/{pid}")
        anonymous.get(f"/products/{pid}")  # now cached
        marker = uuid.uuid4().hex
        signed = admin.get(f"/products/{pid}", headers={"X-Request-Id": f"{marker}-1"})
        assert signed.status_code == 200
        forged = anonymous.get(
            f"/products/{pid}",
            headers={"X-Request-Id": f"{marker}-2", "Authorization": "Bearer a.b." + "c" * 40},
        )
        assert forged.status_code == 401, "a token the service never saw was let through"
        entries = _log_entries(platform, marker, 2)
        assert [e["cache"] for e in entries] == ["BYPASS", "BYPASS"], entries


def test_searches_are_cached_and_orders_never(platform) -> None:
    with platform.client() as admin, platform.client(token=None) as anonymous:
        pid = create(admin, stock=5)["id"]
        customer = str(uuid.uuid4())
        order = platform.client(token=platform.customer_token(customer))
        placed = order.post("/orders", json=body([(pid, 1)], customer))
        assert placed.status_code in (201, 202), placed.text
        oid = placed.json()["id"]
        marker = uuid.uuid4().hex
        query = f"/products?category=cache-test-{marker}"
        for n in (1, 2, 3):
            assert (
                anonymous.get(query, headers={"X-Request-Id": f"{marker}-s{n}"}).status_code == 200
            )
            assert (
                order.get(f"/orders/{oid}", headers={"X-Request-Id": f"{marker}-o{n}"}).status_code
                == 200
            )
        order.close()
        entries = {e["request_id"]: e["cache"] for e in _log_entries(platform, marker, 6)}
        assert [entries[f"{marker}-s{n}"] for n in (1, 2, 3)] == ["MISS", "MISS", "HIT"], entries
        # the orders route has no cache at all: nginx reports no cache status for it
        assert entries[f"{marker}-o1"] == entries[f"{marker}-o2"] == "", entries
