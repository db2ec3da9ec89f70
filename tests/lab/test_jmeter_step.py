"""JMeter as the lab drives it, against the test platform's real gateway: the installed JMeter's jar
run non-GUI on a plan of performance-tests/jmeter with the lab's data (signed-in customers, the
catalog's products), its results file read into the step's figures. A few seconds of load each."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path

import pytest

from services.order.tests.integration.helpers import body, create, eventually
from shopstream_tools.lab.jmeter_load import JMeterPlan, run_jmeter, runtime_jar, write_lab_data
from shopstream_tools.lab.workload import Workload

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def lab_data(platform, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    runtime_jar()  # installed by scripts/bootstrap.sh: a missing JMeter fails here, saying so
    folder = tmp_path_factory.mktemp("jmeter")
    customers = [str(uuid.uuid4()) for _ in range(3)]
    tokens = {c: platform.customer_token(c) for c in customers}
    with platform.client() as gw:
        products = [create(gw, stock=100_000)["id"] for _ in range(4)]
        # the order service knows a product once its ProductCreated is through
        probe = body([(products[-1], 1)], customer=customers[0])
        headers = {"Authorization": f"Bearer {tokens[customers[0]]}"}
        eventually(lambda: gw.post("/orders", params={"mode": "async"}, json=probe, headers=headers).status_code == 202,
                   "the order service knows the products", timeout=30, pause=0.5)  # fmt: skip
    spec = folder / "workload.json"
    spec.write_text(json.dumps({"windows": [["Books", 5, 20, 5, 10]]}))
    return write_lab_data(Workload(spec, products, products, [], 0, customers, tokens), folder / "data")


def _run(platform, lab_data: Path, tmp_path: Path, plan: str, users: int, mode: str = "async") -> dict:  # type: ignore[no-untyped-def,type-arg]
    started: list[int] = []
    spec = JMeterPlan(plan, "127.0.0.1", platform.settings.gateway_port, users, 3, think_seconds=0.05,
                      spawn_rate=users, mode=mode, lab_data=lab_data, warmup_seconds=1)  # fmt: skip
    result = run_jmeter(spec, tmp_path, plan.removesuffix(".jmx"), threading.Event(), started.append, lambda s: None)
    assert started, "the lab was not told JMeter's pid (its CPU would not be sampled)"
    return result


def test_a_browsing_step_signs_in_for_orders_only(platform, lab_data: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = _run(platform, lab_data, tmp_path, "PT-01.jmx", users=3)
    assert result["tool"] == "jmeter" and result["requests"] > 20, result
    assert result["failures"] == 0 and set(result["statuses"]) == {"200"}, result["statuses"]
    # a customer's own orders answer 200 only with their token: the lab's customers are signed in
    assert set(result["requests_by_name"]) == {"/products?search", "/products/{id}", "/orders?customer_id"}
    assert result["latency_ms"]["p50"] > 0 and result["timeline"]
    gen = result["loadgen"]
    assert gen["tool"] == "jmeter" and gen["cpu_seconds"] > 0 and gen["exit_code"] == 0


def test_an_order_step_places_async_orders(platform, lab_data: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = _run(platform, lab_data, tmp_path, "PT-02.jmx", users=2)
    assert result["requests"] > 5 and result["failures"] == 0, result
    assert set(result["statuses"]) == {"202"}, result["statuses"]
