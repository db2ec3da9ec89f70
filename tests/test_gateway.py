"""The API gateway: the rendered nginx.conf, and the real nginx running it in front of echo servers.

Integration tests start Debian's nginx on ports 31079/31080 with upstream echo servers on
31181-31183 (31189 stays closed), all under a private data folder, so they run beside a running
platform. Every request carries a fresh bearer token (a JWT-shaped string: nginx keys the rate limit
on it and does not verify it; the services do, tests/security) unless a test pins one, so only the
rate-limit tests ever meet the (deliberately small) rate limits.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import re
import ssl
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509

from shopstream.config import Settings
from shopstream_tools.runtime import gateway, gateway_conf, gateway_routes, gateway_tls, processes

try:  # tests/ is a plain folder today; keep working if it becomes a package
    from tests.gateway_upstream import EchoServer
except ImportError:
    from gateway_upstream import EchoServer

GATEWAY_PORT = 31080
STATUS_PORT = 31079
TLS_PORT = 31443
ECHO_PORTS = (31181, 31182, 31183)
CLOSED_PORT = 31189
RATE, BURST = 20, 20
ADDRESS_RATE = 10_000  # high: only the test that means to meets it
BODY_LIMIT = 4096
PRODUCT_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE"
ORDER_METHODS = "GET, HEAD, POST, DELETE"
GENERATED_ID = re.compile(r"^[0-9a-f]{32}$")

StartGateway = Callable[[dict[str, list[int]]], int]
Echo = dict[int, EchoServer]


# Client -----------------------------------------------------------------------------------------
@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def json(self) -> Any:
        return json.loads(self.body)


def token() -> str:
    """A JWT-shaped string with a signature of its own: a principal the gateway has not seen."""
    return f"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ0In0.{uuid.uuid4().hex}{uuid.uuid4().hex}"


def call(
    method: str,
    path: str,
    body: bytes | str | Iterator[bytes] | None = None,
    headers: dict[str, str] | None = None,
    port: int = GATEWAY_PORT,
    conn: http.client.HTTPConnection | None = None,
) -> Reply:
    """One request, on a fresh connection unless one is given; a fresh principal by default."""
    sent = {"Authorization": f"Bearer {token()}", **(headers or {})}
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=sent)
        resp = conn.getresponse()
        return Reply(resp.status, resp.headers, resp.read())
    finally:
        if own:
            conn.close()


def post_without_length(path: str) -> Reply:
    """A POST with neither Content-Length nor Transfer-Encoding (http.client adds a length)."""
    conn = http.client.HTTPConnection("127.0.0.1", GATEWAY_PORT, timeout=10)
    try:
        conn.putrequest("POST", path)
        conn.putheader("Authorization", f"Bearer {token()}")
        conn.endheaders()
        resp = conn.getresponse()
        return Reply(resp.status, resp.headers, resp.read())
    finally:
        conn.close()


def assert_problem(reply: Reply, status: int, title: str) -> dict[str, Any]:
    assert reply.status == status, reply.body
    assert reply.header("Content-Type") == "application/problem+json"
    problem = reply.json()
    assert problem["type"] == "about:blank"
    assert problem["title"] == title
    assert problem["status"] == status
    assert problem["detail"]
    assert reply.header("X-Request-Id")
    return problem


def served_by(reply: Reply) -> int:
    assert reply.status == 200, reply.body
    return int(reply.json()["port"])


# Fixtures ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        data_dir=str(tmp_path_factory.mktemp("gateway-data")),
        gateway_port=GATEWAY_PORT,
        gateway_status_port=STATUS_PORT,
        gateway_rate_limit=RATE,
        gateway_rate_burst=BURST,
        gateway_address_rate_limit=ADDRESS_RATE,
        gateway_body_limit="4k",
        gateway_tls_port=TLS_PORT,
    )


@pytest.fixture(scope="module")
def echo_servers() -> Iterator[Echo]:
    servers = {port: EchoServer(port).start() for port in ECHO_PORTS}
    yield servers
    for server in servers.values():
        server.close()


@pytest.fixture
def echo(echo_servers: Echo) -> Echo:
    for server in echo_servers.values():
        server.requests.clear()
    return echo_servers


@pytest.fixture
def start_gateway(settings: Settings) -> Iterator[StartGateway]:
    """Start the real nginx with the given upstreams; it is stopped when the test ends."""
    gateway.stop(settings, timeout=10)

    def start(upstreams: dict[str, list[int]]) -> int:
        return gateway.start(settings, upstreams)

    yield start
    gateway.stop(settings, timeout=10)
    assert not processes.port_open(GATEWAY_PORT), "gateway still listening after stop"


@pytest.fixture
def standard(start_gateway: StartGateway, echo: Echo) -> Echo:
    """Products on two instances, orders on a third."""
    start_gateway({"product": [31181, 31182], "order": [31183]})
    return echo


# render() ---------------------------------------------------------------------------------------
def _block(conf: str, opening: str) -> str:
    """The text of the `{ ... }` block that starts at `opening` (no nested blocks expected)."""
    start = conf.index(opening)
    return conf[start : conf.index("}", start) + 1]


def test_render_lists_each_instance_in_its_upstream() -> None:
    conf = gateway.render(Settings(), {"product": [31181, 31182], "order": [31183]})
    product = _block(conf, "upstream product_service {")
    order = _block(conf, "upstream order_service {")
    assert re.findall(r"server 127\.0\.0\.1:(\d+)", product) == ["31181", "31182"]
    assert re.findall(r"server 127\.0\.0\.1:(\d+)", order) == ["31183"]
    for block in (product, order):
        assert "least_conn;" in block
        assert "keepalive 64;" in block
    assert "proxy_pass http://product_service;" in conf
    assert "proxy_pass http://order_service;" in conf


def test_render_routes_an_empty_instance_list_to_503() -> None:
    for upstreams in ({"product": [31181], "order": []}, {"product": [31181]}):
        conf = gateway.render(Settings(), upstreams)
        assert "upstream order_service" not in conf
        assert "proxy_pass http://order_service" not in conf
        orders = conf[conf.index("location ~ ^/orders(?:/|$) {") :]
        assert orders[: orders.index("\n        }")].rstrip().endswith("return 503;")
        assert "proxy_pass http://product_service;" in conf


def test_render_takes_limits_and_ports_from_settings() -> None:
    settings = Settings(
        gateway_port=9180,
        gateway_status_port=9179,
        gateway_body_limit="2m",
        gateway_rate_limit=123,
        gateway_rate_burst=456,
    )
    conf = gateway.render(settings, {"product": [9181], "order": [9182]})
    assert "client_max_body_size 2m;" in conf
    assert "rate=123r/s;" in conf
    assert "limit_req zone=gw_clients burst=456 nodelay;" in conf
    assert "limit_req zone=gw_addresses burst=20000 nodelay;" in conf
    assert "listen 127.0.0.1:9180 default_server" in conf
    assert "listen 127.0.0.1:9179 " in conf
    assert re.search(r"^\s*listen (?!127\.0\.0\.1:)", conf, re.M) is None
    assert '"detail":"the request body is larger than the gateway limit of 2m"' in conf


def test_render_runs_workers_as_root_only_when_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gateway.os, "geteuid", lambda: 0)
    assert re.search(r"^user root;$", gateway.render(Settings(), {}), re.M)
    monkeypatch.setattr(gateway.os, "geteuid", lambda: 1000)
    assert re.search(r"^\s*user\s", gateway.render(Settings(), {}), re.M) is None


def test_render_keeps_every_written_path_under_the_data_folder(tmp_path: Path) -> None:
    settings = Settings(data_dir=str(tmp_path))
    conf = gateway.render(settings, {"product": [8081]})
    written = re.findall(
        r"^\s*(\w+_temp_path|pid|error_log|access_log)\s+(\S+)", conf, re.M
    )
    names = {name for name, _ in written}
    assert names == {
        "client_body_temp_path", "proxy_temp_path", "fastcgi_temp_path", "uwsgi_temp_path",
        "scgi_temp_path", "pid", "error_log", "access_log",
    }
    for name, path in written:
        if path != "off;":
            assert path.startswith(str(tmp_path) + "/"), (name, path)
    access = f"access_log {tmp_path}/logs/gateway-access.log gateway_json buffer=64k flush=1s;"
    assert access in conf
    assert f"error_log {tmp_path}/logs/gateway.log warn;" in conf


def test_render_rejects_what_nginx_would_choke_on() -> None:
    with pytest.raises(ValueError, match="nginx size"):
        gateway.render(Settings(gateway_body_limit="64 kb"), {})
    with pytest.raises(ValueError, match="no gateway route"):
        gateway.render(Settings(), {"inventory": [8083]})
    with pytest.raises(ValueError, match="rate"):
        gateway.render(Settings(gateway_rate_limit=0), {})
    with pytest.raises(ValueError, match="not a port"):
        gateway.render(Settings(), {"product": [70000]})


def test_problem_pages_are_valid_json() -> None:
    conf = gateway.render(Settings(), {"product": [8081]})
    bodies = re.findall(r"return (\d{3}) '(\{.*\})';", conf)
    statuses = {int(status) for status, _ in bodies}
    assert {404, 405, 413, 415, 429, 502, 503, 504} <= statuses
    for status, body in bodies:
        if status == "200":
            continue
        # Substitute the nginx variables as they would be at request time.
        problem = json.loads(re.sub(r"\$\w+", "X", body))
        assert problem["status"] == int(status)
        assert problem["type"] == "about:blank"


@pytest.mark.integration
def test_rendered_config_passes_nginx_t(settings: Settings) -> None:
    for upstreams in ({"product": [31181, 31182], "order": [31183]}, {}):
        path = gateway.gateway_dir(settings) / "check.conf"
        gateway._write_conf(settings, upstreams, path)
        prefix = f"{gateway.gateway_dir(settings)}/"
        log = str(gateway.error_log_path(settings))
        result = subprocess.run(
            [gateway.nginx_binary(), "-t", "-p", prefix, "-c", str(path), "-e", log],
            capture_output=True, text=True, check=False,
        )
        assert result.returncode == 0, result.stderr
        assert "test is successful" in result.stderr


# The running gateway ----------------------------------------------------------------------------
@pytest.mark.integration
def test_start_and_stop(settings: Settings, start_gateway: StartGateway, echo: Echo) -> None:
    master = start_gateway({"product": [31181], "order": [31183]})
    assert gateway.pid(settings) == master
    assert gateway.running(settings)
    assert gateway.pid_path(settings).exists()
    # the master forks its workers after it wrote its pid: on a busy machine the second comes later
    processes.wait_until(
        lambda: sum("worker process" in t for t in gateway._workers(master).values())
        == gateway.WORKER_PROCESSES, 10, "nginx workers", pid=master,
    )  # fmt: skip
    workers = [p for p, t in gateway._workers(master).items() if "worker process" in t]
    # start() on a running gateway applies the upstreams in place rather than starting another.
    assert gateway.start(settings, {"product": [31182], "order": [31183]}) == master
    assert served_by(call("GET", "/products/1")) == 31182

    gateway.stop(settings)
    assert gateway.pid(settings) is None
    assert not gateway.running(settings)
    assert not processes.port_open(GATEWAY_PORT)
    assert not gateway.pid_path(settings).exists()
    assert not any(processes.alive(p) for p in [master, *workers])
    gateway.stop(settings)  # stopping a stopped gateway is a no-op


@pytest.mark.integration
def test_routes_products_and_orders(standard: Echo) -> None:
    for path in ("/products", "/products/42", "/products/42/stock?x=1&y=2", "/products/"):
        reply = call("GET", path)
        assert served_by(reply) in (31181, 31182)
        seen = reply.json()
        assert seen["path"] == path
        assert seen["headers"]["host"] == f"127.0.0.1:{GATEWAY_PORT}"
        assert seen["headers"]["x-forwarded-for"] == "127.0.0.1"
    for path in ("/orders", "/orders/7", "/orders/7/lines"):
        reply = call("GET", path)
        assert served_by(reply) == 31183
        assert reply.json()["path"] == path
    assert call("GET", "/products", headers={"Host": "shop.example"}).json()["headers"][
        "host"
    ] == "shop.example"


@pytest.mark.integration
def test_unknown_path_is_404_problem(standard: Echo) -> None:
    for path in ("/", "/productsx", "/order", "/api/products", "/healthz"):
        assert_problem(call("GET", path), 404, "Not Found")
    assert_problem(call("POST", "/carts", body="{}", headers={"Content-Type": "application/json"}),
                   404, "Not Found")
    assert all(not server.seen() for server in standard.values())


@pytest.mark.integration
def test_least_conn_spreads_over_instances(start_gateway: StartGateway, echo: Echo) -> None:
    start_gateway({"product": list(ECHO_PORTS)})
    counts = Counter(served_by(call("GET", f"/products/{i}")) for i in range(30))
    assert set(counts) == set(ECHO_PORTS), counts

    # While one instance holds a slow request, least_conn sends everything else elsewhere
    # (round robin would keep giving it a share).
    slow: dict[str, Reply] = {}
    worker = threading.Thread(target=lambda: slow.update(r=call("GET", "/products/slow?delay=1.5")))
    worker.start()
    deadline = time.monotonic() + 5
    while not any("delay" in r["path"] for s in echo.values() for r in s.seen()):
        assert time.monotonic() < deadline, "slow request never arrived"
        time.sleep(0.01)
    busy = next(p for p, s in echo.items() if any("delay" in r["path"] for r in s.seen()))
    during = Counter(served_by(call("GET", f"/products/{i}")) for i in range(12))
    worker.join()
    assert served_by(slow["r"]) == busy
    assert busy not in during, during
    assert len(during) == 2


@pytest.mark.integration
def test_method_not_allowed_is_405_with_allow(standard: Echo) -> None:
    json_body = {"body": "{}", "headers": {"Content-Type": "application/json"}}
    for method, path, allow in (
        ("PUT", "/orders/1", ORDER_METHODS),
        ("PATCH", "/orders/1", ORDER_METHODS),
        ("OPTIONS", "/orders", ORDER_METHODS),
        ("OPTIONS", "/products/1", PRODUCT_METHODS),
        ("TRACE", "/products", PRODUCT_METHODS),
    ):
        kwargs: dict[str, Any] = json_body if method in ("PUT", "PATCH") else {}
        reply = call(method, path, **kwargs)
        problem = assert_problem(reply, 405, "Method Not Allowed")
        assert reply.header("Allow") == allow
        assert method in problem["detail"]
    assert all(not server.seen() for server in standard.values())

    assert call("DELETE", "/orders/1").status == 200
    assert call("PATCH", "/products/1", **json_body).status == 200
    assert call("PUT", "/products/1", **json_body).status == 200
    assert call("HEAD", "/orders/1").status == 200


@pytest.mark.integration
def test_writes_with_a_body_must_be_json(standard: Echo) -> None:
    def post(method: str, content_type: str | None, body: Any = b'{"a":1}') -> Reply:
        headers = {"Content-Type": content_type} if content_type else {}
        return call(method, "/products/1", body=body, headers=headers)

    for method, content_type in (
        ("POST", "text/plain"),
        ("POST", None),
        ("PUT", "application/jsonx"),
        ("PUT", "application/x-www-form-urlencoded"),
        ("POST", "application/merge-patch+json"),
        ("PATCH", "text/json"),
    ):
        assert_problem(post(method, content_type), 415, "Unsupported Media Type")
    chunked_text = post("POST", "text/plain", body=iter([b"not ", b"json"]))
    assert_problem(chunked_text, 415, "Unsupported Media Type")
    assert all(not server.seen() for server in standard.values())

    for method, content_type in (
        ("POST", "application/json"),
        ("POST", "application/json; charset=utf-8"),
        ("PUT", "Application/JSON;charset=UTF-8"),
        ("PATCH", "application/json"),
        ("PATCH", "application/merge-patch+json"),
    ):
        reply = post(method, content_type)
        assert reply.status == 200, (method, content_type, reply.body)
        assert reply.json()["method"] == method
        assert reply.json()["body_length"] == len(b'{"a":1}')
    chunked = post("POST", "application/json", body=iter([b'{"a":', b"1}"]))
    assert chunked.status == 200
    assert chunked.json()["body_length"] == len(b'{"a":1}')


@pytest.mark.integration
def test_post_without_a_body_needs_no_content_type(standard: Echo) -> None:
    reply = call("POST", "/orders/7/cancel")  # http.client sends Content-Length: 0
    assert served_by(reply) == 31183
    assert reply.json()["headers"].get("content-length") == "0"
    assert "content-type" not in reply.json()["headers"]

    bare = post_without_length("/orders/8/cancel")
    assert served_by(bare) == 31183
    assert bare.json()["method"] == "POST"
    assert bare.json()["path"] == "/orders/8/cancel"


@pytest.mark.integration
def test_body_over_the_limit_is_413(standard: Echo) -> None:
    json_type = {"Content-Type": "application/json"}
    at_limit = call("POST", "/products", body=b"x" * BODY_LIMIT, headers=json_type)
    assert at_limit.status == 200
    assert at_limit.json()["body_length"] == BODY_LIMIT

    over = call("POST", "/products", body=b"x" * (BODY_LIMIT + 1), headers=json_type)
    problem = assert_problem(over, 413, "Content Too Large")
    assert "4k" in problem["detail"]
    chunks = iter([b"x" * 3000, b"x" * 3000])
    assert_problem(call("PUT", "/products/1", body=chunks, headers=json_type), 413,
                   "Content Too Large")
    assert len([r for s in standard.values() for r in s.seen()]) == 1


@pytest.mark.integration
def test_rate_limit_per_principal_is_429(standard: Echo) -> None:
    client = {"Authorization": f"Bearer {token()}"}
    conn = http.client.HTTPConnection("127.0.0.1", GATEWAY_PORT, timeout=10)
    began = time.monotonic()
    replies = [call("GET", "/products/1", headers=client, conn=conn) for _ in range(200)]
    elapsed = time.monotonic() - began
    conn.close()
    statuses = Counter(r.status for r in replies)
    assert set(statuses) == {200, 429}, statuses
    # The burst passes, then roughly the rate: never the whole flood.
    assert BURST <= statuses[200] <= BURST + RATE * elapsed + 5, (statuses, elapsed)
    limited = next(r for r in replies if r.status == 429)
    assert_problem(limited, 429, "Too Many Requests")
    assert limited.header("Retry-After") == "1"

    # Other principals are unaffected; the flooding one is still limited. One request in 1/RATE s
    # passes again, so a handful fired at once is mostly refused.
    assert call("GET", "/products/1").status == 200
    again = Counter(call("GET", "/products/1", headers=client).status for _ in range(5))
    assert again[429] >= 3, again
    # A header the client picks changes nothing: the same token is the same principal.
    rotated = Counter(
        call("GET", "/products/1", headers={**client, "X-Client-Id": uuid.uuid4().hex}).status
        for _ in range(5)
    )
    assert rotated[429] >= 3, rotated


@pytest.mark.integration
def test_anonymous_clients_are_limited_by_address_whatever_x_client_id_says(
    standard: Echo,
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", GATEWAY_PORT, timeout=10)
    statuses = Counter(
        call("GET", "/products/1", conn=conn,
             headers={"Authorization": "", "X-Client-Id": f"c-{uuid.uuid4().hex}"}).status
        for _ in range(100)
    )  # fmt: skip
    conn.close()
    assert statuses[429] >= 50, statuses
    # neither does an Authorization header that is not a bearer token buy a bucket of its own
    odd = Counter(
        call("GET", "/products/1", headers={"Authorization": f"Basic {uuid.uuid4().hex}"}).status
        for _ in range(5)
    )
    assert odd[429] >= 3, odd


@pytest.mark.integration
def test_tokens_the_client_cannot_sign_are_capped_per_address(
    settings: Settings, echo: Echo
) -> None:
    """A fresh forged token per request gets a fresh principal bucket, but every one of them is a
    401 at the services (tests/security) and the address's ceiling limits them all together."""
    tight = dataclasses.replace(settings, gateway_address_rate_limit=RATE)
    gateway.stop(settings, timeout=10)
    gateway.start(tight, {"product": [31181, 31182], "order": [31183]})
    try:
        conn = http.client.HTTPConnection("127.0.0.1", GATEWAY_PORT, timeout=10)
        began = time.monotonic()
        statuses = Counter(call("GET", "/products/1", conn=conn).status for _ in range(200))
        elapsed = time.monotonic() - began
        conn.close()
    finally:
        gateway.stop(tight, timeout=10)
    assert statuses[429] > 0, (statuses, elapsed)
    assert statuses[200] <= RATE * (1 + elapsed) + 5, (statuses, elapsed)


