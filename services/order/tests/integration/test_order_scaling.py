"""The saga consumer group scales: `shopstream scale order 1 --consumers 2` runs a second
`shopstream consume order`, which takes a share of stock-events' partitions; orders keep ending
once each, and scaling back leaves the partitions to the first."""

from __future__ import annotations

import time

import pytest
from confluent_kafka.admin import AdminClient

from services.order.entrypoints.consumers import SAGA_GROUP
from services.order.tests.integration.helpers import body, create, stock, wait_until_ended
from shopstream_tools.runtime import platform as runtime
from shopstream_tools.runtime import processes, prometheus

pytestmark = pytest.mark.integration


def _assignments(settings) -> list[set[int]]:
    admin = AdminClient({"bootstrap.servers": settings.kafka_servers})
    group = admin.describe_consumer_groups([SAGA_GROUP])[SAGA_GROUP].result(timeout=10)
    return [
        {tp.partition for tp in member.assignment.topic_partitions if tp.topic == "stock-events"}
        for member in group.members
    ]


def test_a_second_order_consumer_shares_the_partitions(platform) -> None:
    settings = platform.settings
    name = "order-consume-2"
    runtime.scale_consumers(settings, "order", 2)
    try:
        assert processes.alive(processes.read_pid(settings, name))
        targets = prometheus.scrape_targets(settings)["order-consumer"]
        assert [t["labels"]["process"] for t in targets] == ["order-consume", name]
        assert name in {row.name for row in runtime.status(settings) if row.pid}
        partitions = settings.topics()["stock-events"]
        deadline = time.monotonic() + 90
        while True:
            shares = _assignments(settings)
            if len(shares) == 2 and all(shares) and set().union(*shares) == set(range(partitions)):
                break
            assert time.monotonic() < deadline, f"partitions not shared: {shares}"
            time.sleep(0.5)
        assert not shares[0] & shares[1], "each partition has one consumer"
        with platform.client() as gw:
            pid = create(gw, stock=30)["id"]
            ids = [gw.post("/orders", json=body([(pid, 1)])).json()["id"] for _ in range(20)]
            assert {wait_until_ended(gw, i)["status"] for i in ids} == {"CONFIRMED"}
            assert stock(gw, pid) == 10
    finally:
        runtime.scale_consumers(settings, "order", 1)
    assert not processes.alive(processes.read_pid(settings, name))
    assert runtime.consumer_count(settings, "order") == 1
    deadline = time.monotonic() + 90
    while (shares := _assignments(settings)) != [set(range(partitions))]:
        assert time.monotonic() < deadline, f"partitions not taken back: {shares}"
        time.sleep(0.5)
