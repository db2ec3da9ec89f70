"""The Grafana dashboards: generated from infra/grafana/dashboards.py, valid PromQL, and under real
traffic on the test platform every panel's query answers with data (none erroring, none empty)."""

from __future__ import annotations

import json
import runpy
import subprocess
import threading
from pathlib import Path

import httpx
import pytest
import yaml

from shopstream.config import PROJECT_ROOT
from shopstream_tools.runtime import prometheus
from tests.observability import prom
from tests.observability.poison import refused_by_the_product_saga

BUILD = runpy.run_path(str(PROJECT_ROOT / "infra" / "grafana" / "dashboards.py"))
FOLDER = PROJECT_ROOT / "deploy" / "grafana" / "dashboards"

# Panels allowed to stay empty on the test platform, with the reason. Keep it empty when possible.
PENDING: dict[str, str] = {}


def panels() -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, PromQL) of every target of every provisioned dashboard."""
    found = []
    for path in sorted(FOLDER.glob("*.json")):
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel["targets"]:
                found.append((path.name, panel["title"], target["expr"]))
    return found


def test_the_json_is_what_the_generator_writes() -> None:
    expected = BUILD["rendered"]()
    on_disk = {p.name: p.read_text() for p in FOLDER.glob("*.json")}
    assert on_disk == expected, "run: python infra/grafana/dashboards.py"
    names = {json.loads(text)["uid"] for text in expected.values()}
    assert len(names) == len(expected) == 5


def test_every_panel_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each query (as a recording rule), offline."""
    rules = [
        {"record": f"panel:check:{i}", "expr": expr} for i, (_f, _t, expr) in enumerate(panels())
    ]
    path = tmp_path / "panels.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    result = subprocess.run(
        [prometheus.promtool(), "check", "rules", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _traffic(platform, stop: threading.Event) -> None:
    """Reads, writes, async and sync orders (approved and declined) until told to stop."""
    from services.order.tests.integration.helpers import APPROVE, DECLINE, body
    from services.product.tests.integration.helpers import create

    with platform.client() as gw:
        item = create(gw, stock=100_000)
        browsed = create(gw, stock=1)  # never ordered, so never evicted: its reads hit the cache
        n = 0
        while not stop.is_set():
            n += 1
            gw.get("/products", params={"limit": 5})
            gw.get(f"/products/{browsed['id']}")
            customer = DECLINE if n % 4 == 0 else APPROVE
            gw.post("/orders", params={"mode": "async"}, json=body([(item["id"], 1)], customer))
            if n % 5 == 0:
                gw.post("/orders", params={"mode": "sync"}, json=body([(item["id"], 1)], APPROVE))
            stop.wait(0.2)


@pytest.mark.integration
def test_every_panel_returns_data_under_traffic(platform) -> None:
    stop = threading.Event()
    worker = threading.Thread(target=_traffic, args=(platform, stop), daemon=True)
    worker.start()
    try:
        refused_by_the_product_saga(platform.settings)  # for the dead-lettered panel
        todo = {(f, t, e) for f, t, e in panels() if t not in PENDING}
        errors: dict[tuple[str, str, str], str] = {}

        def all_answer() -> bool:
            for item in sorted(todo):
                try:
                    rows = prom.query(platform.settings, item[2])
                except (AssertionError, httpx.HTTPError) as exc:
                    errors[item] = str(exc)[:300]
                    continue
                if any(r["value"][1] not in ("NaN", "+Inf", "-Inf") for r in rows):
                    todo.discard(item)
                    errors.pop(item, None)
            return not todo

        prom.poll(
            all_answer,
            180,
            lambda: "panels without data: "
            + "; ".join(f"{f} / {t}: {errors.get((f, t, e), 'empty')}" for f, t, e in sorted(todo)),
        )
    finally:
        stop.set()
        worker.join(30)
    assert not errors