@pytest.mark.integration
def test_request_id_generated_kept_or_replaced(standard: Echo) -> None:
    first, second = call("GET", "/products/1"), call("GET", "/products/1")
    for reply in (first, second):
        rid = reply.header("X-Request-Id")
        assert rid and GENERATED_ID.match(rid), rid
        assert reply.json()["headers"]["x-request-id"] == rid
    assert first.header("X-Request-Id") != second.header("X-Request-Id")

    valid = "order-7.retry_2-" + "a" * 48  # exactly 64 characters
    assert len(valid) == 64
    kept = call("GET", "/orders/7", headers={"X-Request-Id": valid})
    assert kept.header("X-Request-Id") == valid
    assert kept.json()["headers"]["x-request-id"] == valid
    assert len(kept.headers.get_all("X-Request-Id") or []) == 1

    for bad in ("has space", "a" * 65, "quote\"d", "semi;colon", "ünï"):
        replaced = call("GET", "/orders/7", headers={"X-Request-Id": bad})
        rid = replaced.header("X-Request-Id")
        assert rid and GENERATED_ID.match(rid), (bad, rid)
        assert replaced.json()["headers"]["x-request-id"] == rid

    errors = [
        call("GET", "/nowhere", headers={"X-Request-Id": "err-404"}),
        call("PUT", "/orders/1", headers={"X-Request-Id": "err-405"}),
        call("POST", "/products", body="x", headers={"X-Request-Id": "err-415",
                                                      "Content-Type": "text/plain"}),
    ]
    assert [e.header("X-Request-Id") for e in errors] == ["err-404", "err-405", "err-415"]
    assert GENERATED_ID.match(call("GET", "/nowhere").header("X-Request-Id") or "")


