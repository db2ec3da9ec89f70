"""The catalog's two hot reads answered in front of the framework: GET /products/{id} and a search.

A product page is the read a shop serves most. Through Litestar, a read this instance had cached
cost it ~0.40 ms of CPU, ~0.3 ms of which was routing, the middleware stack, the guard and the
response object; granian alone answers in 0.03 ms (docs/performance/README.md#reads). This layer
answers only what it can answer exactly as the route does: a GET of a product that exists, from a
caller who is anonymous or whose token verifies, with the route's headers (ETag, Cache-Control,
X-Request-Id), its 304, its metrics and its span. Anything else (a malformed id, an unknown
product, a token that does not verify, a database error, every other route) goes to the app, which
answers it as it always has. A search is answered here when its query string reads exactly as the
route reads it (``search_routes.strict_query``); every other search goes to the route.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable

from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Receive,
    Scope,
    Send,
)

from services.product.entrypoints import catalog_routes, search_routes
from shopstream import auth, guards, tracing
from shopstream.http import record_request
from shopstream.logging import request_id

PREFIX = "/products/"
ROUTE = "/products/{product_id}"  # the template Litestar reports: one metric series either way
SEARCH = "/products"
_PATH_LENGTH = len(PREFIX) + 36  # a UUID's canonical form
log = logging.getLogger(__name__)


def in_front_of(app: ASGIApp) -> ASGIApp:
    shared = [(name.lower().encode(), value.encode()) for name, value in
              catalog_routes.shared_cache().items()]  # fmt: skip

    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("method") == "GET":
            path = scope["path"]
            if path == SEARCH:
                answered = await _searched(scope, send, shared)
            else:
                is_page = len(path) == _PATH_LENGTH and path.startswith(PREFIX)
                answered = is_page and await _answered(scope, send, shared)
            if answered:
                return
        await app(scope, receive, send)

    return serve


def _caller(scope: Scope) -> tuple[bool, str, str | None]:
    """Whether the caller may read here (anonymous, or a token that verifies), its request id and
    its If-None-Match."""
    rid, authorization, if_none_match = "", None, None
    for name, value in scope["headers"]:
        if name == b"authorization":
            authorization = value.decode("latin-1")
        elif name == b"if-none-match":
            if_none_match = value.decode("latin-1")
        elif name == b"x-request-id":
            rid = value.decode("latin-1")[:64]
    if authorization is not None:
        try:
            guards.verified(authorization)
        except auth.Unauthenticated:
            return False, rid, if_none_match  # the app's guard answers 401
    return True, rid, if_none_match


Answer = tuple[int, list[tuple[bytes, bytes]], bytes]  # status, headers, body


async def _searched(scope: Scope, send: Send, shared: list[tuple[bytes, bytes]]) -> bool:
    started = time.perf_counter()
    query = search_routes.strict_query(scope.get("query_string", b""))
    if query is None:
        return False  # the route reads it, or names what is wrong
    allowed, rid, _ = _caller(scope)
    if not allowed:
        return False

    async def search() -> Answer:
        body = await search_routes.result_json(query)
        length = (b"content-length", str(len(body)).encode())
        return 200, [(b"content-type", b"application/json"), *shared, length], body

    return await _answer(scope, send, SEARCH, rid, started, search)


async def _answered(scope: Scope, send: Send, shared: list[tuple[bytes, bytes]]) -> bool:
    started = time.perf_counter()
    try:
        pid = str(uuid.UUID(scope["path"][len(PREFIX) :]))
    except ValueError:
        return False  # the app's 400 names the field
    allowed, rid, if_none_match = _caller(scope)
    if not allowed:
        return False

    async def page() -> Answer | None:
        found = await catalog_routes.product_json(pid)
        if found is None:
            return None  # the app's 404
        body, etag = found
        headers = [(b"content-type", b"application/json"), (b"etag", etag.encode()), *shared]
        if if_none_match == etag:
            return 304, headers, b""
        return 200, [*headers, (b"content-length", str(len(body)).encode())], body

    return await _answer(scope, send, ROUTE, rid, started, page)


async def _answer(
    scope: Scope, send: Send, route: str, rid: str, started: float,
    read: Callable[[], Awaitable[Answer | None]],
) -> bool:  # fmt: skip
    """Send what ``read`` answers, with the route's request id, span and metrics; False (nothing
    sent) when it has no answer or fails: the app repeats the read and answers that its own way."""
    token = request_id.set(rid)
    try:
        with tracing.server_span(scope, rid) as span:
            try:
                answer = await read()
            except Exception:  # a database error: the app's 503 or 500
                log.debug("GET %s: handing a failed read to the app", scope["path"], exc_info=True)
                answer = None
            if answer is None:
                scope["headers"] = span.hand_over(list(scope["headers"]), "GET", "the app")
                return False
            status, headers, body = answer
            if rid:
                headers.append((b"x-request-id", rid.encode()))
            start: HTTPResponseStartEvent = {
                "type": "http.response.start", "status": status, "headers": headers,
            }  # fmt: skip
            await send(start)
            end: HTTPResponseBodyEvent = {"type": "http.response.body", "body": body, "more_body": False}
            await send(end)
            span.finish("GET", route, status)
    finally:
        request_id.reset(token)
    record_request("product", "GET", route, status, started)
    return True
