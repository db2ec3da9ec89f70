"""A private shopstream platform for the test session: real PostgreSQL, Kafka, services and nginx.

It runs on its own ports and data folder (``data-test/``), so it can run beside a platform started
with ``make up``. It is started once, on first use, by tests that ask for ``platform``.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Consumer

from shopstream import auth, events
from shopstream.config import PROJECT_ROOT, Settings
from shopstream_tools.runtime import platform as runtime

TEST_ENV = {
    "SHOPSTREAM_DATA_DIR": str(PROJECT_ROOT / "data-test"),
    "SHOPSTREAM_GATEWAY_PORT": "28080",
    "SHOPSTREAM_GATEWAY_STATUS_PORT": "28079",
    # HTTPS beside plain HTTP, on a certificate of the platform's local CA (tests/security/test_tls_edge.py)
    "SHOPSTREAM_GATEWAY_TLS_PORT": "28443",
    "SHOPSTREAM_PRODUCT_PORT": "28081",
    "SHOPSTREAM_ORDER_PORT": "28082",
    "SHOPSTREAM_CONSOLE_PORT": "28090",
    "SHOPSTREAM_POSTGRES_PORT": "25432",
    "SHOPSTREAM_KAFKA_PORT": "29092",
    "SHOPSTREAM_KAFKA_CONTROLLER_PORT": "29093",
    "SHOPSTREAM_KAFKA_HEAP": "384m",
    "SHOPSTREAM_PRODUCT_INSTANCES": "2",
    "SHOPSTREAM_ORDER_INSTANCES": "1",
    "SHOPSTREAM_GATEWAY_RATE_LIMIT": "200",
    "SHOPSTREAM_GATEWAY_RATE_BURST": "400",
    "SHOPSTREAM_PROMETHEUS_PORT": "29090",
    # 29093 is the Kafka controller's
    "SHOPSTREAM_ALERTMANAGER_PORT": "29193",
    "SHOPSTREAM_NODE_EXPORTER_PORT": "29100",
    "SHOPSTREAM_NGINX_EXPORTER_PORT": "29113",
    "SHOPSTREAM_POSTGRES_EXPORTER_PORT": "29187",
    "SHOPSTREAM_KAFKA_METRICS_PORT": "29404",
    "SHOPSTREAM_ZIPKIN_PORT": "29411",
    # No new traces in tests; a request carrying a sampled traceparent (the tracing test) is traced.
    "SHOPSTREAM_TRACING_SAMPLE_RATIO": "0",
}


async def as_owner(settings: Settings, service: str, sql: str) -> None:
    """Run DDL as ``service``'s owner role, as the migrations do: the service's own login role
    may not create or alter anything (docs/security.md)."""
    import asyncpg

    conn = await asyncpg.connect(settings.admin_database_url(service))
    try:
        await conn.execute(f'SET ROLE "{settings.database_owner(service)}"')
        await conn.execute(sql)
    finally:
        await conn.close()


@dataclass
class Platform:
    settings: Settings

    def url(self, service: str, instance: int = 1) -> str:
        return f"http://127.0.0.1:{self.settings.service_port(service, instance)}"

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.settings.gateway_port}"

    def admin_token(self) -> str:
        return auth.admin_token(self.settings)

    def customer_token(self, customer_id: str | uuid.UUID) -> str:
        return auth.customer_token(self.settings, str(customer_id))

    def headers(self, service: str = "", token: str | None = "") -> dict[str, str]:
        """Headers of a test client: an operator's token unless ``token`` names another (None:
        anonymous), and on a service's own port the service credential of its internal API."""
        chosen = self.admin_token() if token == "" else token
        # a client id of its own, so the gateway's per-client rate limit never meets another test
        headers = {"X-Client-Id": uuid.uuid4().hex}
        if chosen is not None:
            headers["Authorization"] = f"Bearer {chosen}"
        if service:
            headers[auth.SERVICE_HEADER] = auth.service_credential(self.settings)
        return headers

    def client(self, service: str = "", instance: int = 1, token: str | None = "") -> httpx.Client:
        """A client of the gateway (or of a service's own port), as an operator by default."""
        base = self.url(service, instance) if service else self.gateway
        return httpx.Client(base_url=base, timeout=30, headers=self.headers(service, token))


@pytest.fixture(scope="session")
def platform() -> Iterator[Platform]:
    os.environ.update(TEST_ENV)
    settings = Settings.from_env()
    # One test platform per machine: a second test session waits here instead of tearing down
    # the first one's platform (same ports, same folder).
    # (also across clones: the lock is named after the ports, not the folder)
    lock_path = Path(tempfile.gettempdir()) / f"shopstream-test-platform-{settings.gateway_port}.lock"
    lock = open(lock_path, "w")  # noqa: SIM115 - held all session
    fcntl.flock(lock, fcntl.LOCK_EX)
    if settings.data_path.exists():
        runtime.down(settings)  # leftovers of an interrupted run
        shutil.rmtree(settings.data_path)
    try:
        runtime.up(settings, log=lambda line: None)
        yield Platform(settings)
    finally:
        runtime.down(settings)
        lock.close()


def consume_events(
    settings: Settings,
    topic: str,
    until: Callable[[list[events.Event]], bool],
    timeout: float = 30,
    keep: Callable[[events.Event], bool] = lambda e: True,
) -> list[events.Event]:
    """Read a topic from the beginning with a fresh group until ``until(kept events)`` holds."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_servers,
            "group.id": f"test-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    kept: list[events.Event] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            for message in consumer.consume(1000, timeout=0.5):
                if message.error():
                    continue
                event = events.decode(message.value())
                if keep(event):
                    kept.append(event)
            if until(kept):
                return kept
    finally:
        consumer.close()
    raise AssertionError(f"condition not met on {topic} after {timeout}s; kept {len(kept)} events")