@pytest.mark.integration
def test_upstream_down_is_502_and_none_running_is_503(start_gateway: StartGateway) -> None:
    start_gateway({"product": [CLOSED_PORT], "order": []})
    for method, kwargs in (("GET", {}), ("POST", {"body": "{}", "headers": {
            "Content-Type": "application/json"}})):
        problem = assert_problem(call(method, "/products/1", **kwargs), 502, "Bad Gateway")
        assert "product" in problem["detail"]
    unavailable = call("GET", "/orders/1")
    problem = assert_problem(unavailable, 503, "Service Unavailable")
    assert "order" in problem["detail"]
    assert unavailable.header("Retry-After") == "1"
    assert_problem(post_without_length("/orders/1/cancel"), 503, "Service Unavailable")


@pytest.mark.integration
def test_a_route_with_its_requests_in_flight_refuses_more_with_503_and_others_still_pass(
    settings: Settings, echo: Echo
) -> None:
    limited = dataclasses.replace(settings, gateway_route_concurrency=2)
    gateway.stop(limited, timeout=10)
    gateway.start(limited, {"product": [31181], "order": [31183]})
    orders = echo[31183]
    slow: list[Reply] = []
    try:
        threads = [
            threading.Thread(target=lambda: slow.append(call("GET", "/orders/slow?delay=2")))
            for _ in range(2)
        ]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 5
        while len(orders.seen()) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(orders.seen()) == 2, orders.seen()

        busy = call("GET", "/orders/1")
        problem = assert_problem(busy, 503, "Service Unavailable")
        assert problem["detail"].startswith("the order service has 2 requests in flight"), problem
        assert busy.header("Retry-After") == "1"
        # A POST with an Idempotency-Key goes through the route's retry-safe location: counted too.
        post = call("POST", "/orders", body="{}", headers={
            "Content-Type": "application/json", "Idempotency-Key": uuid.uuid4().hex})  # fmt: skip
        assert_problem(post, 503, "Service Unavailable")
        assert len(orders.seen()) == 2, "a refused request reached the service"
        assert not slow, "refused only while the two were still in flight"
        # Another route has a count of its own.
        assert served_by(call("GET", "/products/1")) == 31181

        for thread in threads:
            thread.join(10)
        assert [r.status for r in slow] == [200, 200]
        assert served_by(call("GET", "/orders/1")) == 31183
    finally:
        gateway.stop(limited, timeout=10)


