"""The operator console on the test platform, seen through real headless Chromium.

Each view is loaded by Chromium against the running platform and checked for what it must show:
a product created through the gateway appears, decoded, among the latest messages of its partition;
a message the real consumer cannot decode appears on the dead-letter view with its reason.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import httpx
import pytest

from shopstream.config import PROJECT_ROOT
from tests.observability import browser, prom
from tests.observability.poison import dead_letter

pytestmark = pytest.mark.integration

DOCS = PROJECT_ROOT / "docs" / "operations"


def console_url(platform, path: str = "/") -> str:
    """The console as an operator (the console is for role admin only): through the signing proxy."""
    return browser.operator_url(platform.settings, path)


def api(platform, path: str, **params) -> httpx.Response:
    return httpx.get(console_url(platform, path), params=params, timeout=30)


@pytest.fixture(scope="module")
def product(platform) -> dict:
    sku = f"CONSOLE-{uuid.uuid4().hex[:8].upper()}"
    with platform.client() as gw:
        created = gw.post(
            "/products",
            json={"sku": sku, "name": "Console Lamp", "category": "Office", "brand": "Lumo",
                  "price": 12.5, "stock": 3},
        )
    assert created.status_code == 201, created.text
    return created.json()


@pytest.fixture(scope="module")
def poison(platform) -> tuple[str, str, str]:
    """A message the shared consumer refuses and dead-letters: (key, topic, group)."""
    return dead_letter(platform.settings, "customer address failed validation (console test)")


def test_health_view_shows_live_figures_from_prometheus(platform, product) -> None:
    with platform.client() as gw:

        def product_serves_traffic() -> bool:
            assert gw.get("/products", params={"limit": 1}).status_code == 200
            rows = prom.query(platform.settings, 'service:http_requests:rate1m{service="product"}')
            return any(float(r["value"][1]) > 0 for r in rows)

        prom.poll(product_serves_traffic, 90, lambda: "no request rate recorded for product")
    page = browser.parse(browser.dom(console_url(platform)))
    text = " ".join(page.text)
    assert "Prometheus is not reachable" not in text
    panels = {
        "requests-per-second", "p99-latency", "5xx-errors-per-second", "consumer-lag",
        "outbox-pending", "outbox-oldest-pending", "dead-letter-messages", "targets-down",
        "reservations-held", "oldest-held-reservation",
    }
    assert {f"panel-{p}" for p in panels} <= set(page.tables), sorted(page.tables)
    rates = {r[0]: float(r[1]) for r in page.tables["panel-requests-per-second"][1:]}
    assert rates.get("product", 0) > 0, rates
    p99 = {r[0]: float(r[1]) for r in page.tables["panel-p99-latency"][1:]}
    assert 0 < p99["product"] < 5, p99
    assert any(r[0] == "product" for r in page.tables["panel-outbox-pending"][1:])
    assert page.tables["panel-targets-down"][1:] == [["none"]]
    held = page.tables["panel-reservations-held"][1:]  # one figure, from one product consumer
    assert len(held) == 1 and float(held[0][0].replace(",", "")) >= 0, held


def test_kafka_view_lists_broker_and_topics(platform) -> None:
    page = browser.parse(browser.dom(console_url(platform, "/kafka")))
    brokers = page.tables["brokers"][1:]
    assert brokers == [["1", f"127.0.0.1:{platform.settings.kafka_port}", "yes"]]
    topics = {row[0]: row for row in page.tables["topics"][1:]}
    for name, partitions in platform.settings.topics().items():
        assert topics[name][1] == str(partitions), topics[name]
    assert not any(name.startswith("__") for name in topics)


def test_topic_view_shows_leader_replicas_isr_offsets(platform, product) -> None:
    page = browser.parse(browser.dom(console_url(platform, "/kafka/topics/product-events")))
    rows = page.tables["partitions"][1:]
    count = platform.settings.topics()["product-events"]
    assert [r[0] for r in rows] == [str(i) for i in range(count)]
    for r in rows:
        assert r[1] == "1" and r[2] == "1" and r[3] == "1", r  # leader, replicas, ISR
    assert sum(int(r[6].replace(",", "")) for r in rows) >= 1  # our product's event at least


def test_messages_view_shows_the_created_product_decoded(platform, product) -> None:
    def partition_of_product() -> int | None:
        for p in range(platform.settings.topics()["product-events"]):
            found = api(platform, "/api/kafka/topics/product-events/messages", partition=p, limit=50)
            assert found.status_code == 200, found.text
            for m in found.json():
                if product["sku"] in str(m["value"]):
                    return p + 1  # truthy for poll
        return None

    partition = prom.poll(partition_of_product, 60, lambda: f"{product['sku']} never published") - 1
    url = console_url(platform, f"/kafka/topics/product-events/messages?partition={partition}&limit=50")
    page = browser.parse(browser.dom(url))
    rows = page.tables["messages"][1:]
    mine = [r for r in rows if product["sku"] in r[4]]
    assert len(mine) == 1, rows
    _offset, _when, key, _headers, value = mine[0]
    assert key == product["id"]
    assert '"sku": "' + product["sku"] + '"' in value  # pretty-printed JSON, not raw bytes
    offsets = [int(r[0].replace(",", "")) for r in rows]
    assert offsets == sorted(offsets, reverse=True)  # newest first


def test_groups_view_shows_lag_per_partition(platform, poison) -> None:
    """The product service's order-events consumer group, whatever its name, with its partitions."""

    def order_events_group() -> str | None:
        for g in api(platform, "/api/kafka/groups").json():
            if any(p["topic"] == "order-events" for p in g["partitions"]) and g["members"]:
                return str(g["id"])
        return None

    group = prom.poll(order_events_group, 60, lambda: "no group consumes order-events")
    page = browser.parse(browser.dom(console_url(platform, "/kafka/groups")))
    summary = {r[0]: r for r in page.tables["groups"][1:]}
    # the state Kafka reports (another test may just have made the group rebalance)
    states = {"STABLE", "PREPARING_REBALANCE", "COMPLETING_REBALANCE"}
    assert summary[group][1] in states and int(summary[group][2]) >= 1, summary
    parts = [r for r in page.tables[f"group-{group}"][1:] if r[0] == "order-events"]
    assert sorted(int(r[1]) for r in parts) == list(range(platform.settings.topics()["order-events"])), parts
    for _topic, _partition, committed, end, lag in parts:
        expected = int(end) - (0 if committed == "-" else int(committed))
        assert int(lag) == expected


