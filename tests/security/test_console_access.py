"""The operator console is for operators (docs/security.md#the-operator-console), on the real server.

Every route of the console is called on the test platform's console process three times:
anonymous (401 problem+json for the API, a redirect to the sign-in page for a page), as a customer
(403) and as an operator (200, or the page's redirect after a form). The list of routes is the
console's own, so a new route is covered the day it is added. Then the browser's way in (sign-in,
session cookie, cross-site forms, sign-out), dead-letter replay over HTTP, and what the console and
its log must never show.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from litestar import MediaType

from services.order.tests.integration.helpers import APPROVE, assert_problem, body, create
from shopstream import auth
from shopstream.consumer import DEAD_LETTER_TOPIC
from shopstream_tools.console import access, app
from shopstream_tools.console.sources import Console
from shopstream_tools.runtime import alertmanager

pytestmark = pytest.mark.integration

ADDRESS = {"name": "Grace Hopper", "line1": "99 Cobol Lane", "city": "Arlington",
           "postal_code": "22201-4455", "country": "US"}  # fmt: skip


def console(platform) -> str:
    return f"http://127.0.0.1:{platform.settings.console_port}"


def client(platform, token: str | None = None, **kwargs: Any) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=console(platform), headers=headers, timeout=60, **kwargs)


@pytest.fixture(scope="module")
def order_id(platform) -> str:
    with platform.client() as admin:
        product = str(create(admin, stock=10)["id"])
    customer = platform.client(token=platform.customer_token(APPROVE))
    with customer:
        placed = customer.post("/orders", json=body([(product, 1)], shipping_address=ADDRESS),
                               headers={"Idempotency-Key": uuid.uuid4().hex})  # fmt: skip
    assert placed.status_code in (201, 202), placed.text
    return str(placed.json()["id"])


def sample_path(path: str, order: str) -> str:
    """A route's path with real values for its parameters."""
    values = {"name": "product-events", "uid": "shopstream-kafka", "board": "health", "panel": "0",
              "order_id": order}  # fmt: skip
    return re.sub(r"\{(\w+):\w+\}", lambda m: values[m.group(1)], path)


def console_routes(platform, order: str) -> list[tuple[str, str, bool, dict[str, Any]]]:
    """(method, path, is a page, request kwargs) for every route of the console but sign-in/out."""
    found = []
    for handler in app.routes(Console(platform.settings)):
        for method in sorted(handler.http_methods):
            for path in handler.paths:
                kwargs: dict[str, Any] = {}
                if path == "/api/kafka/dead-letter/replay":
                    kwargs = {"json": {"dry_run": True}}
                elif path == "/kafka/dead-letter/replay":
                    kwargs = {"data": {"expect": "999999999"}}  # authorized, then refused: changed
                elif path == "/api/alerts/notifications":
                    kwargs = {"json": {"status": "resolved", "alerts": []}}
                elif path == "/orders":
                    kwargs = {"params": {"id": order}}
                elif path.endswith("/messages"):
                    kwargs = {"params": {"partition": 0, "limit": 5}}
                page = handler.media_type == MediaType.HTML
                found.append((method, sample_path(path, order), page, kwargs))
    return found


def test_every_console_route_is_for_operators_only(platform, order_id) -> None:
    routes = console_routes(platform, order_id)
    assert len(routes) >= 23, routes  # every view, its API, the webhook and the replays
    customer = platform.customer_token(str(uuid.uuid4()))
    with client(platform) as anonymous, client(platform, customer) as shopper, \
            client(platform, platform.admin_token()) as operator:  # fmt: skip
        for method, path, page, kwargs in routes:
            refused = anonymous.request(method, path, follow_redirects=False, **kwargs)
            if page and method == "GET":
                assert refused.status_code == 303, (path, refused.status_code)
                assert refused.headers["location"].startswith("/sign-in?next=/"), path
            else:
                assert_problem(refused, 401, "Authorization")
                assert refused.headers["www-authenticate"].startswith("Bearer"), path
            assert_problem(shopper.request(method, path, **kwargs), 403, "Authorization")
            allowed = operator.request(method, path, follow_redirects=False, **kwargs)
            expected = 303 if path == "/kafka/dead-letter/replay" else 200
            assert allowed.status_code == expected, (method, path, allowed.text[:300])
            if expected == 303:
                assert allowed.headers["location"] == "/kafka/dead-letter?note=changed"


