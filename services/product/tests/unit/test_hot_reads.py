"""The product-page layer in front of the app: what it answers itself, and what it hands over.

The app behind it is a recorder, and the instance has no database: a read the cache cannot answer
fails, and must reach the app, which answers failures its own way.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest

from services.product.entrypoints import hot_reads
from services.product.entrypoints import state as runtime
from shopstream import auth, guards
from shopstream.config import Settings

CACHED = str(uuid.uuid4())
BODY = b'{"id":"%s","version":4}' % CACHED.encode()


class Recorder:
    def __init__(self) -> None:
        self.paths: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.paths.append(scope["path"])


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    s = Settings(data_dir=str(tmp_path), product_read_max_age=1)
    auth.ensure_local_issuer(s)
    guards.configure(s)
    runtime.STATE = runtime.State(s)
    runtime.STATE.cache.put(CACHED, 4, BODY, '"4"')
    return s


def get(path: str, headers: dict[str, str] | None = None, method: str = "GET") -> tuple:
    app = Recorder()
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "method": method, "path": path,
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
    }  # fmt: skip
    asyncio.run(hot_reads.in_front_of(app)(scope, None, send))  # type: ignore[arg-type]
    return app.paths, sent


def test_a_cached_product_is_answered_with_the_routes_headers(settings: Settings) -> None:
    handed, sent = get(f"/products/{CACHED}", {"X-Request-Id": "r-1"})
    assert handed == []
    start, body = sent
    headers = dict(start["headers"])
    assert start["status"] == 200 and body["body"] == BODY
    assert headers[b"etag"] == b'"4"' and headers[b"cache-control"] == b"public, max-age=1"
    assert headers[b"content-type"] == b"application/json"
    assert headers[b"content-length"] == str(len(BODY)).encode()
    assert headers[b"x-request-id"] == b"r-1"


def test_a_matching_if_none_match_is_answered_304_without_a_body(settings: Settings) -> None:
    _, (start, body) = get(f"/products/{CACHED}", {"If-None-Match": '"4"'})
    assert start["status"] == 304 and body["body"] == b""
    _, (start, _) = get(f"/products/{CACHED}", {"If-None-Match": '"3"'})
    assert start["status"] == 200


def test_an_id_in_another_spelling_is_the_same_product(settings: Settings) -> None:
    handed, sent = get(f"/products/{CACHED.upper()}")
    assert handed == [] and sent[0]["status"] == 200


def test_a_verified_token_is_answered_and_a_bad_one_handed_to_the_guard(settings: Settings) -> None:
    token = auth.customer_token(settings, str(uuid.uuid4()))
    handed, sent = get(f"/products/{CACHED}", {"Authorization": f"Bearer {token}"})
    assert handed == [] and sent[0]["status"] == 200
    handed, sent = get(f"/products/{CACHED}", {"Authorization": "Bearer forged"})
    assert handed == [f"/products/{CACHED}"] and sent == []


@pytest.mark.parametrize(
    ("path", "method"),
    [
        (f"/products/{uuid.uuid4()}", "GET"),  # not cached, and no database: the read fails
        ("/products/" + "z" * 36, "GET"),  # not a UUID: the app's 400 names the field
        (f"/products/{CACHED}", "PUT"),
        (f"/products/{CACHED}", "HEAD"),
        (f"/products/{CACHED}/stock", "GET"),
        ("/products", "GET"),
    ],
)
def test_everything_else_goes_to_the_app(settings: Settings, path: str, method: str) -> None:
    handed, sent = get(path, method=method)
    assert handed == [path] and sent == []


def test_a_plain_search_is_answered_with_the_routes_headers(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.product.entrypoints import search_routes

    asked = []

    async def result_json(query: Any) -> bytes:
        asked.append(query)
        return b'{"items":[],"next_cursor":null}'

    monkeypatch.setattr(search_routes, "result_json", result_json)
    handed, sent = get_query("/products", b"category=Office&limit=5", {"X-Request-Id": "r-2"})
    assert handed == [] and asked[0].category == "Office" and asked[0].limit == 5
    start, body = sent
    headers = dict(start["headers"])
    assert start["status"] == 200 and body["body"] == b'{"items":[],"next_cursor":null}'
    assert headers[b"cache-control"] == b"public, max-age=1" and headers[b"x-request-id"] == b"r-2"
    assert b"etag" not in headers
    # an unusual query string, or a token that does not verify: the route answers
    assert get_query("/products", b"limit=0")[0] == ["/products"]
    assert get_query("/products", b"", {"Authorization": "Bearer forged"})[0] == ["/products"]
    assert len(asked) == 1


def get_query(path: str, query_string: bytes, headers: dict[str, str] | None = None) -> tuple:
    app = Recorder()
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "method": "GET", "path": path, "query_string": query_string,
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
    }  # fmt: skip
    asyncio.run(hot_reads.in_front_of(app)(scope, None, send))  # type: ignore[arg-type]
    return app.paths, sent


def test_a_traced_request_handed_to_the_app_stays_one_trace(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The layer's span began before the read failed: the app's span must be its child, not a
    second root (the scope the app gets carries the layer's span as its traceparent)."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from shopstream import tracing

    finished = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(finished))
    monkeypatch.setattr(tracing, "_tracer", provider.get_tracer("test"))
    monkeypatch.setattr(tracing, "_configured", "product")
    monkeypatch.setattr(tracing, "_ratio", 1.0)
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(dict(scope["headers"]))

    path = f"/products/{uuid.uuid4()}"  # not cached, and no database: the read fails
    scope = {"type": "http", "method": "GET", "path": path, "headers": [(b"x-request-id", b"r")]}
    asyncio.run(hot_reads.in_front_of(app)(scope, None, None))  # type: ignore[arg-type]
    (front,) = finished.get_finished_spans()
    assert front.name == "GET handed to the app"
    (headers,) = seen
    assert headers[b"traceparent"].startswith(
        f"00-{front.context.trace_id:032x}-{front.context.span_id:016x}-".encode()
    )
    assert headers[b"x-request-id"] == b"r"
