"""Backup and restore round trip: the test platform's data, backed up while it runs, restored into
a fresh data folder on other ports, comes back with every order and product, and the consistency
audit passes there."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import shutil
import uuid
from pathlib import Path

import httpx
import pytest

from services.order.tests.integration.helpers import (
    APPROVE,
    DECLINE,
    body,
    create,
    wait_until_ended,
)
from shopstream.config import PROJECT_ROOT
from shopstream_tools.lab import audit
from shopstream_tools.runtime import backup
from shopstream_tools.runtime import platform as runtime

pytestmark = pytest.mark.integration

# The restored platform: its own folder and ports, beside the test platform (28xxx/29xxx); its
# relays and consumers take their metrics ports 1000-1900 above the services' (26081-26990).
RESTORED_PORTS = {
    "gateway_port": 25080, "gateway_status_port": 25079, "gateway_tls_port": 0, "product_port": 25081,
    "order_port": 25082, "console_port": 0, "postgres_port": 24432, "kafka_port": 24092,
    "kafka_controller_port": 24093, "prometheus_port": 0, "alertmanager_port": 0,
    "node_exporter_port": 0, "nginx_exporter_port": 0, "postgres_exporter_port": 0,
    "kafka_metrics_port": 0, "zipkin_port": 0, "product_instances": 1, "order_instances": 1,
}  # fmt: skip


def test_backup_and_restore_round_trip(platform, tmp_path: Path) -> None:
    settings = platform.settings
    since = dt.datetime.now(dt.UTC)
    with platform.client() as gw:
        products = [create(gw, stock=20)["id"] for _ in range(3)]
        before = asyncio.run(audit.snapshot(settings, products, order_service=True))
        placed = []
        for i in range(12):
            customer = DECLINE if i % 4 == 3 else APPROVE
            mode = "sync" if i % 3 == 0 else "async"
            answer = gw.post("/orders", params={"mode": mode}, json=body([(products[i % 3], 1)], customer),
                             headers={"Idempotency-Key": str(uuid.uuid4())})  # fmt: skip
            # a sync order the payment declines is answered 402 with the cancelled order
            assert answer.status_code in (201, 202, 402), answer.text
            placed.append(answer.json().get("order_id") or answer.json()["id"])
        ended = {oid: wait_until_ended(gw, oid)["status"] for oid in placed}
        stocks = {pid: gw.get(f"/products/{pid}").json()["name"] for pid in products}

    folder = tmp_path / "backup"
    manifest = backup.backup(settings, folder, log=lambda _: None)
    assert set(manifest["databases"]) == {"product", "order"}
    assert (folder / "order.dump").stat().st_size > 0
    assert manifest["groups"], "the consumer groups' offsets are in the backup"
    assert json.loads((folder / "manifest.json").read_text()) == manifest

    # under the project like data-test/: PostgreSQL's server user must reach it (not so pytest's tmp)
    folder_restored = PROJECT_ROOT / "data-test-restore"
    shutil.rmtree(folder_restored, ignore_errors=True)
    restored = dataclasses.replace(settings, data_dir=str(folder_restored), **RESTORED_PORTS)
    try:
        backup.restore(restored, folder, log=lambda _: None)
        # a token the original platform issued: the local issuer's keys came back with the data
        url = f"http://127.0.0.1:{restored.gateway_port}"
        with httpx.Client(base_url=url, timeout=30, headers=platform.headers()) as gw:
            for oid, status in ended.items():
                answer = gw.get(f"/orders/{oid}")
                assert answer.status_code == 200, answer.text
                assert answer.json()["status"] == status
            for pid, name in stocks.items():
                assert gw.get(f"/products/{pid}").json()["name"] == name
            # the restored platform works: a new order goes the whole way
            answer = gw.post("/orders", json=body([(products[0], 1)]))
            assert answer.status_code in (201, 202), answer.text
            assert wait_until_ended(gw, answer.json()["id"])["status"] == "CONFIRMED"
        # the product side settles a confirmed order's reservation after the order ends
        assert audit.wait_drained(restored, True, 60, lambda: False) is not None, "never drained"
        after = asyncio.run(audit.collect(restored, products, since, order_service=True))
        verdict = audit.check(before, after)
        assert verdict["passed"], json.dumps(verdict["checks"], indent=1)
    finally:
        runtime.down(restored)
        shutil.rmtree(folder_restored, ignore_errors=True)
