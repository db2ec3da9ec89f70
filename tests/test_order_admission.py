"""Past the saga's sustained rate, new async orders are refused with 503 + Retry-After rather than
piling up: an order-service instance with a backlog limit one above what is in flight, in this
process against the test platform's PostgreSQL, while the product service's consumer is paused (SIGSTOP) so that an
accepted async order stays in flight until the test lets it go."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from litestar.testing import AsyncTestClient

from services.order.adapters import metrics
from services.order.adapters.projection import IN_FLIGHT_ASYNC
from services.order.entrypoints import app as order_app
from services.order.entrypoints import state as runtime
from services.order.tests.integration.helpers import APPROVE, body, create, new_customer, order_db
from shopstream_tools.runtime import supervision, topology

pytestmark = pytest.mark.integration


@contextmanager
def paused(pid: int) -> Iterator[None]:
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


async def until(check: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.1)


async def test_a_full_backlog_refuses_new_async_orders_until_it_drains(platform) -> None:
    settings = dataclasses.replace(platform.settings, order_backlog_limit=1)
    with platform.client("product") as p:
        pid = create(p, stock=50)["id"]
    customer = new_customer()
    consumer = supervision.pid(platform.settings, topology.worker_name("product", "consume", 1))
    assert consumer, "the product consumer is not running"
    app = order_app.create(settings)
    headers = {"Authorization": f"Bearer {platform.customer_token(customer)}"}
    approve = {"Authorization": f"Bearer {platform.customer_token(APPROVE)}"}
    key = uuid.uuid4().hex
    shed_before = metrics.SHED._value.get()
    async with AsyncTestClient(app) as client:
        with paused(consumer):
            # Orders other tests left waiting for a follow-up count too: the limit is set above them.
            backlog = runtime.STATE.backlog
            conn = await order_db(platform)  # the app's pool belongs to the test client's loop
            try:
                backlog.limit = await conn.fetchval(IN_FLIGHT_ASYNC) + 1
            finally:
                await conn.close()
            first = await client.post("/orders", json=body([(pid, 1)], customer, mode="async"),
                                      headers={**headers, "Idempotency-Key": uuid.uuid4().hex})  # fmt: skip
            assert first.status_code == 202, first.text
            await until(lambda: backlog.full, "the backlog never counted the order")

            refused = await client.post("/orders", json=body([(pid, 2)], customer, mode="async"),
                                        headers={**headers, "Idempotency-Key": key})  # fmt: skip
            assert refused.status_code == 503, refused.text
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert refused.headers["retry-after"] == "1"
            problem = refused.json()
            assert problem["title"] == "Too many orders in flight"
            assert [e["field"] for e in problem["errors"]] == ["mode"]
            assert metrics.SHED._value.get() == shed_before + 1

            # A sync order adds nothing to the saga's backlog: it is still taken.
            sync = await client.post("/orders", json=body([(pid, 1)], APPROVE, mode="sync"),
                                     headers={**approve, "Idempotency-Key": uuid.uuid4().hex})  # fmt: skip
            assert sync.status_code == 201, sync.text

        await until(lambda: not backlog.full, "the backlog never drained")
        again = await client.post("/orders", json=body([(pid, 2)], customer, mode="async"),
                                  headers={**headers, "Idempotency-Key": key})  # fmt: skip
        assert again.status_code == 202, again.text
        assert again.headers.get("idempotent-replayed") is None  # the refusal wrote nothing

    conn = await order_db(platform)
    try:
        placed = await conn.fetchval(
            "SELECT count(*) FROM orders WHERE customer_id = $1", uuid.UUID(customer)
        )
    finally:
        await conn.close()
    assert placed == 2  # the first order and the retried one; the refused attempt left no row
