"""The runtime as an operator meets it: status, migrations, scaling behind the gateway."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from shopstream_tools.runtime import platform as runtime
from shopstream_tools.runtime import processes, topology

pytestmark = pytest.mark.integration


def test_status_shows_real_kafka_and_postgres(platform) -> None:
    rows = {r.name: r for r in runtime.status(platform.settings)}
    assert "kafka.Kafka" in rows["kafka"].command and rows["kafka"].command.startswith("java")
    assert rows["kafka"].health == "up" and rows["kafka"].rss_mb > 50
    assert "postgres" in rows["postgres"].command and rows["postgres"].health == "up"
    assert rows["product-1"].health == "ready" and rows["product-2"].health == "ready"
    assert rows["product-relay"].health == "up"
    assert rows["gateway"].health == "up" and "nginx" in rows["gateway"].command


def test_the_database_server_runs_with_the_projects_settings(platform) -> None:
    from shopstream_tools.runtime import postgres

    shown = postgres.psql(platform.settings, "SHOW wal_compression")
    assert shown.strip() == "lz4", shown


def test_migrations_are_applied_once(platform) -> None:
    again = runtime.migrate_all(platform.settings)
    assert all(versions == [] for versions in again.values()), again


def test_request_ids_pass_through_gateway_to_the_service(platform) -> None:
    with platform.client() as gw:
        mine = gw.get("/products", params={"limit": 1}, headers={"X-Request-Id": "trace-me-123"})
        assert mine.status_code == 200 and mine.headers["x-request-id"] == "trace-me-123"
        generated = gw.get("/products", params={"limit": 1})
        assert len(generated.headers["x-request-id"]) >= 16
        wrong_type = gw.post("/products", content=b"sku=1", headers={"content-type": "text/plain"})
        assert wrong_type.status_code == 415
        assert wrong_type.headers["content-type"].startswith("application/problem+json")
        invalid = gw.post("/products", json={"sku": 1})
        assert invalid.status_code == 400 and invalid.json()["errors"][0]["field"]


def test_scale_up_and_down_without_dropping_requests(platform) -> None:
    settings = platform.settings
    failures: list[str] = []
    answered = 0
    stop = threading.Event()

    def traffic() -> None:
        nonlocal answered
        with httpx.Client(
            base_url=platform.gateway, timeout=10, headers={**platform.headers(), "X-Client-Id": "scale-test"}
        ) as c:
            while not stop.is_set():
                for attempt in (1, 2):
                    try:
                        r = c.get("/products", params={"limit": 1})
                        if r.status_code != 200:
                            failures.append(f"{r.status_code} {r.text[:100]}")
                        answered += 1
                        break
                    except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
                        # An old nginx worker closing an idle keep-alive connection as a request
                        # goes out on it (seen as a close or as a reset, by timing): HTTP/1.1
                        # clients retry idempotent requests once (RFC 9112, 9.3.1).
                        if attempt == 2:
                            failures.append(repr(exc))
                    except httpx.HTTPError as exc:
                        failures.append(repr(exc))
                        break
                time.sleep(0.002)

    thread = threading.Thread(target=traffic)
    thread.start()
    try:
        runtime.scale(settings, "product", 3)
        assert processes.http_ok(f"{platform.url('product', 3)}/health/ready")
        assert topology.upstreams(settings)["product"] == [
            settings.service_port("product", i) for i in (1, 2, 3)
        ]
        time.sleep(1)
        runtime.scale(settings, "product", 2)
        time.sleep(1)
    finally:
        stop.set()
        thread.join()
    assert not processes.alive(processes.read_pid(settings, "product-3"))
    assert answered > 100
    assert failures == [], failures[:5]
    log = processes.log_file(settings, "product-3").read_text()
    assert "Listening at" in log


def test_kafka_tools_run_through_the_cli(platform) -> None:
    import subprocess
    import sys

    listed = subprocess.run(
        [sys.executable, "-m", "shopstream_tools.cli", "kafka", "topics", "--list"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert {"product-events", "order-events", "stock-events", "dead-letter"} <= set(
        listed.stdout.split()
    )
    described = subprocess.run(
        [
            sys.executable,
            "-m",
            "shopstream_tools.cli",
            "kafka",
            "topics",
            "--describe",
            "--topic",
            "product-events",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert described.stdout.count("Partition:") == platform.settings.topics()["product-events"]
