"""What every service's HTTP app has in common: health, readiness, metrics, OpenAPI docs at /docs,
request ids, and errors as RFC 9457 problem+json naming the field at fault."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import msgspec
from litestar import Litestar, MediaType, Request, Response, get
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.static_files import create_static_files_router
from litestar.types import ASGIApp, Receive, Scope, Send
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

from shopstream import contract, db, emf, failover, tracing
from shopstream.config import Settings
from shopstream.logging import request_id

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger(__name__)

REQUESTS = Counter(
    "http_requests_total", "HTTP requests answered", ["service", "method", "route", "status"]
)
LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["service", "method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)

_NAMED_FIELD = re.compile(r"(?:unknown|missing required) field `([^`]+)`")
_AT_PATH = re.compile(r"at `\$\.?([^`]*)`")


class Problem(HTTPException):
    """An error answered as problem+json; ``errors`` name the fields at fault."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str = "",
        errors: Sequence[dict[str, str]] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status_code=status, detail=detail or title, headers=headers)
        self.title = title
        self.errors = list(errors)


def problem(
    status: int,
    title: str,
    detail: str = "",
    errors: Sequence[dict[str, str]] = (),
    headers: dict[str, str] | None = None,
) -> Response[Any]:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = list(errors)
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def encoded(
    body: bytes, status: int = 200, headers: dict[str, str] | None = None, media_type: str = "application/json"
) -> Response[Any]:
    """A response whose body is already JSON bytes (cached, or encoded by msgspec)."""
    return Response(body, status_code=status, media_type=media_type, headers=headers)


