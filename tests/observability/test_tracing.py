"""One async order is one trace: POST through the gateway, the order service and its SQL, the outbox
relay, Kafka, the product service's saga consumer and back, until CONFIRMED, all in Zipkin.

The test platform samples no new traces (ratio 0); this request carries a sampled ``traceparent``,
which every hop honours (parent-based sampling), so only it is traced.
"""

from __future__ import annotations

import secrets
import uuid

import httpx
import pytest

from services.order.tests.integration.helpers import APPROVE, body, wait_until_ended
from services.product.tests.integration.helpers import create
from tests.observability import prom

pytestmark = pytest.mark.integration


def zipkin(platform, path: str, **params) -> httpx.Response:
    return httpx.get(
        f"http://127.0.0.1:{platform.settings.zipkin_port}/api/v2/{path}", params=params, timeout=10
    )


def test_an_async_order_is_one_trace_from_post_to_confirmed(platform) -> None:
    trace_id = secrets.token_hex(16)
    request_id = f"trace-test-{uuid.uuid4().hex[:12]}"
    with platform.client() as gw:
        product = create(gw, stock=5)
        placed = gw.post(
            "/orders",
            params={"mode": "async"},
            json=body([(product["id"], 1)], APPROVE),
            headers={
                "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01",
                "X-Request-Id": request_id,
            },
        )
        assert placed.status_code == 202, placed.text
        order_id = placed.json()["id"]
        assert wait_until_ended(gw, order_id)["status"] == "CONFIRMED"

    def names(spans: list[dict]) -> set[tuple[str, str]]:
        return {(s["localEndpoint"]["serviceName"], s.get("name", "")) for s in spans}

    def whole_trace() -> list[dict] | None:
        response = zipkin(platform, f"trace/{trace_id}")
        if response.status_code != 200:
            return None
        spans = response.json()
        seen = names(spans)
        wanted = [
            ("order", "post /orders"),
            ("order-relay", "publish order-events"),
            ("product-consume", "process order-events"),
            ("product-relay", "publish stock-events"),
            ("order-consume", "process stock-events"),
        ]
        # OrderPlaced and, after the saga's last step, OrderConfirmed: both published in this trace
        publishes = sum(1 for s in spans if s.get("name") == "publish order-events")
        return spans if all(w in seen for w in wanted) and publishes >= 2 else None

    last: list[dict] = []

    def describe() -> str:
        response = zipkin(platform, f"trace/{trace_id}")
        if response.status_code == 200:
            last[:] = response.json()
        return f"trace {trace_id} incomplete: {sorted(names(last))}"

    spans = prom.poll(whole_trace, 60, describe)
    assert {s["traceId"] for s in spans} == {trace_id}
    server = next(s for s in spans if s.get("name") == "post /orders")
    assert server["tags"]["shopstream.request_id"] == request_id
    assert server["tags"]["http.route"] == "/orders"
    assert server["kind"] == "SERVER"
    # the order's own SQL is in the trace, under the request
    sql = [s for s in spans if s["localEndpoint"]["serviceName"] == "order" and "db.system" in str(s.get("tags", {}))]
    assert sql, sorted(names(spans))
    # the order id is findable: the messages of its saga are keyed by it
    keys = {s["tags"].get("messaging.kafka.message.key") for s in spans if s.get("kind") == "CONSUMER"}
    assert order_id in keys, keys
    # every span but the root has its parent in the same trace: one connected trace
    ids = {s["id"] for s in spans}
    orphans = [s for s in spans if s.get("parentId") and s["parentId"] not in ids]
    roots = [s for s in spans if not s.get("parentId")]
    assert not roots and {s["parentId"] for s in orphans} <= {server.get("parentId")}, orphans


def test_a_sync_order_is_one_trace_across_the_call_to_the_product_service(platform) -> None:
    trace_id = secrets.token_hex(16)
    with platform.client() as gw:
        product = create(gw, stock=5)
        placed = gw.post(
            "/orders",
            params={"mode": "sync"},
            json=body([(product["id"], 1)], APPROVE),
            headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"},
        )
        assert placed.status_code == 201, placed.text
        assert placed.json()["status"] == "CONFIRMED"

    def calls() -> list[tuple[dict, dict]] | None:
        response = zipkin(platform, f"trace/{trace_id}")
        if response.status_code != 200:
            return None
        spans = response.json()
        clients = [s for s in spans if s.get("kind") == "CLIENT"
                   and s["localEndpoint"]["serviceName"] == "order"
                   and s.get("name") == "post product-service"]  # fmt: skip
        by_parent = {s.get("parentId"): s for s in spans
                     if s["localEndpoint"]["serviceName"] == "product" and s.get("kind") == "SERVER"}  # fmt: skip
        pairs = [(c, by_parent[c["id"]]) for c in clients if c["id"] in by_parent]
        # the reservation and its commit: two calls, each answered inside the same trace
        return pairs if len(pairs) >= 2 else None

    pairs = prom.poll(calls, 60, lambda: f"trace {trace_id}: the calls to product-service not joined")
    paths = sorted(client["tags"]["url.path"] for client, _ in pairs)
    assert paths[0] == "/reservations", paths
    assert {server.get("name") for _, server in pairs} >= {"post /reservations"}
