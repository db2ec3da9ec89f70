"""The compose stack for real: images built here, started with podman or Docker, driven end to end.

Builds every image (``shopstream compose`` code, stand-ins when no registry answers), starts the
stack under its own project name and host ports (-6000, so it never meets a local platform), and
then, through the gateway: products created and searched, an async order to CONFIRMED, a sync
order, the order's events on Kafka, Prometheus' targets up, the Locust file as a smoke load, the
lab's consistency audit, and a crashed container brought back by its restart policy. ~6 minutes
with warm stand-ins: ``make test-containers``; skipped where no engine can run containers.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.order.tests.integration.helpers import APPROVE, body, eventually, wait_until_ended
from services.product.tests.integration.helpers import create
from shopstream import auth
from shopstream.config import PROJECT_ROOT, Settings
from shopstream_tools.compose import engine as engines
from shopstream_tools.compose import identity
from shopstream_tools.compose.stack import Stack, json_rows
from shopstream_tools.lab import audit

pytestmark = [pytest.mark.containers, pytest.mark.integration]

PROJECT = "shopstream-ct"
OFFSET = -6000
UP_JOBS = ("product", "order", "product-relay", "order-relay", "product-consumer",
           "order-consumer", "kafka", "postgres", "gateway", "prometheus", "zipkin")  # fmt: skip


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    engine = engines.find()
    if engine is None:
        pytest.skip("neither podman nor Docker can run containers here")
    s = Stack(engine, project=PROJECT, port_offset=OFFSET,
              standins=not engines.registry_reachable())  # fmt: skip
    s.down(volumes=True)  # a stack left over by an interrupted run
    s.build(str(PROJECT_ROOT / "data-containers" / "base"))
    try:
        took = s.up()
        record(s, took)
        yield s
    finally:
        s.down(volumes=True)


@pytest.fixture(scope="module")
def settings(stack: Stack) -> Settings:
    return stack.client_settings()


@pytest.fixture(scope="module")
def gateway(stack: Stack, settings: Settings) -> Iterator[httpx.Client]:
    """An operator through the gateway: the catalog is theirs to change."""
    url = f"http://localhost:{stack.port('GATEWAY_HOST_PORT')}"
    with httpx.Client(base_url=url, timeout=30,
                      headers={"Authorization": f"Bearer {auth.admin_token(settings)}"}) as client:  # fmt: skip
        yield client


@pytest.fixture(scope="module")
def shopper(stack: Stack, settings: Settings) -> Iterator[httpx.Client]:
    """A signed-in customer through the gateway: places and follows their own orders."""
    token = auth.customer_token(settings, APPROVE)
    url = f"http://localhost:{stack.port('GATEWAY_HOST_PORT')}"
    with httpx.Client(base_url=url, timeout=30,
                      headers={"Authorization": f"Bearer {token}"}) as client:  # fmt: skip
        yield client


def test_identity_is_enforced_in_the_containers(stack: Stack, shopper: httpx.Client) -> None:
    url = f"http://localhost:{stack.port('GATEWAY_HOST_PORT')}"
    assert httpx.get(f"{url}/orders", timeout=30).status_code == 401
    assert httpx.post(f"{url}/products", json={}, timeout=30).status_code == 401
    elsewhere = Settings.from_env({"SHOPSTREAM_DATA_DIR": str(stack.home / "another-issuer")})
    auth.ensure_local_issuer(elsewhere)  # a well-formed token from a key the stack does not know
    forged = {"Authorization": "Bearer " + auth.customer_token(elsewhere, APPROVE)}
    assert httpx.get(f"{url}/orders", headers=forged, timeout=30).status_code == 401
    assert shopper.post("/products", json={}).status_code == 403


def test_the_gateway_container_serves_https_with_the_stacks_certificate(
    stack: Stack, shopper: httpx.Client
) -> None:
    import ssl

    ca = identity.tls_dir(stack.home) / "ca.crt"
    trusted = ssl.create_default_context(cafile=str(ca))
    url = f"https://localhost:{stack.port('GATEWAY_TLS_HOST_PORT')}"
    with httpx.Client(base_url=url, verify=trusted, timeout=30,
                      headers={"Authorization": shopper.headers["Authorization"]}) as secure:  # fmt: skip
        answer = secure.get("/products", params={"limit": 1})
        assert answer.status_code == 200
        assert answer.headers["strict-transport-security"] == "max-age=31536000"
        assert secure.get("/orders").status_code == 200  # a customer's own orders, over TLS
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/products", timeout=30)  # without the stack's CA: not trusted


def test_products_are_created_and_found_by_search(gateway: httpx.Client) -> None:
    made = create(gateway, price=12.5, stock=7)
    assert gateway.get(f"/products/{made['id']}").json()["sku"] == made["sku"]
    page = gateway.get("/products", params={"category": made["category"]}).json()
    assert [p["id"] for p in page["items"]] == [made["id"]]


def test_an_async_order_reaches_confirmed_and_its_events_are_on_kafka(
    gateway: httpx.Client, shopper: httpx.Client, stack: Stack
) -> None:
    pid = create(gateway, stock=10)["id"]
    placed = shopper.post("/orders", json=body([(pid, 2)]))
    assert placed.status_code == 202, placed.text
    order_id = placed.json()["id"]
    assert wait_until_ended(shopper, order_id, timeout=90)["status"] == "CONFIRMED"
    assert order_id in order_events(stack, order_id)


def test_a_sync_order_answers_with_its_final_state(
    gateway: httpx.Client, shopper: httpx.Client
) -> None:
    pid = create(gateway, stock=10)["id"]
    answer = shopper.post("/orders", params={"mode": "sync"}, json=body([(pid, 3)]))
    assert answer.status_code == 201, answer.text
    assert answer.json()["status"] == "CONFIRMED"


def test_prometheus_scrapes_every_part_of_the_stack(stack: Stack) -> None:
    url = f"http://localhost:{stack.port('PROMETHEUS_HOST_PORT')}/api/v1/targets"

    def all_up() -> dict[str, str] | None:
        targets = httpx.get(url, timeout=10).json()["data"]["activeTargets"]
        health = {t["labels"]["job"]: t["health"] for t in targets}
        return health if all(health.get(job) == "up" for job in UP_JOBS) else None

    eventually(all_up, f"targets {UP_JOBS} up", timeout=90, pause=2)


def test_locust_smoke_and_the_consistency_audit(
    gateway: httpx.Client, stack: Stack, settings: Settings, tmp_path: Path
) -> None:
    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    category = f"smoke-{uuid.uuid4().hex[:8]}"
    products = [create(gateway, category=category, price=10.0 + i, stock=1000)["id"]
                for i in range(4)]  # fmt: skip
    before = asyncio.run(audit.snapshot(settings, products, order_service=True))
    customer = str(uuid.uuid4())
    data = {"products": products, "order_products": products,
            "windows": [[category, 5, 12, 1, 5]], "customers": [customer],
            "tokens": {customer: auth.customer_token(settings, customer)}}  # fmt: skip
    (tmp_path / "data.json").write_text(json.dumps(data))
    locust = Path(sys.executable).with_name("locust")
    smoke = subprocess.run(
        [str(locust), "-f", str(PROJECT_ROOT / "performance-tests/locust/shopstream_users.py"),
         "--headless", "-u", "4", "-r", "4", "-t", "15s", "--only-summary",
         "--host", str(gateway.base_url)],
        env={**os.environ, "LAB_DATA": str(tmp_path / "data.json"), "LAB_MODE": "async",
             "LAB_WEIGHTS": "search=3,by_id=6,list_orders=1,place_order=2"},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert smoke.returncode == 0, smoke.stdout[-3000:] + smoke.stderr[-3000:]

    def drained() -> bool:
        work = asyncio.run(audit.pending_work(settings, order_service=True))
        return not any(work.values())

    eventually(drained, "outboxes and open orders drained", timeout=120, pause=2)
    after = asyncio.run(audit.collect(settings, products, since, order_service=True))
    verdict = audit.check(before, after)
    assert all(c["passed"] for c in verdict["checks"].values()), verdict
    assert sum(after.orders_by_status.values()) > 0, "the smoke load placed no order"


def test_a_crashed_container_is_restarted_and_the_stack_recovers(
    gateway: httpx.Client, shopper: httpx.Client, stack: Stack
) -> None:
    victim = next(name for name, service in stack.containers().items()
                  if service == "order-consumer")  # fmt: skip
    state = json.loads(stack.engine.run("inspect", victim, capture=True))[0]["State"]
    os.kill(int(state["Pid"]), 9)  # a crash, not a stop: the policy applies

    def restarted() -> bool:
        now = json.loads(stack.engine.run("inspect", victim, capture=True))[0]["State"]
        return bool(now.get("Running")) and now.get("Pid") not in (0, state["Pid"])

    eventually(restarted, f"{victim} restarted by its policy", timeout=60, pause=1)
    stack.wait_healthy(None, timeout=120)
    pid = create(gateway, stock=5)["id"]
    placed = shopper.post("/orders", json=body([(pid, 1)]))
    assert wait_until_ended(shopper, placed.json()["id"], timeout=90)["status"] == "CONFIRMED"


def record(stack: Stack, start_seconds: float) -> None:
    """What the stack costs, for docs/operations/containers.md: start time and memory."""
    rows = json_rows(stack.engine.run("stats", "--no-stream", "--format", "json", capture=True))
    memory = {row.get("name") or row.get("Name"): row.get("mem_usage") or row.get("MemUsage")
              for row in rows}  # fmt: skip
    target = PROJECT_ROOT / "data-containers" / "stack-cost.json"
    target.parent.mkdir(exist_ok=True)
    target.write_text(json.dumps({"start_seconds": start_seconds, "memory": memory}, indent=1))


def order_events(stack: Stack, order_id: str) -> str:
    """The order's events on order-events, read through the published external listener."""
    from confluent_kafka import Consumer

    consumer = Consumer({
        "bootstrap.servers": f"localhost:{stack.port('KAFKA_HOST_PORT')}",
        "group.id": f"container-test-{uuid.uuid4().hex}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })  # fmt: skip
    consumer.subscribe(["order-events"])
    seen: list[str] = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None or message.error():
                continue
            value = (message.value() or b"").decode(errors="replace")
            key = (message.key() or b"").decode(errors="replace")
            if order_id in value or order_id == key:
                seen.append(value)
                if len(seen) >= 2:
                    break
    finally:
        consumer.close()
    return "\n".join(seen)