def test_dead_letter_view_shows_the_reason(platform, poison) -> None:
    key, topic, group = poison

    def dead_lettered() -> list | None:
        found = api(platform, "/api/kafka/dead-letter", limit=100).json()
        return [m for m in found if m["key"] == key] or None

    prom.poll(dead_lettered, 60, lambda: f"{key} never reached the dead-letter topic")
    page = browser.parse(browser.dom(console_url(platform, "/kafka/dead-letter")))
    rows = [r for r in page.tables["dead-letters"][1:] if r[2] == key]
    assert len(rows) == 1, page.tables["dead-letters"]
    _offset, _when, _key, reason, origin, shown_group, attempts, headers, value = rows[0]
    assert reason == "poison: customer address failed validation (console test)", reason
    assert origin == f"{topic}/0@0" and shown_group == group and attempts == "1"
    assert "console-test" in headers and '"broken": true' in value


CHART_WAIT_MS = 20_000  # virtual time for charts.js to fetch and draw every chart


def drawn(platform, path: str) -> dict[str, tuple[int, int, int]]:
    """{chart title: (series, points, canvases)} as Chromium drew the page's charts."""
    sep = "&" if "?" in path else "?"
    page = browser.charts(browser.dom(console_url(platform, f"{path}{sep}window=900&refresh=0"), CHART_WAIT_MS))
    assert page.charts, f"no charts on {path}"
    return {t: (s, p, page.canvases[t]) for t, (s, p) in page.charts.items()}