def test_probes_metrics_docs_scripts_and_sign_in_need_no_token(platform) -> None:
    with client(platform) as anonymous:
        for path in ("/health/live", "/health/ready", "/metrics", "/docs/openapi.json",
                     "/static/charts.js", "/sign-in"):  # fmt: skip
            assert anonymous.get(path).status_code == 200, path
        # the console's own API document says who may call it
        document = anonymous.get("/docs/openapi.json").json()
        replay = document["paths"]["/api/kafka/dead-letter/replay"]["post"]
        assert {"401", "403", "409"} <= set(replay["responses"])


def test_a_token_that_does_not_verify_is_401_and_a_forged_admin_role_too(platform) -> None:
    real = platform.admin_token()
    head, claims, signature = real.split(".")
    for forged in (f"{head}.{claims}.{signature[:-4]}AAAA", "not.a.jwt", "x" * 9000):
        with client(platform, forged) as caller:
            assert_problem(caller.get("/api/kafka"), 401, "Authorization")
            assert_problem(caller.post("/api/kafka/dead-letter/replay", json={}), 401, "Authorization")


def test_the_alertmanager_credential_opens_the_webhook_only(platform) -> None:
    credential = alertmanager.credential_path(platform.settings).read_text().strip()
    with client(platform, credential) as am:
        posted = am.post("/api/alerts/notifications", json={"status": "resolved", "alerts": []})
        assert posted.status_code == 200, posted.text
        assert_problem(am.get("/api/alerts"), 401, "Authorization")
        assert_problem(am.post("/api/kafka/dead-letter/replay", json={"dry_run": True}), 401, "Authorization")
    with client(platform, credential[:-2] + "xx") as wrong:
        assert_problem(wrong.post("/api/alerts/notifications", json={"status": "resolved", "alerts": []}),
                       401, "Authorization")  # fmt: skip


def _sign_in(browser: httpx.Client, token: str, target: str = "/kafka/groups") -> httpx.Response:
    return browser.post("/sign-in", data={"token": token, "next": target},
                        headers={"Origin": browser.base_url.scheme + "://" + browser.base_url.netloc.decode()},
                        follow_redirects=False)  # fmt: skip


