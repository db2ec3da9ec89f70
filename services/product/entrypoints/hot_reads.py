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


async def _searched(scope: Scope, send: Send, shared: list[tuple[bytes, bytes]]) -> bool:
    started = time.perf_counter()
    query = search_routes.strict_query(scope.get("query_string", b""))
    if query is None:
        return False  # the route reads it, or names what is wrong
    allowed, rid, _ = _caller(scope)
    if not allowed:
        return False
    token = request_id.set(rid)
    try:
        with tracing.server_span(scope, rid) as span:
            try:
                body = await search_routes.result_json(query)
            except Exception:  # the route repeats the search and answers the failure
                log.debug("GET %s: handing a failed search to the app", SEARCH, exc_info=True)
                return False
            headers = [(b"content-type", b"application/json"), *shared,
                       (b"content-length", str(len(body)).encode())]  # fmt: skip
            await _respond(send, 200, headers, body, rid)
            span.finish("GET", SEARCH, 200)
    finally:
        request_id.reset(token)
    record_request("product", "GET", SEARCH, 200, started)
    return True


async def _respond(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes, rid: str
) -> None:
    if rid:
        headers.append((b"x-request-id", rid.encode()))
    start: HTTPResponseStartEvent = {"type": "http.response.start", "status": status, "headers": headers}
    end: HTTPResponseBodyEvent = {"type": "http.response.body", "body": body, "more_body": False}
    await send(start)
    await send(end)


async def _answered(scope: Scope, send: Send, shared: list[tuple[bytes, bytes]]) -> bool:
    started = time.perf_counter()
    try:
        pid = str(uuid.UUID(scope["path"][len(PREFIX) :]))
    except ValueError:
        return False  # the app's 400 names the field
    allowed, rid, if_none_match = _caller(scope)
    if not allowed:
        return False
    token = request_id.set(rid)
    try:
        with tracing.server_span(scope, rid) as span:
            try:
                found = await catalog_routes.product_json(pid)
            except Exception:  # the app repeats the read and answers the failure (503, 500)
                log.debug("GET %s: handing a failed read to the app", scope["path"], exc_info=True)
                return False
            if found is None:
                return False  # the app's 404
            body, etag = found
            status = 304 if if_none_match == etag else 200
            headers = [(b"content-type", b"application/json"), (b"etag", etag.encode()), *shared]
            if status == 200:
                headers.append((b"content-length", str(len(body)).encode()))
            await _respond(send, status, headers, body if status == 200 else b"", rid)
            span.finish("GET", ROUTE, status)
    finally:
        request_id.reset(token)
    record_request("product", "GET", ROUTE, status, started)
    return True