def test_health_view_draws_time_series(platform, product) -> None:
    # the request rate is a recording rule over a minute: on a platform just started it takes
    # traffic and a few evaluations before there is a line to draw
    with platform.client("product") as c:

        def rate_recorded_twice() -> list | None:
            c.get(f"/products/{product['id']}")
            counts = prom.query(platform.settings, "count_over_time(service:http_requests:rate1m[10m])")
            return [r for r in counts if float(r["value"][1]) >= 3] or None

        prom.poll(rate_recorded_twice, 120, lambda: "no request rate recorded")
    charts = drawn(platform, "/")
    assert all(canvases == 1 for _, _, canvases in charts.values()), charts  # every chart drawn
    for title in ("Requests per second", "p99 latency", "Consumer lag", "Outbox pending"):
        series, points, _ = charts[title]
        assert series >= 1 and points >= 2, (title, charts[title])  # a line, not a dot


def test_dashboards_draw_every_panel_as_a_time_series(platform) -> None:
    index = browser.parse(browser.dom(console_url(platform, "/dashboards")))
    titles = [row[0] for row in index.tables["dashboards"][1:]]
    assert len(titles) == 5 and "shopstream / Kafka" in titles, titles
    for uid in ("shopstream-service-overview", "shopstream-kafka", "shopstream-postgresql"):
        charts = drawn(platform, f"/dashboards/{uid}")
        assert all(canvases == 1 for _, _, canvases in charts.values()), (uid, charts)
        with_data = [t for t, (series, points, _) in charts.items() if series >= 1 and points >= 1]
        # the platform has run for a while: most panels of these boards have samples
        assert len(with_data) >= len(charts) * 0.6, (uid, charts)
    kafka = drawn(platform, "/dashboards/shopstream-kafka")
    assert kafka["Partitions"][0] == 1 and kafka["Partitions"][1] >= 2, kafka["Partitions"]


def test_chart_api_gives_units_thresholds_and_aligned_series(platform) -> None:
    found = api(platform, "/api/charts/health/1", window=300).json()  # p99 latency
    assert found["unit"] == "s" and found["window"] == 300
    assert found["thresholds"] == [{"value": 0.5, "alert": "HttpLatencyP99OverObjective", "op": ">"}]
    assert found["series"] and all(len(s["values"]) == len(found["x"]) for s in found["series"])
    assert found["x"] == sorted(found["x"]) and found["x"][-1] - found["x"][0] == 300