def uuid_param(raw: str, field: str) -> uuid.UUID:
    """A path or query value that must be a UUID; a 400 problem naming ``field`` otherwise."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise Problem(
            400, "Invalid id", f"{field} must be a UUID", [field_error(field, "must be a UUID")]
        ) from None


def field_error(field: str, message: str) -> dict[str, str]:
    return {"field": field, "message": message}


def _error_of(message: str, key: str = "") -> dict[str, str]:
    """A field error from a msgspec message: the field it names, or its `$.path`, or the key."""
    named = _NAMED_FIELD.search(message)
    at_path = _AT_PATH.search(message)
    path = at_path.group(1) if at_path else ""
    if named:
        key = f"{path}.{named.group(1)}" if path else named.group(1)
    elif path:
        key = path if key in ("", "data") else f"{key}.{path}"
    elif key == "data":
        key = "body"
    return field_error(key or "body", _AT_PATH.sub("", message).strip(" -"))


def _validation_errors(exc: ValidationException) -> list[dict[str, str]]:
    items = exc.extra if isinstance(exc.extra, list) else []
    return [_error_of(str(i.get("message", "invalid")), str(i.get("key", ""))) for i in items]


T = TypeVar("T")


async def strict_body(request: Request[Any, Any, Any], body_type: type[T]) -> T:
    """The JSON body decoded strictly: no "5" for 5, no unknown fields.

    Litestar converts leniently (it must, for query strings), so handlers that declare ``data`` for
    the OpenAPI document decode the body again here, strictly.
    """
    raw = await request.body()
    try:
        return msgspec.json.decode(raw, type=body_type, strict=True)
    except msgspec.ValidationError as exc:
        error = _error_of(str(exc))
        raise Problem(
            400, "Invalid request", f"{error['field']}: {error['message']}", [error]
        ) from None
    except msgspec.DecodeError as exc:
        raise Problem(
            400, "Bad request", f"JSON is malformed: {exc}", [field_error("body", str(exc))]
        ) from None


def _on_validation(_: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    errors = _validation_errors(exc)
    return problem(
        400, "Invalid request", "; ".join(f"{e['field']}: {e['message']}" for e in errors), errors
    )


def _on_problem(_: Request[Any, Any, Any], exc: Problem) -> Response[Any]:
    return problem(exc.status_code, exc.title, str(exc.detail), exc.errors, exc.headers)


def _on_http(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    title = {400: "Bad request", 404: "Not found", 405: "Method not allowed"}.get(
        exc.status_code, "Request failed"
    )
    detail = str(exc.detail)
    # Litestar's own 400s (not ValidationException, not ours) come from decoding the body
    errors = [field_error("body", detail)] if exc.status_code == 400 else []
    return problem(exc.status_code, title, detail, errors, exc.headers)


def _on_bad_encoding(_: Request[Any, Any, Any], exc: UnicodeDecodeError) -> Response[Any]:
    # Litestar decodes a declared body before the handler runs; bytes that are not UTF-8 are the
    # client's fault, not the service's
    detail = f"the body is not UTF-8 (byte {exc.start})"
    return problem(400, "Bad request", detail, [field_error("body", "must be UTF-8 JSON")])


def _on_too_deep(_: Request[Any, Any, Any], exc: RecursionError) -> Response[Any]:
    # msgspec gives up on JSON nested deeper than the interpreter's recursion limit: a client's
    # hostile body ([[[[...), never something this service builds
    return problem(400, "Bad request", "the JSON is nested too deeply",
                   [field_error("body", "nested too deeply")])  # fmt: skip


def _on_crash(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if db.unavailable(exc):  # a dependency is down: say so at once, the client may retry
        log.warning("%s %s: database unavailable: %r", request.method, request.url.path, exc)
        return problem(
            503, "Service unavailable", "the database cannot be reached right now; retry shortly",
            # the marker lets failover.middleware repeat a request that is safe to repeat
            headers={"Retry-After": "2", failover.MARKER.decode(): "1"},
        )  # fmt: skip
    if db.rolled_back(exc):  # a deadlock's victim: nothing was written, repeating is safe
        log.warning("%s %s: transaction rolled back: %r", request.method, request.url.path, exc)
        return problem(
            503, "Service unavailable", "the transaction met a concurrent one; retry",
            headers={"Retry-After": "1", failover.MARKER.decode(): "1"},
        )  # fmt: skip
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return problem(500, "Internal error", "the service failed to answer; see its log")


def record_request(service: str, method: str, route: str, status: int, started: float) -> None:
    """Count one answered request and its latency, by route template."""
    elapsed = time.perf_counter() - started
    LATENCY.labels(service, method, route).observe(elapsed)
    REQUESTS.labels(service, method, route, str(status)).inc()
    emf.record(service, method, route, status, elapsed)


def request_context_middleware(service: str) -> Callable[[ASGIApp], ASGIApp]:
    """Request id in and out, request count and latency by route template."""

    def middleware(app: ASGIApp) -> ASGIApp:
        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            rid = ""
            for name, value in scope["headers"]:
                if name == b"x-request-id":
                    rid = value.decode("latin-1")[:64]
                    break
            token = request_id.set(rid)
            started = time.perf_counter()
            status = 500

            async def send_wrapper(message: Any) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    if rid:
                        message["headers"] = [
                            *message.get("headers", []),
                            (b"x-request-id", rid.encode()),
                        ]
                await send(message)

            with tracing.server_span(scope, rid) as span:
                try:
                    await app(scope, receive, send_wrapper)
                finally:
                    route = scope.get("path_template") or "unmatched"
                    method = str(scope.get("method", ""))
                    record_request(service, method, route, status, started)
                    span.finish(method, route, status)
                    request_id.reset(token)

        return wrapped

    return middleware


# Swagger UI (swagger-ui-dist 5.18.2 from npm, vendored) served by each service itself, so /docs
# works without internet; Litestar's default loads it from a CDN.
SWAGGER_UI = Path(__file__).parent / "static" / "swagger-ui"
DOCS_ASSETS = "/docs-assets"


def _swagger_ui() -> SwaggerRenderPlugin:
    return SwaggerRenderPlugin(
        path="/",
        js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
        css_url=f"{DOCS_ASSETS}/swagger-ui.css",
        standalone_preset_js_url=f"{DOCS_ASSETS}/swagger-ui-standalone-preset.js",
        favicon=f"<link rel='icon' type='image/png' href='{DOCS_ASSETS}/favicon-32x32.png'>",
    )


def create_app(
    service: str,
    title: str,
    description: str,
    route_handlers: Sequence[Any],
    ready_check: Callable[[], Awaitable[bool]],
    on_startup: Sequence[Callable[[], Awaitable[None]]] = (),
    on_shutdown: Sequence[Callable[[], Awaitable[None]]] = (),
    guards: Sequence[Any] = (),
    idempotent_paths: tuple[str, ...] = (),
) -> Litestar:
    """``guards`` run before every route: services pass shopstream.guards.authenticate, so a
    request with a token that does not verify is refused everywhere (docs/security.md).
    ``idempotent_paths``: POSTs under them may be repeated while PostgreSQL fails over
    (``failover``), as reads and requests with an Idempotency-Key are."""
    settings = Settings.from_env()
    tracing.setup(settings, service)
    emf.configure(settings.aws_emf_namespace)  # CloudWatch EMF on stdout, when on AWS

    @get("/health/live", include_in_schema=False, sync_to_thread=False)
    def live() -> dict[str, str]:
        return {"status": "ok"}

    @get("/health/ready", include_in_schema=False)
    async def ready() -> Response[dict[str, str]]:
        ok = await ready_check()
        return Response({"status": "ready" if ok else "not ready"}, status_code=200 if ok else 503)

    @get("/metrics", include_in_schema=False, sync_to_thread=False)
    def metrics() -> Response[bytes]:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app = Litestar(
        route_handlers=[
            live,
            ready,
            metrics,
            create_static_files_router(DOCS_ASSETS, [SWAGGER_UI], include_in_schema=False),
            *route_handlers,
        ],
        on_startup=list(on_startup),
        on_shutdown=list(on_shutdown),
        guards=list(guards),
        middleware=[
            request_context_middleware(service),
            failover.middleware(settings.db_failover_seconds, idempotent_paths),
        ],
        exception_handlers={
            ValidationException: _on_validation,
            Problem: _on_problem,
            NotFoundException: _on_http,
            HTTPException: _on_http,
            UnicodeDecodeError: _on_bad_encoding,
            RecursionError: _on_too_deep,
            Exception: _on_crash,
        },
        openapi_config=OpenAPIConfig(
            title=title,
            version="1.0.0",
            description=description,
            path="/docs",
            render_plugins=[_swagger_ui()],
        ),
        logging_config=None,
        debug=False,
    )
    contract.document(app)
    return app


__all__ = ["PROBLEM_JSON", "MediaType", "Problem", "create_app", "field_error", "problem"]