def test_render_refuses_a_route_concurrency_nginx_cannot_take() -> None:
    for concurrency in (0, 65536):
        with pytest.raises(ValueError, match="gateway_route_concurrency"):
            gateway.render(Settings(gateway_route_concurrency=concurrency), {"order": [31183]})
    conf = gateway.render(Settings(gateway_route_concurrency=7), {"product": [1], "order": [2]})
    # each route, and the orders' retry-safe location
    assert conf.count("limit_conn gw_routes 7;") == 3


@pytest.mark.integration
def test_upstream_errors_pass_through_untouched(standard: Echo) -> None:
    # Only nginx's own errors become problem pages; a service's 502 or 404 is its business.
    for status in (404, 502, 503):
        reply = call("GET", f"/products/1?status={status}")
        assert reply.status == status
        assert reply.header("Content-Type") == "application/json"
        assert reply.json()["port"] in (31181, 31182)


@pytest.mark.integration
def test_access_log_lines_are_json_with_upstream_timing(
    settings: Settings, standard: Echo
) -> None:
    marker = f"log-{uuid.uuid4().hex}"
    served = call("GET", "/products/5?q=1", headers={"X-Request-Id": marker, "X-Client-Id": "c-1"})
    assert served.status == 200
    call("GET", "/nope", headers={"X-Request-Id": marker + "-404"})

    log = gateway.access_log_path(settings)
    deadline = time.monotonic() + 5  # buffered: flushed within a second
    entries: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline and len(entries) < 2:
        lines = log.read_text().splitlines() if log.exists() else []
        entries = {e["request_id"]: e for e in map(json.loads, lines) if
                   e["request_id"].startswith(marker)}
        time.sleep(0.1)
    ok, missing = entries[marker], entries[marker + "-404"]
    assert ok["method"] == "GET"
    assert ok["uri"] == "/products/5?q=1"
    assert ok["status"] == 200
    assert ok["client"] == "127.0.0.1"
    assert ok["client_id"] == "c-1"
    assert ok["bytes"] == len(served.body)
    assert isinstance(ok["request_time"], float | int)
    assert ok["upstream_addr"] == f"127.0.0.1:{served.json()['port']}"
    assert float(ok["upstream_connect_time"]) >= 0
    assert float(ok["upstream_response_time"]) >= 0
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", ok["time"])
    assert missing["status"] == 404
    assert missing["upstream_addr"] == ""