def test_a_browser_signs_in_with_an_operators_token_and_out_again(platform) -> None:
    with client(platform) as browser:
        first = browser.get("/kafka/groups", follow_redirects=False)
        assert first.status_code == 303 and first.headers["location"] == "/sign-in?next=/kafka/groups"
        form = browser.get(first.headers["location"])
        assert form.status_code == 200 and 'name=next value="/kafka/groups"' in form.text

        customer = platform.customer_token(str(uuid.uuid4()))
        refused = _sign_in(browser, customer)
        assert refused.status_code == 403 and "no admin role" in refused.text
        assert access.COOKIE not in refused.headers.get("set-cookie", "")
        bad = _sign_in(browser, "eyJhbGciOiJFUzI1NiJ9.e30.c2ln")
        assert bad.status_code == 401 and "does not verify" in bad.text
        assert "eyJhbGciOiJFUzI1NiJ9" not in bad.text  # the page never shows a token back
        assert _sign_in(browser, "").status_code == 400

        ttl = 900
        token = auth.admin_token(platform.settings, ttl)
        signed = _sign_in(browser, f"Bearer {token}", "https://evil.example/phish")
        assert signed.status_code == 303 and signed.headers["location"] == "/"  # never off-site
        cookie = signed.headers["set-cookie"]
        assert cookie.startswith(f"{access.COOKIE}=") and "HttpOnly" in cookie
        assert "samesite=strict" in cookie.lower() and "Path=/" in cookie
        assert "Secure" not in cookie  # plain HTTP on loopback; set over HTTPS (X-Forwarded-Proto)
        max_age = int(re.search(r"Max-Age=(\d+)", cookie).group(1))  # type: ignore[union-attr]
        assert ttl - 60 <= max_age <= ttl  # the session ends with the token

        page = browser.get("/kafka/groups")
        assert page.status_code == 200 and "signed in as admin" in page.text
        assert token not in page.text
        assert browser.get("/api/kafka/groups").status_code == 200  # the API too, by the cookie

        # a change by cookie must come from a console page
        cross = browser.post("/api/kafka/dead-letter/replay", json={"dry_run": True},
                             headers={"Origin": "https://evil.example"})  # fmt: skip
        assert_problem(cross, 403, "Origin")
        assert_problem(browser.post("/api/kafka/dead-letter/replay", json={"dry_run": True}), 403,
                       "Origin")  # fmt: skip
        same = browser.post("/api/kafka/dead-letter/replay", json={"dry_run": True},
                            headers={"Sec-Fetch-Site": "same-origin"})  # fmt: skip
        assert same.status_code == 200, same.text

        out = browser.post("/sign-out", headers={"Sec-Fetch-Site": "same-origin"}, follow_redirects=False)
        assert out.status_code == 303 and out.headers["location"] == "/sign-in"
        assert browser.get("/kafka/groups", follow_redirects=False).status_code == 303

    with client(platform, cookies={access.COOKIE: token}) as https_proxied:
        secure = https_proxied.post("/sign-in", data={"token": token},
                                    headers={"Sec-Fetch-Site": "same-origin", "X-Forwarded-Proto": "https"},
                                    follow_redirects=False)  # fmt: skip
        assert "Secure" in secure.headers["set-cookie"]


def test_an_expired_session_is_sent_back_to_sign_in(platform) -> None:
    expired = auth.admin_token(platform.settings, -120)
    with client(platform, cookies={access.COOKIE: expired}) as browser:
        again = browser.get("/alerts", follow_redirects=False)
        assert again.status_code == 303 and again.headers["location"] == "/sign-in?next=/alerts"
        assert_problem(browser.get("/api/alerts"), 401, "Authorization")


def _dead_letter_of_our_own(platform) -> tuple[str, str]:
    settings = platform.settings
    admin = AdminClient({"bootstrap.servers": settings.kafka_servers})
    topic = f"console-replay-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result()
    key = f"order-{uuid.uuid4().hex[:8]}"
    producer = Producer({"bootstrap.servers": settings.kafka_servers})
    producer.produce(DEAD_LETTER_TOPIC, key=key, value=json.dumps({"replay": key}).encode(), headers=[
        ("dlq.reason", b"RuntimeError: payment provider down (console replay test)"),
        ("dlq.original_topic", topic.encode()), ("dlq.original_partition", b"0"),
        ("dlq.original_offset", b"7"), ("dlq.consumer_group", b"order-saga"), ("dlq.attempts", b"5"),
    ])  # fmt: skip
    assert producer.flush(10) == 0
    return topic, key


def _published(platform, topic: str) -> list[Any]:
    consumer = Consumer({"bootstrap.servers": platform.settings.kafka_servers,
                         "group.id": f"test-{uuid.uuid4().hex}", "enable.auto.commit": False})  # fmt: skip
    consumer.assign([TopicPartition(topic, 0, 0)])
    try:
        found = [m for m in consumer.consume(10, timeout=3) if m.error() is None]
    finally:
        consumer.close()
    return found


