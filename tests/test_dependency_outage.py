"""PostgreSQL away for a while: the services say so at once (503 problem+json, readiness false)
instead of piling up requests, and everything resumes by itself when it is back."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from services.order.tests.integration.helpers import body, create, eventually, wait_until_ended
from shopstream_tools.runtime import postgres, supervision

pytestmark = pytest.mark.integration


def _wait(check, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    eventually(check, what, timeout, pause=0.2)


def _all_running_again(settings) -> None:  # type: ignore[no-untyped-def]
    """Relays and consumers that lost a dependency were restarted, none given up on."""
    _wait(
        lambda: all(s.state == "RUNNING" for s in supervision.states(settings).values()),
        90,
        f"not all running: {supervision.states(settings)}",
    )


def _status(client: httpx.Client, path: str) -> int:
    try:
        return client.get(path).status_code
    except httpx.HTTPError:
        return 0


def test_postgres_outage_is_answered_with_503_and_heals(platform) -> None:
    settings = platform.settings
    product = platform.client("product")
    order = platform.client("order")
    unknown = uuid.uuid4()  # never cached: every read of it goes to the database
    try:
        postgres.stop(settings)
        for client, path in ((product, f"/products/{unknown}"), (order, f"/orders/{unknown}")):
            started = time.monotonic()
            answer = client.get(path)
            took = time.monotonic() - started
            assert answer.status_code == 503, answer.text
            assert answer.headers["content-type"].startswith("application/problem+json")
            assert answer.json()["status"] == 503
            assert answer.headers.get("retry-after")
            assert took < 4.0, f"{path} took {took:.1f}s to say it cannot answer"
            started = time.monotonic()
            assert client.get("/health/ready").status_code == 503
            assert time.monotonic() - started < 3.0
    finally:
        postgres.start(settings)
    _wait(lambda: _status(product, "/health/ready") == 200, 30, "product not ready again")
    _wait(lambda: _status(order, "/health/ready") == 200, 30, "order not ready again")
    assert product.get(f"/products/{unknown}").status_code == 404
    assert order.get(f"/orders/{unknown}").status_code == 404
    _all_running_again(settings)


def test_kafka_outage_costs_clients_nothing_and_heals(platform) -> None:
    """Requests never wait for Kafka (the outbox holds their events): orders and catalog changes
    are accepted while the broker is away, and the saga finishes them once it is back."""
    from shopstream_tools.runtime import kafka_broker

    settings = platform.settings
    with platform.client() as gw:
        product = create(gw, stock=10)["id"]
        kafka_broker.stop(settings)
        try:
            started = time.monotonic()
            placed = gw.post("/orders", params={"mode": "async"}, json=body([(product, 1)]))
            assert placed.status_code == 202, placed.text
            renamed = gw.patch(
                f"/products/{product}", json={"name": "Renamed while Kafka was away"}
            )
            assert renamed.status_code == 200, renamed.text
            assert time.monotonic() - started < 4.0, "a request waited for the broker"
        finally:
            kafka_broker.start(settings)
            kafka_broker.wait_ready(settings)
        ended = wait_until_ended(gw, placed.json()["id"])
        assert ended["status"] == "CONFIRMED", ended
    _all_running_again(settings)


def test_a_frozen_broker_under_load_heals_without_an_operator(platform) -> None:
    """The broker frozen (SIGSTOP) for 15 s while async orders come in: longer than a consumer's
    session, so the group coordinator stops answering every member at once. librdkafka can then
    leave a member polling outside its group for good; the member notices (``membership``), its
    process is started again, and every order ends."""
    import os
    import signal

    settings = platform.settings
    with platform.client() as gw:
        products = [create(gw, stock=10_000)["id"] for _ in range(3)]
        kafka = supervision.pid(settings, "kafka")
        assert kafka
        placed: list[str] = []
        started = time.monotonic()
        frozen = False
        try:
            while time.monotonic() - started < 30:
                if not frozen and time.monotonic() - started > 5:
                    os.kill(kafka, signal.SIGSTOP)
                    frozen = True
                elif frozen and time.monotonic() - started > 20:
                    os.kill(kafka, signal.SIGCONT)
                line = products[len(placed) % len(products)]
                answer = gw.post("/orders", params={"mode": "async"}, json=body([(line, 1)]))
                assert answer.status_code == 202, answer.text
                placed.append(answer.json()["id"])
                time.sleep(0.05)
        finally:
            os.kill(kafka, signal.SIGCONT)
        for order_id in placed:  # each within the session, a lost member's two checks and a restart
            assert wait_until_ended(gw, order_id, timeout=150)["status"] in {
                "CONFIRMED", "CANCELLED"}  # fmt: skip
    _all_running_again(settings)