@pytest.mark.integration
def test_status_port_serves_fixed_response_and_stub_status(standard: Echo) -> None:
    fixed = call("GET", "/fixed", port=STATUS_PORT)
    assert fixed.status == 200
    assert fixed.header("Content-Type") == "application/json"
    assert fixed.json() == {"id": "ceiling", "name": "fixed response"}

    status = call("GET", "/nginx_status", port=STATUS_PORT)
    assert status.status == 200
    text = status.body.decode()
    assert text.startswith("Active connections:")
    assert re.search(r"Reading: \d+ Writing: \d+ Waiting: \d+", text)

    other = call("GET", "/products", port=STATUS_PORT)
    assert other.status == 404
    assert other.header("Content-Type") == "application/problem+json"
    assert all(not server.seen() for server in standard.values())


@pytest.mark.integration
def test_reload_changes_instances_without_failing_a_request(
    settings: Settings, start_gateway: StartGateway, echo: Echo
) -> None:
    master = start_gateway({"product": [31181, 31182], "order": [31183]})
    stop = threading.Event()
    failures: list[str] = []
    counts = Counter[str]()
    lock = threading.Lock()

    def note(kind: str, error: str | None = None) -> None:
        with lock:
            counts[kind] += 1
            if error:
                failures.append(f"{kind}: {error}")

    def fresh_connections(method: str) -> None:
        headers = {"Content-Type": "application/json"} if method == "POST" else {}
        while not stop.is_set():
            try:
                reply = call(method, "/products/1", body="{}" if method == "POST" else None,
                             headers=headers)
                note(method, None if reply.status == 200 else f"{reply.status} {reply.body!r}")
            except OSError as exc:
                note(method, repr(exc))

    def keepalive_connection() -> None:
        # An HTTP/1.1 client may retry an idempotent request once when a reused connection is
        # closed under it (RFC 9112 9.3.1); an old worker closing idle connections is that case.
        conn = http.client.HTTPConnection("127.0.0.1", GATEWAY_PORT, timeout=10)
        reused = False
        while not stop.is_set():
            try:
                reply = call("GET", "/orders/1", conn=conn)
                reused = True
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
                conn.close()
                if not reused:
                    note("keepalive", repr(exc))
                    continue
                reused = False
                note("keepalive-retry")
                continue
            note("keepalive", None if reply.status == 200 else str(reply.status))
        conn.close()

    threads = [
        threading.Thread(target=fresh_connections, args=("GET",)),
        threading.Thread(target=fresh_connections, args=("GET",)),
        threading.Thread(target=fresh_connections, args=("POST",)),
        threading.Thread(target=keepalive_connection),
    ]
    in_flight: dict[str, Reply] = {}
    slow = threading.Thread(
        target=lambda: in_flight.update(r=call("GET", "/orders/slow?delay=1.0"))
    )
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.3)
        slow.start()
        time.sleep(0.2)  # the slow request is now inside an old worker
        gateway.reload(settings, {"product": [31181, 31182, 31183], "order": [31183]})
        after_add = Counter(served_by(call("GET", f"/products/{i}")) for i in range(30))
        time.sleep(0.3)
        gateway.reload(settings, {"product": [31182, 31183], "order": [31183]})
        removed_at = len(echo[31181].seen())
        time.sleep(0.5)
        removed_after = len(echo[31181].seen()) - removed_at
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=15)
        slow.join(timeout=15)

    assert failures == [], failures[:10]
    assert counts["GET"] > 50 and counts["POST"] > 20 and counts["keepalive"] > 20, counts
    assert in_flight["r"].status == 200
    assert after_add[31183] > 0, after_add
    assert removed_after == 0
    assert gateway.pid(settings) == master  # reloaded, never restarted


