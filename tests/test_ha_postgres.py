"""The HA profile loses its PostgreSQL primary under load: kill -9 the primary's postmaster while
clients place async and sync orders through the gateway. Patroni promotes the synchronous standby,
the services' pools reach it through the multi-host URL, requests cut off by the loss are repeated
inside the services (they carry an Idempotency-Key), so no client sees a failed order; every
accepted order ends, no unit is oversold or lost, and the old primary comes back as the standby
by itself.

The platform is a whole ``up --profile ha`` (three brokers, two Patroni nodes and their Raft
witness, two instances per service, two consumers per group) in a folder and on ports of its own.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import os
import shutil
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from services.order.tests.integration.helpers import APPROVE, body, create, wait_until_ended
from shopstream import auth
from shopstream.config import PROJECT_ROOT, Settings
from shopstream_tools.lab import audit, testbed
from shopstream_tools.runtime import (
    kafka_broker,
    patroni_config,
    postgres_ha,
    processes,
    profiles,
    supervision,
)
from shopstream_tools.runtime import platform as runtime

pytestmark = pytest.mark.ha

# Below Linux's ephemeral range (32768-60999), where an outgoing connection can take a port between
# two starts of a server, and apart from the test platform (25432, 28xxx-29xxx), the lab's (+8000)
# and the broker-kill test (22xxx): gateway 30080, services 30081-30182, PostgreSQL 30432-30433
# (Patroni 30532-3, Raft 30633-5), relays and consumers 31081-31990, brokers 32092/32102/32112.
PORTS = {
    "gateway_port": 30080, "gateway_status_port": 30079, "product_port": 30081,
    "order_port": 30082, "console_port": 0, "postgres_port": 30432, "kafka_port": 32092,
    "kafka_controller_port": 32093, "kafka_broker_port_step": 10, "kafka_heap": "256m",
    "prometheus_port": 0, "alertmanager_port": 0, "node_exporter_port": 0,
    "nginx_exporter_port": 0, "postgres_exporter_port": 0, "kafka_metrics_port": 0,
    "zipkin_port": 0, "tracing_sample_ratio": 0.0,
}  # fmt: skip
CLIENTS = {"async": 2, "sync": 2}  # each places an order, waits for the answer, pauses
PAUSE = 0.15
KILL_AFTER, LOAD_SECONDS = 6.0, 30.0
STOCK = 2000


def test_the_platforms_ports_are_outside_the_ephemeral_range() -> None:
    settings = dataclasses.replace(Settings(), **PORTS, **profiles.PROFILES["ha"])
    platform = set(testbed.ports(settings)) - {0}  # services, workers, gateway, first broker
    brokers = kafka_broker.nodes(settings)[1:]
    others = [supervision.metrics_port(settings)]
    others += [kafka_broker.broker_port(settings, n) for n in brokers]
    others += [kafka_broker.controller_port(settings, n) for n in brokers]
    others += [patroni_config.api_port(settings, n) for n in patroni_config.nodes(settings)]
    others += [patroni_config.raft_port(settings, m) for m in range(1, settings.postgres_nodes + 2)]
    assert max(platform | set(others)) < processes.ephemeral_ports()[0]
    assert len(set(others)) == len(others) and not platform & set(others)


@pytest.fixture
def ha_platform() -> Iterator[Settings]:
    folder = PROJECT_ROOT / "data-test-ha-postgres"  # PostgreSQL's server user must reach it
    settings = dataclasses.replace(Settings(data_dir=str(folder)), **PORTS)
    if folder.exists():
        runtime.down(profiles.apply(settings))
        shutil.rmtree(folder)
    settings = profiles.apply(settings, "ha")
    try:
        # three JVMs on a busy machine may take longer than `up`'s minute (as in test_ha.py)
        kafka_broker.start(settings)
        kafka_broker.wait_ready(settings, timeout=180)
        runtime.up(settings, log=lambda _: None)
        yield settings
    finally:
        runtime.down(settings)
        shutil.rmtree(folder, ignore_errors=True)


def _client(settings: Settings) -> httpx.Client:
    headers = {"Authorization": f"Bearer {auth.admin_token(settings)}",
               "X-Client-Id": uuid.uuid4().hex}  # fmt: skip
    return httpx.Client(base_url=f"http://127.0.0.1:{settings.gateway_port}", timeout=60,
                        headers=headers)  # fmt: skip


def test_the_primary_killed_under_load_costs_no_order_and_heals(ha_platform: Settings) -> None:
    settings = ha_platform
    with _client(settings) as gw:
        products = [create(gw, stock=STOCK)["id"] for _ in range(3)]
    before = asyncio.run(audit.snapshot(settings, products, order_service=True))
    since = dt.datetime.now(dt.UTC)
    old_primary = postgres_ha.primary(settings)
    assert old_primary is not None and postgres_ha.sync_standby(settings) is not None

    answers: list[tuple[str, float, int, str, float]] = []  # mode, at, status, id/problem, took
    loading = threading.Event()
    loading.set()
    started = time.monotonic()

    def place(mode: str, n: int) -> None:
        with _client(settings) as gw:
            i = 0
            while loading.is_set():
                i += 1
                key = f"ha-pg-{mode}-{n}-{i}-{uuid.uuid4().hex[:8]}"
                at = time.monotonic() - started
                try:
                    answer = gw.post("/orders", params={"mode": mode},
                                     json=body([(products[i % 3], 1)], APPROVE),
                                     headers={"Idempotency-Key": key})  # fmt: skip
                    found = answer.json().get("id") or answer.json().get("order_id") or answer.text
                    took = time.monotonic() - started - at
                    answers.append((mode, at, answer.status_code, str(found), took))
                except httpx.HTTPError as exc:
                    answers.append((mode, at, 0, repr(exc), time.monotonic() - started - at))
                time.sleep(PAUSE)

    clients = [threading.Thread(target=place, args=(mode, n))
               for mode, count in CLIENTS.items() for n in range(count)]  # fmt: skip
    for thread in clients:
        thread.start()
    time.sleep(KILL_AFTER)
    victim = postgres_ha.postmaster_pid(settings, old_primary)
    assert victim is not None
    os.kill(victim, signal.SIGKILL)
    killed_at = time.monotonic() - started
    promoted = _until(lambda: postgres_ha.primary(settings) not in (None, old_primary), 60)
    rejoined = None  # the old primary back as the synchronous standby, by itself
    while time.monotonic() - started < LOAD_SECONDS:
        if rejoined is None and postgres_ha.sync_standby(settings) == old_primary:
            rejoined = time.monotonic() - started - killed_at
        time.sleep(0.2)
    loading.clear()
    for thread in clients:
        thread.join(90)

    expected = {"async": {202}, "sync": {201}}
    failed = [a for a in answers if a[2] not in expected[a[0]]]
    # in flight at some moment between the kill and the promotion
    during = [a for a in answers if a[1] <= killed_at + promoted and a[1] + a[4] >= killed_at]
    slowest = ", ".join(f"{mode} {max(a[4] for a in answers if a[0] == mode):.1f}s"
                        for mode in CLIENTS)  # fmt: skip
    print(f"ha-postgres: {len(answers)} orders ({Counter(a[0] for a in answers)}), "
          f"{len(failed)} failed; standby promoted {promoted:.1f}s after the kill; "
          f"{len(during)} in flight during the failover; slowest answer: {slowest}")  # fmt: skip
    assert answers and not failed, f"{len(failed)} orders failed, e.g. {failed[:5]}"
    assert during, "no order was in flight during the failover: the test proved nothing"

    # every accepted order ends; the old primary is back as the synchronous standby, by itself
    with _client(settings) as gw:
        for _, _, _, order_id, _ in answers:
            assert wait_until_ended(gw, order_id, timeout=60)["status"] == "CONFIRMED"
    if rejoined is None:
        rejoined = _until(lambda: postgres_ha.sync_standby(settings) == old_primary, 90)
        rejoined += time.monotonic() - started - killed_at
    repeated = sum(log.read_text().count("database unavailable, repeating")
                   for log in (settings.data_path / "logs").glob("*-[12].log"))  # fmt: skip
    print(f"ha-postgres: old primary back as the sync standby {rejoined:.1f}s after the kill; "
          f"{repeated} requests repeated inside the services")  # fmt: skip
    assert audit.wait_drained(settings, True, 90, lambda: False) is not None, "never drained"
    after = asyncio.run(audit.collect(settings, products, since, order_service=True))
    verdict = audit.check(before, after)
    assert verdict["passed"], json.dumps(verdict["checks"], indent=1)
    states = supervision.states(settings)
    assert all(s.state == "RUNNING" for s in states.values()), states


def _until(check, timeout: float) -> float:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, f"not so after {timeout:.0f}s"
        time.sleep(0.2)
    return time.monotonic() - started
