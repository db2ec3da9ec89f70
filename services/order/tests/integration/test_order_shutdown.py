"""An order instance that is stopped (scale down, a deploy) answers the sync orders it accepted
before it closes its pool: none of them fails half done. (granian stops listening, answers what
it accepted, and only then runs the app's shutdown, which closes the pool: this test keeps it so.)"""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from services.order.tests.integration.helpers import body, create
from shopstream_tools.runtime import platform as runtime
from shopstream_tools.runtime import processes, topology

pytestmark = pytest.mark.integration


def test_a_stopping_instance_answers_the_sync_orders_it_accepted(platform) -> None:
    settings = platform.settings
    url = platform.url("order", 1)
    with platform.client() as gw:
        product = create(gw, stock=5000)["id"]
    answers: list[tuple[float, int | str]] = []
    stop = threading.Event()

    def place_until_refused() -> None:
        with httpx.Client(base_url=url, timeout=30, headers=platform.headers("order")) as client:
            while not stop.is_set():
                try:
                    r = client.post("/orders", params={"mode": "sync"}, json=body([(product, 1)]))
                    answers.append((time.monotonic(), r.status_code))
                except httpx.TransportError as exc:  # not accepted: the instance stopped listening
                    answers.append((time.monotonic(), type(exc).__name__))
                    return

    clients = [threading.Thread(target=place_until_refused) for _ in range(16)]
    for client in clients:
        client.start()
    deadline = time.monotonic() + 60
    while len(answers) < 20:  # orders flowing: every client has one in flight at any moment
        assert time.monotonic() < deadline, f"orders are not flowing: {answers}"
        time.sleep(0.05)
    stopping = time.monotonic()
    try:
        processes.stop(settings, topology.instance_name("order", 1))
    finally:
        stop.set()
        for client in clients:
            client.join()
        runtime.start_instance(settings, "order", 1)
        runtime.wait_instance_ready(settings, "order", 1)
    statuses = [status for _, status in answers]
    answered_while_stopping = [s for at, s in answers if at > stopping and isinstance(s, int)]
    assert answered_while_stopping, f"nothing was in flight when the instance stopped: {statuses}"
    assert all(s == 201 for s in statuses if isinstance(s, int)), statuses