def test_dead_letter_replay_over_http_is_for_operators(platform) -> None:
    topic, key = _dead_letter_of_our_own(platform)
    customer = platform.customer_token(str(uuid.uuid4()))
    with client(platform) as anonymous, client(platform, customer) as shopper, \
            client(platform, platform.admin_token()) as operator:  # fmt: skip
        assert_problem(anonymous.post("/api/kafka/dead-letter/replay", json={}), 401, "Authorization")
        assert_problem(shopper.post("/api/kafka/dead-letter/replay", json={}), 403, "Authorization")
        assert _published(platform, topic) == []  # refused callers replayed nothing

        listed = operator.post("/api/kafka/dead-letter/replay", json={"dry_run": True})
        assert listed.status_code == 200, listed.text
        mine = [m for m in listed.json()["messages"] if m["key"] == key]
        assert mine and mine[0]["original_topic"] == topic and "payment provider down" in mine[0]["reason"]
        assert listed.json()["replayed"] == 0 and _published(platform, topic) == []
        count = len(listed.json()["messages"])

        assert_problem(operator.post("/api/kafka/dead-letter/replay", json={"expect": count + 1}),
                       409, "expect")  # fmt: skip
        assert_problem(operator.post("/api/kafka/dead-letter/replay", json={"expect": "all"}), 400,
                       "expect")  # fmt: skip
        assert_problem(operator.post("/api/kafka/dead-letter/replay", json={"replay": True}), 400,
                       "replay")  # fmt: skip
        assert _published(platform, topic) == []

        done = operator.post("/api/kafka/dead-letter/replay", json={"expect": count})
        assert done.status_code == 200, done.text
        assert done.json()["replayed"] == count
        [message] = _published(platform, topic)
        assert message.key().decode() == key
        again = operator.post("/api/kafka/dead-letter/replay", json={"dry_run": True}).json()
        assert key not in [m["key"] for m in again["messages"]]
    log = Path(platform.settings.data_path / "logs" / "console.log").read_text()
    assert f"dlq replay by admin: {count} message(s) replayed" in log


def test_the_dead_letter_page_replays_with_its_button(platform) -> None:
    topic, key = _dead_letter_of_our_own(platform)
    with client(platform, platform.admin_token()) as operator:

        def waiting() -> list[str]:
            listed = operator.post("/api/kafka/dead-letter/replay", json={"dry_run": True}).json()
            return [m["key"] for m in listed["messages"]]

        count = len(waiting())
        page = operator.get("/kafka/dead-letter").text
        assert f'name=expect value="{count}"' in page and f"Replay all {count} message(s)" in page
        pressed = operator.post("/kafka/dead-letter/replay", data={"expect": str(count)},
                                follow_redirects=False)  # fmt: skip
        assert pressed.status_code == 303 and pressed.headers["location"] == f"/kafka/dead-letter?replayed={count}"
        shown = operator.get(pressed.headers["location"]).text
        assert f"Replayed {count} message(s)" in shown
        assert [m.key().decode() for m in _published(platform, topic)] == [key]
        # ours is gone; another test's message a live consumer refuses again may be back already
        assert key not in waiting()


def test_the_console_never_shows_addresses_or_tokens_and_logs_none(platform, order_id) -> None:
    token = platform.admin_token()
    with client(platform, token) as operator:
        deadline = time.monotonic() + 30
        while True:  # the order's events reach the event store with the order
            found = operator.get(f"/api/orders/{order_id}")
            assert found.status_code == 200, found.text
            if found.json()["events"] or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        shown = found.text + operator.get("/orders", params={"id": order_id}).text
        assert found.json()["events"], "the order's events are shown"
        assert found.json()["order"]["shipping_address"] == {"country": "US", "redacted": True}
        for private in ("Grace Hopper", "99 Cobol Lane", "22201-4455", "Arlington"):
            assert private not in shown, private
        assert token not in shown and token.split(".")[2] not in shown
        _sign_in(operator, token)
    logs = platform.settings.data_path / "logs"
    auth_dir = platform.settings.data_path / "auth"
    secrets = [token, token.split(".")[2], "99 Cobol Lane",
               alertmanager.credential_path(platform.settings).read_text().strip(),
               (auth_dir / "service-token").read_text().strip(),
               *(p.read_text().strip() for p in (auth_dir / "postgres").iterdir() if p.name != "pgpass")]  # fmt: skip
    assert len(secrets) >= 7
    for path in (logs / "console.log", logs / "alertmanager.log"):
        text = path.read_text() if path.exists() else ""
        for secret in secrets:
            assert secret not in text, (path.name, secret[:12])
    assert "console sign-in: admin" in (logs / "console.log").read_text()
