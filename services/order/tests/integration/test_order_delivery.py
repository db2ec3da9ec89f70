"""At-least-once delivery, applied once: a stock answer delivered twice, a saga consumer killed
between its database commit and its offset commit, the order relay killed mid-batch, a sync
order whose request died half way, and an async order whose OrderPlaced was lost."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import time
import uuid

import httpx
import msgspec
import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from services.order.domain import events as ev
from services.order.domain.values import LineItem
from services.order.entrypoints.consumers import SAGA_GROUP, recover_sync_orders, saga_applier
from services.order.tests.integration.conftest import command
from services.order.tests.integration.helpers import (
    APPROVE,
    body,
    create,
    order_db,
    stock,
    wait_until_ended,
)
from shopstream import db, events
from shopstream.consumer import BatchConsumer
from shopstream_tools.runtime import platform as runtime
from shopstream_tools.runtime import processes
from tests.platform_fixture import consume_events

pytestmark = pytest.mark.integration


class Crash(BaseException):
    """Stands for the process dying (not an Exception: nothing retries or dead-letters it)."""


def _produce(platform, topic: str, *evs: events.Event) -> dict[int, int]:
    """Publish with the header the consumers filter on; the last offset written per partition."""
    producer = Producer(
        {"bootstrap.servers": platform.settings.kafka_servers, "enable.idempotence": True,
         "partitioner": "murmur2_random"}
    )
    last: dict[int, int] = {}

    def delivered(err, msg) -> None:
        assert err is None, err
        last[msg.partition()] = max(last.get(msg.partition(), -1), msg.offset())

    for e in evs:
        producer.produce(topic, key=e.aggregate_id.encode(), value=events.encode(e),
                         headers={"event_type": e.type}, on_delivery=delivered)
    producer.flush(10)
    return last


def _wait_committed(platform, group: str, offsets: dict[int, int], topic: str = "stock-events") -> None:
    """Until ``group`` has committed past these offsets (it has applied those messages)."""
    from confluent_kafka import TopicPartition

    reader = Consumer({"bootstrap.servers": platform.settings.kafka_servers, "group.id": group})
    try:
        deadline = time.monotonic() + 60
        while True:
            done = reader.committed([TopicPartition(topic, p) for p in offsets], timeout=10)
            if all(tp.offset > offsets[tp.partition] for tp in done):
                return
            assert time.monotonic() < deadline, f"{group} did not get past {offsets}"
            time.sleep(0.2)
    finally:
        reader.close()


def _types(client: httpx.Client, order_id: str) -> list[str]:
    return [e["type"] for e in client.get(f"/orders/{order_id}/events").json()["events"]]


def _stock_reserved(order_id: str, lines: list[tuple[str, int]]) -> events.Event:
    data = {"order_id": order_id, "occurred_at": events.now_iso(),
            "lines": [{"product_id": p, "quantity": q} for p, q in lines]}
    return events.new_event("StockReserved", order_id, data, source="product-service")


async def test_a_stock_answer_delivered_twice_is_applied_once(platform) -> None:
    with platform.client() as gw:
        pid = create(gw, stock=5)["id"]
        order_id = gw.post("/orders", json=body([(pid, 2)])).json()["id"]
        assert wait_until_ended(gw, order_id)["status"] == "CONFIRMED"
        (answer,) = consume_events(
            platform.settings, "stock-events",
            keep=lambda e: e.aggregate_id == order_id and e.type == "StockReserved",
            until=lambda evs: len(evs) >= 1,
        )
        # The relay published it twice, and the product service answered a redelivered
        # OrderPlaced again (a new envelope id, the same facts).
        again = msgspec.structs.replace(answer, id=str(uuid.uuid4()))
        offsets = _produce(platform, "stock-events", answer, answer, again)
        _wait_committed(platform, SAGA_GROUP, offsets)
        assert _types(gw, order_id) == [
            "OrderPlaced", "StockReserved", "PaymentAuthorized", "OrderConfirmed"
        ]
        assert stock(gw, pid) == 3


async def test_a_saga_consumer_killed_between_db_and_offset_commit_applies_once(
    platform, order_service
) -> None:
    settings = platform.settings
    topic = f"test-stock-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": settings.kafka_servers})
    for future in admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)]).values():
        future.result()
    service = order_service()
    with platform.client("product") as p:
        pid = create(p, stock=10)["id"]
    # Two sync orders the product service holds stock for; their answers travel on a private
    # topic with one key, so they are consumed in order by the consumers of this test only.
    orders = []
    for _ in range(2):
        placed = await service.place(command(body([(pid, 1)], APPROVE), "sync"))
        order_id = str(placed.state.order_id)
        async with httpx.AsyncClient(base_url=platform.url("product"), headers=platform.headers("product")) as c:
            held = await c.post("/reservations", json={
                "order_id": order_id, "lines": [{"product_id": pid, "quantity": 1}]})
            assert held.status_code == 201
        orders.append(order_id)
    answers = [_stock_reserved(o, [(pid, 1)]) for o in orders]
    answers = [msgspec.structs.replace(a, aggregate_id="one-key") for a in answers]
    _produce(platform, topic, *answers)

    pool = await db.create_pool(settings, "order")
    group = f"test-saga-{uuid.uuid4().hex[:6]}"
    apply = saga_applier(service)

    async def apply_then_die(deliveries) -> None:
        await apply(deliveries)
        raise Crash  # after the decisions and payments committed, before Kafka heard of it

    first = BatchConsumer(settings, group, [topic], apply_then_die)
    try:
        with pytest.raises(Crash):
            async with asyncio.timeout(60):
                await first.run()
        with platform.client("order") as c:
            assert c.get(f"/orders/{orders[0]}").json()["status"] == "CONFIRMED"

        second = BatchConsumer(settings, group, [topic], apply)
        task = asyncio.create_task(second.run())
        try:
            with platform.client("order") as c:
                deadline = time.monotonic() + 60
                while c.get(f"/orders/{orders[1]}").json()["status"] != "CONFIRMED":
                    assert time.monotonic() < deadline and not task.done()
                    await asyncio.sleep(0.1)
                await asyncio.sleep(1)  # the redelivered batch has been through the saga again
                for order_id in orders:  # decided once: no event twice
                    assert _types(c, order_id) == [
                        "OrderPlaced", "StockReserved", "PaymentAuthorized", "OrderConfirmed"
                    ]
        finally:
            second.stop()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        await pool.close()


async def test_the_order_relay_killed_mid_batch_loses_nothing(platform) -> None:
    settings = platform.settings
    with platform.client("product") as p:
        pid = create(p, stock=100)["id"]
    processes.stop(settings, "order-relay")
    conn = await order_db(platform)
    try:
        with platform.client("order") as c:
            ids = [c.post("/orders", json=body([(pid, 1)])).json()["id"] for _ in range(60)]
        pending = await conn.fetchval("SELECT count(*) FROM outbox")
        assert pending >= 60
        slow = dataclasses.replace(settings, relay_batch_size=5)
        relay = runtime.start_relay(slow, "order")
        deadline = time.monotonic() + 30
        while await conn.fetchval(
            "SELECT count(*) FROM outbox"
        ) > pending - 15:
            assert time.monotonic() < deadline, "the relay published nothing"
        os.kill(relay, signal.SIGKILL)
        left = await conn.fetchval("SELECT count(*) FROM outbox")
        assert left > 0, "the kill must land before the relay finished"
        while processes.alive(relay):
            await asyncio.sleep(0.05)
    finally:
        runtime.start_relay(settings, "order")
        await conn.close()
    with platform.client("order") as c:
        finals = [wait_until_ended(c, i, timeout=120) for i in ids]
    assert {f["status"] for f in finals} == {"CONFIRMED"}
    with platform.client("product") as p:
        assert stock(p, pid) == 40, "each order reserved once, republished or not"


async def test_a_sync_order_whose_request_died_is_resumed(platform, order_service) -> None:
    service = order_service()
    with platform.client("product") as p:
        pid = create(p, stock=5)["id"]
    # Died right after accepting: nothing reserved yet.
    fresh = await service.place(command(body([(pid, 1)], APPROVE), "sync"))
    # Died after the reservation was recorded, before the payment.
    halfway = await service.place(command(body([(pid, 2)], APPROVE), "sync"))
    halfway_id = halfway.state.order_id
    async with httpx.AsyncClient(base_url=platform.url("product"), headers=platform.headers("product")) as c:
        assert (await c.post("/reservations", json={
            "order_id": str(halfway_id), "lines": [{"product_id": pid, "quantity": 2}]
        })).status_code == 201
    reserved = ev.StockReserved(order_id=halfway_id, occurred_at=halfway.state.timestamps.accepted,
                                lines=(LineItem(uuid.UUID(pid), 2),))
    await service.decide_now(halfway_id, reserved)
    # a request may still hold an order that changed a moment ago: it is not taken up beside it
    assert await service.resume_sync(halfway_id, quiet_for=60) is None
    assert (await service.load(halfway_id)).state.status.value == "STOCK_RESERVED"
    assert await recover_sync_orders(service, older_than=0) >= 2
    for order_id in (fresh.state.order_id, halfway_id):
        order = await service.load(order_id)
        assert order is not None and order.state.status.value == "CONFIRMED"
    with platform.client("product") as p:
        assert stock(p, pid) == 2
        assert p.get(f"/reservations/{halfway_id}").json()["status"] == "committed"
    for order_id in (fresh.state.order_id, halfway_id):
        assert await service.resume_sync(order_id) is None, "an ended order is left alone"


def test_a_poison_stock_answer_is_dead_lettered_and_the_saga_goes_on(platform) -> None:
    order_id = str(uuid.uuid4())
    poison = events.new_event("StockReserved", order_id, {"order_id": order_id, "lines": "many"})
    _produce(platform, "stock-events", poison)
    reader = Consumer({
        "bootstrap.servers": platform.settings.kafka_servers,
        "group.id": f"test-{uuid.uuid4().hex}",
        "auto.offset.reset": "earliest",
    })
    reader.subscribe(["dead-letter"])
    found: dict = {}
    deadline = time.monotonic() + 60
    try:
        while not found:
            assert time.monotonic() < deadline, "the poison message was not dead-lettered"
            for message in reader.consume(500, 0.5):
                if message.error() or poison.id.encode() not in (message.value() or b""):
                    continue
                found = {k: v.decode() for k, v in message.headers() or []}
    finally:
        reader.close()
    assert found["dlq.consumer_group"] == SAGA_GROUP
    assert found["dlq.original_topic"] == "stock-events"
    assert found["dlq.reason"].startswith("poison: StockReserved")
    with platform.client() as gw:
        pid = create(gw, stock=2)["id"]
        order = gw.post("/orders", json=body([(pid, 1)])).json()
        assert wait_until_ended(gw, order["id"])["status"] == "CONFIRMED"


async def test_an_async_order_whose_placement_was_lost_is_followed_up_and_ends(platform) -> None:
    """The OrderPlaced of an accepted order never reaches Kafka (its outbox row gone: a lost
    message, whatever the cause). The consumer process's sweep finds the order quiet for longer
    than ``saga_follow_up_seconds`` and asks again; the order ends confirmed, stock taken once."""
    settings = platform.settings
    with platform.client("product") as p:
        pid = create(p, stock=10)["id"]
    processes.stop(settings, "order-relay")
    conn = await order_db(platform)
    try:
        with platform.client("order") as c:
            order_id = c.post("/orders", json=body([(pid, 3)])).json()["id"]
        lost = await conn.execute(
            "DELETE FROM outbox WHERE message_key = $1", order_id
        )
        assert lost == "DELETE 1", lost
        await conn.execute(
            "UPDATE orders SET updated_at = now() - make_interval(secs => $2) WHERE id = $1",
            uuid.UUID(order_id), settings.saga_follow_up_seconds + 60,
        )  # fmt: skip
    finally:
        runtime.start_relay(settings, "order")
        await conn.close()
    with platform.client("order") as c:
        final = wait_until_ended(c, order_id, timeout=90)  # a sweep every 15 s
        assert final["status"] == "CONFIRMED"
        assert _types(c, order_id) == [
            "OrderPlaced", "StockRequestedAgain", "StockReserved", "PaymentAuthorized",
            "OrderConfirmed",
        ]
        assert "stock_requested_again" in final["timestamps"]
    with platform.client("product") as p:
        assert stock(p, pid) == 7
