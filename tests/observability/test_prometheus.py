"""The test platform's Prometheus scrapes every process `up` started, and follows `scale`."""

from __future__ import annotations

import pytest

from shopstream_tools.runtime import platform as runtime
from shopstream_tools.runtime import prometheus
from tests.observability import prom

pytestmark = pytest.mark.integration

# The jobs a platform with the product service always has; order-service jobs join when it exists.
EXPECTED_JOBS = {
    "product",
    "product-relay",
    "product-consumer",
    "gateway",
    "postgres",
    "node",
    "kafka",
    "prometheus",
    "alertmanager",
    "zipkin",
    "console",
}


def _summary(targets: list[dict]) -> str:
    return "; ".join(
        f"{t['labels']['job']} {t['labels']['instance']} {t['health']} {t['lastError'][:80]}"
        for t in targets
    )


def test_every_target_is_up(platform) -> None:
    settings = platform.settings
    last: list[dict] = []

    def all_up() -> list[dict] | None:
        nonlocal last
        last = prom.targets(settings)
        jobs = {t["labels"]["job"] for t in last}
        ok = jobs >= EXPECTED_JOBS and all(t["health"] == "up" for t in last)
        return last if ok else None

    targets = prom.poll(all_up, 90, lambda: f"not all up: {_summary(last)}")
    # One target per running product instance, each labelled with the process `status` shows.
    counts = runtime.instance_counts(settings)
    products = sorted(t["labels"]["process"] for t in targets if t["labels"]["job"] == "product")
    assert products == [f"product-{i}" for i in range(1, counts["product"] + 1)]


@pytest.mark.parametrize(
    ("expr", "what"),
    [
        ("pg_up", "the postgres exporter reaches the private cluster"),
        ("nginx_up", "the nginx exporter reads the gateway's stub_status"),
        ('kafka_server_replicamanager_partitioncount', "the JMX agent exports the broker's MBeans"),
        ('kafka_log_logendoffset{topic="product-events"}', "per-partition log offsets"),
        ("node_memory_MemAvailable_bytes", "the node exporter reads the machine"),
        ('http_requests_total{service="product"}', "the services' own metrics"),
        ('outbox_pending_events{service="product"}', "the relay's metrics"),
    ],
)
def test_exporters_report_real_values(platform, expr: str, what: str) -> None:
    settings = platform.settings
    rows = prom.poll(
        lambda: [r for r in prom.query(settings, expr) if float(r["value"][1]) >= 0],
        90,
        lambda: f"{what}: `{expr}` has no samples",
    )
    if expr in ("pg_up", "nginx_up"):
        assert all(r["value"][1] == "1" for r in rows), rows


def test_scale_rewrites_the_discovered_targets(platform) -> None:
    settings = platform.settings
    before = runtime.instance_counts(settings)["product"]
    wanted = before + 1
    runtime.scale(settings, "product", wanted)
    try:
        ports = {
            f"127.0.0.1:{settings.service_port('product', i)}" for i in range(1, wanted + 1)
        }

        def discovered_and_up() -> bool:
            found = {
                t["labels"]["instance"]
                for t in prom.targets(settings)
                if t["labels"]["job"] == "product" and t["health"] == "up"
            }
            return found == ports

        prom.poll(discovered_and_up, 60, lambda: f"product targets never became {sorted(ports)}")
    finally:
        runtime.scale(settings, "product", before)
    files = prometheus.scrape_targets(settings)["product"]
    assert len(files) == before


def test_status_lists_the_observability_processes(platform) -> None:
    rows = {r.name: r for r in runtime.status(platform.settings)}
    for name in ("prometheus", "node-exporter", "nginx-exporter", "postgres-exporter"):
        assert rows[name].health == "up" and rows[name].pid, rows[name]
    assert "prometheus" in rows["prometheus"].command
    assert rows["kafka"].command.count("-javaagent:") == 1