@pytest.mark.integration
def test_reload_with_a_broken_config_keeps_serving_the_old_one(
    settings: Settings, start_gateway: StartGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    start_gateway({"product": [31181], "order": [31183]})
    before = gateway.conf_path(settings).read_text()
    real_render = gateway.render
    monkeypatch.setattr(
        gateway, "render", lambda s, u: real_render(s, u).replace("least_conn;", "least_conn")
    )
    with pytest.raises(RuntimeError, match="nginx -t"):
        gateway.reload(settings, {"product": [31182], "order": [31183]})
    assert gateway.conf_path(settings).read_text() == before
    assert served_by(call("GET", "/products/1")) == 31181


@pytest.mark.integration
def test_start_reports_a_port_in_use(settings: Settings, start_gateway: StartGateway) -> None:
    with EchoServer(GATEWAY_PORT), pytest.raises(RuntimeError, match="did not start"):
        start_gateway({"product": [31181]})
    assert gateway.pid(settings) is None


def test_size_bytes_reads_nginx_sizes() -> None:
    assert gateway.size_bytes("4k") == BODY_LIMIT
    assert gateway.size_bytes("1M") == 1024**2
    assert gateway.size_bytes("512") == 512
    for bad in ("", "1.5m", "10kb", "-1k"):
        with pytest.raises(ValueError):
            gateway.size_bytes(bad)


# Balancing strategies (Settings.gateway_balancing) -------------------------------------------------
def test_render_writes_each_balancing_strategy() -> None:
    upstreams = {"product": [31181, 31182], "order": [31183]}
    for strategy, directive in gateway_conf.BALANCING.items():
        conf = gateway.render(Settings(gateway_balancing=strategy), upstreams)
        product = _block(conf, "upstream product_service {")
        others = set(gateway_conf.BALANCING.values()) - {directive, ""}
        assert (directive in product) if directive else not any(d in product for d in others), strategy
        assert ("map $arg_customer_id" in conf) == (strategy == "customer_hash")
    with pytest.raises(ValueError, match="gateway_balancing"):
        gateway.render(Settings(gateway_balancing="fastest"), upstreams)


@pytest.mark.integration
def test_balancing_strategies_under_real_nginx(settings: Settings, echo: Echo) -> None:
    from dataclasses import replace

    try:
        for strategy in gateway_conf.BALANCING:
            chosen = replace(settings, gateway_balancing=strategy)
            gateway.stop(chosen, timeout=10)
            gateway.start(chosen, {"product": list(ECHO_PORTS)})
            spread = Counter(served_by(call("GET", f"/products/{i}")) for i in range(30))
            if strategy == "customer_hash":
                # every request of one customer on one instance; the customers spread over all
                homes = {}
                for c in range(24):
                    seen = {served_by(call("GET", f"/products/x?customer_id=c{c}")) for _ in range(4)}
                    assert len(seen) == 1, (c, seen)
                    homes[c] = seen.pop()
                assert set(homes.values()) == set(ECHO_PORTS), homes
            else:
                assert set(spread) == set(ECHO_PORTS), (strategy, spread)
                if strategy == "round_robin":  # in turn, whichever worker answers
                    assert max(spread.values()) - min(spread.values()) <= 2, spread
    finally:
        gateway.stop(settings, timeout=10)


@pytest.mark.integration
def test_every_answer_carries_the_security_headers_and_no_nginx_version(standard: Echo) -> None:
    answers = [
        call("GET", "/products/1"),  # proxied
        call("GET", "/nowhere"),  # the gateway's own 404 problem
        call("DELETE", "/orders", headers={"Content-Type": "text/plain"}),  # 405 problem
    ]
    for reply in answers:
        for name, value in gateway_routes.SECURITY_HEADERS.items():
            assert reply.header(name) == value.strip('"'), (reply.status, name)
        assert reply.header("Server") == "nginx", "server_tokens off: no version"


@pytest.mark.integration
def test_a_header_or_uri_over_the_limit_is_a_problem_and_never_reaches_a_service(
    standard: Echo,
) -> None:
    before = len([r for s in standard.values() for r in s.seen()])
    over = call("GET", "/products/1", headers={"X-Padding": "x" * 9000})
    problem = assert_problem(over, 431, "Request Header Fields Too Large")
    assert "8k" in problem["detail"]
    assert over.header("X-Content-Type-Options") == "nosniff"
    long_line = call("GET", "/products/" + "1" * 9000)
    assert_problem(long_line, 414, "URI Too Long")
    assert_problem(call("GET", "/products/%00"), 400, "Bad Request")
    assert len([r for s in standard.values() for r in s.seen()]) == before
    assert call("GET", "/products/1", headers={"X-Padding": "x" * 7000}).status == 200


@pytest.mark.integration
def test_tls_terminates_at_the_gateway_with_its_own_certificate(
    settings: Settings, standard: Echo
) -> None:
    folder = settings.data_path / "gateway" / "tls"
    for key in (folder / "gateway.key", folder / "ca.key"):
        assert key.stat().st_mode & 0o077 == 0, f"{key.name} is the owner's only"
    ca = x509.load_pem_x509_certificate((folder / "ca.crt").read_bytes())
    served = x509.load_pem_x509_certificate((folder / "gateway.crt").read_bytes())
    assert served.issuer == ca.subject != served.subject  # issued by the local CA, not self-signed
    assert not served.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    auth = {"Authorization": f"Bearer {token()}"}
    trusted = ssl.create_default_context(cafile=str(folder / "ca.crt"))  # only the CA is trusted
    for host in ("127.0.0.1", "localhost"):
        with httpx.Client(base_url=f"https://{host}:{TLS_PORT}", verify=trusted) as client:
            answer = client.get("/products/1", headers=auth)
            assert answer.status_code == 200
            assert answer.json()["path"] == "/products/1"
            assert answer.headers["strict-transport-security"] == "max-age=31536000"
            assert answer.headers["x-content-type-options"] == "nosniff"
            problem = client.get("/nowhere", headers=auth)
            assert problem.status_code == 404
            assert problem.headers["strict-transport-security"] == "max-age=31536000"
            assert answer.extensions["http_version"] == b"HTTP/1.1"
    with pytest.raises(httpx.ConnectError):  # an untrusted certificate is refused by the client
        httpx.get(f"https://127.0.0.1:{TLS_PORT}/products/1", headers=auth)
    reply = call("GET", "/products/1")  # plain HTTP is kept as configured: served, no HSTS
    assert reply.status == 200 and reply.header("Strict-Transport-Security") is None


def test_the_local_ca_reissues_the_certificate_for_new_names_and_keeps_a_valid_one(
    tmp_path: Path,
) -> None:
    first = Settings(data_dir=str(tmp_path), gateway_tls_port=TLS_PORT)
    cert, _key = gateway_tls.certificate(first)
    again, _ = gateway_tls.certificate(first)
    assert again.read_bytes() == cert.read_bytes()  # still valid for its names: kept
    ca = (tmp_path / "gateway" / "tls" / "ca.crt").read_bytes()
    named = dataclasses.replace(first, gateway_tls_names="shop.internal, 10.0.0.7")
    gateway_tls.certificate(named)
    reissued = x509.load_pem_x509_certificate(cert.read_bytes())
    san = reissued.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"localhost", "shop.internal"}
    assert {str(a) for a in san.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1", "10.0.0.7"}
    assert (tmp_path / "gateway" / "tls" / "ca.crt").read_bytes() == ca  # clients keep trusting it


def test_plain_http_is_redirected_to_https_when_configured(
    settings: Settings, start_gateway: StartGateway, echo: Echo
) -> None:
    redirecting = dataclasses.replace(settings, gateway_https_redirect_port=TLS_PORT)
    gateway.stop(settings, timeout=10)
    gateway.start(redirecting, {"product": [31181, 31182], "order": [31183]})
    try:
        plain = call("POST", "/orders?mode=sync", body=b"{}", headers={"Content-Type": "application/json"})
        assert plain.status == 308  # the method and body are kept on the way to HTTPS
        assert plain.header("Location") == f"https://127.0.0.1:{TLS_PORT}/orders?mode=sync"
        assert not echo[31183].requests, "nothing reached a service over plain HTTP"
        ca = settings.data_path / "gateway" / "tls" / "ca.crt"
        with httpx.Client(verify=ssl.create_default_context(cafile=str(ca)), follow_redirects=True,
                          headers={"Authorization": f"Bearer {token()}"}) as client:  # fmt: skip
            answer = client.get(f"http://localhost:{GATEWAY_PORT}/products/7?q=1")
        assert answer.status_code == 200 and answer.url.scheme == "https"
        assert answer.json()["path"] == "/products/7?q=1"
        status = http.client.HTTPConnection("127.0.0.1", STATUS_PORT, timeout=10)
        status.request("GET", "/nginx_status")
        assert status.getresponse().status == 200  # probes stay on plain HTTP
    finally:
        gateway.stop(redirecting, timeout=10)
    with pytest.raises(ValueError, match="needs gateway_tls_port"):
        gateway_conf.render(dataclasses.replace(redirecting, gateway_tls_port=0), {"product": [1]})