def test_lab_view_follows_a_running_load_generator(platform) -> None:
    """A real vegeta run listed as the lab lists its generators: the lab view charts its step."""
    import subprocess

    from shopstream_tools.lab import scrape

    vegeta = PROJECT_ROOT / ".tools" / "bin" / "vegeta"
    port = scrape.free_port()
    step = f"console-test-{uuid.uuid4().hex[:6]}"
    target = f"GET http://127.0.0.1:{platform.settings.gateway_port}/products?limit=1\n"
    attack = subprocess.Popen(
        [str(vegeta), "attack", "-rate", "10", "-duration", "60s", f"-prometheus-addr=127.0.0.1:{port}"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    assert attack.stdin is not None
    attack.stdin.write(target.encode())
    attack.stdin.close()
    scrape.register(platform.settings, port, "console-test", step, "vegeta")
    try:

        def scraped() -> bool:
            rows = prom.query(platform.settings, f'sum(rate(request_seconds_count{{step="{step}"}}[30s]))')
            return any(float(r["value"][1]) > 0 for r in rows)

        prom.poll(scraped, 60, lambda: "Prometheus never scraped the load generator")
        page = browser.parse(browser.dom(console_url(platform, "/lab")))
        assert [step, "vegeta", "up"] in [r[1:] for r in page.tables["lab-steps"][1:]], page.tables
        titles = ("Steps over time", "Request rate sent", "p99 latency as the generator saw it")
        charts: dict = {}

        def all_drawn() -> bool:
            # a rate needs two scrapes inside its window: the page is read again until it has them
            charts.update(drawn(platform, "/lab"))
            return all(charts[t][2] == 1 and charts[t][0] >= 1 and charts[t][1] >= 1 for t in titles)

        prom.poll(all_drawn, 45, lambda: f"the lab view's charts stayed empty: {charts}")
        if os.environ.get("SHOPSTREAM_SCREENSHOTS") == "1":  # while the step still runs
            time.sleep(15)
            url = console_url(platform, "/lab?window=300&refresh=0")
            browser.screenshot(url, DOCS / "console-lab.png", height=1300, wait_ms=CHART_WAIT_MS)
    finally:
        scrape.unregister(platform.settings)
        attack.kill()
        attack.wait()


def test_orders_view_form_and_bad_ids(platform) -> None:
    page = browser.parse(browser.dom(console_url(platform, "/orders")))
    assert "order id" in " ".join(page.text)
    bad = api(platform, "/orders", id="not-a-uuid")
    assert bad.status_code == 400 and bad.headers["content-type"] == "application/problem+json"
    assert bad.json()["errors"][0]["field"] == "id"
    unknown = api(platform, "/orders", id=str(uuid.uuid4()))
    assert unknown.status_code == 404 and unknown.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("path", "params", "status", "field"),
    [
        ("/kafka/topics/no-such-topic", {}, 404, "topic"),
        ("/api/kafka/topics/no-such-topic", {}, 404, "topic"),
        ("/kafka/topics/product-events/messages", {"partition": 99}, 404, "partition"),
        ("/kafka/topics/product-events/messages", {"partition": -1}, 400, "partition"),
        ("/kafka/topics/product-events/messages", {"partition": "x"}, 400, "partition"),
        ("/api/kafka/topics/product-events/messages", {"limit": 0}, 400, "limit"),
        ("/api/kafka/topics/product-events/messages", {"limit": 501}, 400, "limit"),
        ("/kafka/dead-letter", {"limit": "many"}, 400, "limit"),
        ("/api/orders/not-a-uuid", {}, 400, "id"),
        ("/dashboards/no-such-board", {}, 404, "uid"),
        ("/api/charts/no-such-board/0", {}, 404, "board"),
        ("/api/charts/health/999", {}, 404, "panel"),
        ("/api/charts/health/0", {"window": 10}, 400, "window"),
        ("/api/charts/health/0", {"window": 86400}, 400, "window"),
    ],
)
def test_bad_input_is_a_4xx_problem(platform, path, params, status, field) -> None:
    response = api(platform, path, **params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["field"] == field


def test_screenshot(platform, product, tmp_path: Path) -> None:
    """Chromium renders the views, charts drawn; SHOPSTREAM_SCREENSHOTS=1 keeps them in docs/operations."""
    keep = os.environ.get("SHOPSTREAM_SCREENSHOTS") == "1"
    folder = DOCS if keep else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    if keep:  # orders flowing, so the pipeline's charts have lines to show
        with platform.client() as gw:
            stocked = gw.post("/products", json={
                "sku": f"SHOT-{uuid.uuid4().hex[:8].upper()}", "name": "Screenshot Mug",
                "category": "Kitchen", "brand": "Lumo", "price": 9.5, "stock": 500,
            }).json()  # fmt: skip
            for _ in range(3):
                for _ in range(15):
                    gw.post("/orders", json={
                        "customer_id": str(uuid.uuid4()), "mode": "async",
                        "lines": [{"product_id": stocked["id"], "quantity": 1}],
                        "shipping_address": {"name": "Ana", "line1": "Rua 1", "city": "Lisboa",
                                             "postal_code": "1000-001", "country": "PT"},
                    })  # fmt: skip
                time.sleep(10)
    shots = (
        ("console-health", "/?window=900&refresh=0", 1800),
        ("console-dashboard-pipeline", "/dashboards/shopstream-order-pipeline?window=900&refresh=0", 1500),
        ("console-dead-letters", "/kafka/dead-letter", 900),
    )
    for name, path, height in shots:  # the lab view's: taken while a step runs, above
        shot = browser.screenshot(console_url(platform, path), folder / f"{name}.png", height=height, wait_ms=CHART_WAIT_MS)
        assert shot.stat().st_size > 10_000  # a rendered page, not a blank one
