"""OpenTelemetry tracing, shared by every process: HTTP apps, outbox relays, event consumers.

One async order is one trace: the HTTP request's span (with the gateway's X-Request-Id) is current
while the handler writes its outbox row, so ``outbox.add`` stores the W3C ``traceparent`` in the
row's headers; the relay publishes the row as a child span and carries the context in the Kafka
message's headers; each consumer continues it while it applies the event, and the events its handler
writes in turn carry it on. SQL statements are spans too (asyncpg instrumentation).

Sampling: ``SHOPSTREAM_TRACING_SAMPLE_RATIO`` of new traces, decided where a trace can begin (an
HTTP request that carries no ``traceparent``) before any OpenTelemetry object is made: an unsampled
request costs one random draw, its outbox rows carry no context, and the relays and consumers do
no tracing work for them. A request or message that arrives with a ``traceparent`` continues its
trace (parent-based); a message without one starts none (a consumer is never the root of a trace). ``SHOPSTREAM_ZIPKIN_PORT=0`` turns tracing off
entirely (no provider, no cost beyond a no-op call). Spans go to Zipkin's ``/api/v2/spans`` at
``SHOPSTREAM_ZIPKIN_URL`` (a deployment's Zipkin), else the local one on ``SHOPSTREAM_ZIPKIN_PORT``.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from shopstream.config import Settings

log = logging.getLogger(__name__)

_lock = threading.Lock()
_configured: str | None = None
_ratio = 0.0
TRACER_NAME = "shopstream"
TRACE_HEADERS = ("traceparent", "tracestate")
# Only W3C trace context crosses a hop (no baggage): the global composite propagator would run the
# baggage propagator on every traced hop for nothing.
_W3C = TraceContextTextMapPropagator()


def zipkin_endpoint(settings: Settings) -> str:
    base = settings.zipkin_url.rstrip("/") or f"http://127.0.0.1:{settings.zipkin_port}"
    return f"{base}/api/v2/spans"


def setup(settings: Settings, service: str) -> bool:
    """Install the process's tracer provider once; True when tracing is on."""
    global _configured, _ratio
    with _lock:
        if _configured is not None:
            return _configured != ""
        if not settings.zipkin_port:
            _configured = ""
            return False
        from opentelemetry.exporter.zipkin.json import ZipkinExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased

        # The ratio is applied by ``server_span`` before a root span exists (``sampled_root``);
        # a root that gets this far is wanted.
        provider = TracerProvider(
            resource=Resource.create(
                {"service.name": service, "service.instance.id": settings.instance_id}
            ),
            sampler=ParentBased(ALWAYS_ON),
        )
        _ratio = settings.tracing_sample_ratio
        provider.add_span_processor(
            BatchSpanProcessor(
                ZipkinExporter(endpoint=zipkin_endpoint(settings), timeout=5),
                schedule_delay_millis=1000,
            )
        )
        trace.set_tracer_provider(provider)
        try:
            _instrument_sql()
        except Exception:  # SQL spans are a bonus; never stop a service for them
            log.warning("asyncpg instrumentation unavailable", exc_info=True)
        _configured = service
        return True


def _instrument_sql() -> None:
    """SQL spans, only inside a sampled trace: a statement outside one (a relay's outbox poll, a
    gauge refresh) would otherwise start a trace of its own, and costs its parsing for nothing."""
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    def only_in_traces(wrapped: Any) -> Any:
        async def wrapper(self: Any, func: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            if not trace.get_current_span().is_recording():
                return await func(*args, **kwargs)
            return await wrapped(self, func, instance, args, kwargs)

        return wrapper

    cls: Any = AsyncPGInstrumentor
    cls._do_execute = only_in_traces(cls._do_execute)
    cls._do_cursor_execute = only_in_traces(cls._do_cursor_execute)
    AsyncPGInstrumentor().instrument()


def flush() -> None:
    provider: Any = trace.get_tracer_provider()
    if hasattr(provider, "force_flush"):
        provider.force_flush(5000)


_tracer: trace.Tracer | None = None


def tracer() -> trace.Tracer:
    # get_tracer builds a new Tracer and scope each call: a twentieth of a relay's traced CPU
    global _tracer
    if _tracer is None:
        _tracer = trace.get_tracer(TRACER_NAME)
    return _tracer


def current_headers(span: Span | None = None) -> dict[str, str]:
    """The trace context of ``span`` (else the current one) as W3C headers (empty when there is
    no sampled span)."""
    span = span or trace.get_current_span()
    if not span.get_span_context().is_valid:
        return {}
    carrier: dict[str, str] = {}
    _W3C.inject(carrier, trace.set_span_in_context(span))
    return carrier


def context_of(headers: Mapping[str, Any]) -> otel_context.Context:
    """The trace context a message or request carried (str or bytes values)."""
    carrier = {
        k.lower(): v.decode("latin-1") if isinstance(v, bytes) else str(v)
        for k, v in headers.items()
        if k.lower() in TRACE_HEADERS and v is not None
    }
    return _W3C.extract(carrier)


@contextlib.contextmanager
def span(
    name: str,
    kind: SpanKind,
    parent: Mapping[str, Any] | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[Span]:
    """A current span, child of the context in ``parent`` headers when given; errors recorded."""
    ctx = context_of(parent) if parent is not None else None
    with tracer().start_as_current_span(
        name, context=ctx, kind=kind, attributes=dict(attributes or {}), record_exception=False
    ) as current, _errors_recorded(current):
        yield current


@contextlib.contextmanager
def _errors_recorded(current: Span) -> Iterator[None]:
    try:
        yield
    except BaseException as exc:
        if current.is_recording():
            current.record_exception(exc)
            current.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        raise


__all__ = ["SpanKind", "context_of", "current_headers", "flush", "in_span", "setup", "span",
           "start_consumer_span", "tracer"]


# --- HTTP -------------------------------------------------------------------------------------

UNTRACED_PATHS = ("/health/", "/metrics")


class ServerSpan:
    """The span of one HTTP request; ``finish`` names it by its route template once routed."""

    def __init__(self, span: Span | None) -> None:
        self.span = span

    def finish(self, method: str, route: str, status: int) -> None:
        if self.span is None or not self.span.is_recording():
            return
        self.span.update_name(f"{method} {route}")
        self.span.set_attribute("http.route", route)
        self.span.set_attribute("http.response.status_code", status)
        if status >= 500:
            self.span.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))

    def hand_over(
        self, headers: list[tuple[bytes, bytes]], method: str, to: str
    ) -> list[tuple[bytes, bytes]]:
        """The request's headers for ``to``, when the request goes on there after this span began
        (a layer in front of an app that could not answer): they carry this span's context, so
        the app's own SERVER span is its child in the same trace, not a second root."""
        if self.span is None or not self.span.is_recording():
            return headers
        self.span.update_name(f"{method} handed to {to}")
        kept = [(k, v) for k, v in headers if k not in (b"traceparent", b"tracestate")]
        return kept + [(k.encode(), v.encode()) for k, v in current_headers(self.span).items()]


@contextlib.contextmanager
def server_span(scope: Mapping[str, Any], request_id: str) -> Iterator[ServerSpan]:
    """A SERVER span for an ASGI request, continuing the caller's ``traceparent`` if it sent one."""
    path = str(scope.get("path", ""))
    if _configured in (None, "") or path.startswith(UNTRACED_PATHS):
        yield ServerSpan(None)
        return
    headers = {
        name.decode("latin-1"): value
        for name, value in scope.get("headers", [])
        if name in (b"traceparent", b"tracestate")
    }
    if "traceparent" not in headers and not sampled_root():
        yield ServerSpan(None)  # not traced: no span, no context, nothing downstream either
        return
    method = str(scope.get("method", ""))
    attributes = {"http.request.method": method, "url.path": path}
    if request_id:
        attributes["shopstream.request_id"] = request_id
    with span(f"{method} {path}", SpanKind.SERVER, headers, attributes) as current:
        yield ServerSpan(current)


def sampled_root() -> bool:
    """Whether a new trace begins here: ``SHOPSTREAM_TRACING_SAMPLE_RATIO`` of them."""
    return _ratio >= 1.0 or (_ratio > 0.0 and random.random() < _ratio)


@contextlib.contextmanager
def client_span(method: str, path: str, server: str) -> Iterator[dict[str, str]]:
    """A CLIENT span around a call to another service, yielding the headers that carry it on:
    the callee's server span joins the caller's trace (a sync order is one trace too). Outside a
    trace it yields no headers and starts none: a call is never the root of a trace."""
    if _configured in (None, "") or not trace.get_current_span().get_span_context().is_valid:
        yield {}
        return
    attributes = {"http.request.method": method, "url.path": path, "server.address": server}
    with span(f"{method} {server}", SpanKind.CLIENT, None, attributes):
        yield current_headers()


# --- Kafka ------------------------------------------------------------------------------------


def publish_headers(headers: Mapping[str, Any], topic: str, key: str) -> list[tuple[str, bytes]]:
    """An outbox row's headers for Kafka; a traced row gets a PRODUCER span and its context. The
    span marks the send and wraps nothing, so it is started and ended here, never made current:
    with every row traced, making it current (context attached, detached, errors recorded) was
    15-25% of a relay's samples."""
    out = {k: str(v) for k, v in headers.items()}
    if _configured not in (None, "") and "traceparent" in out:
        attributes = {
            "messaging.system": "kafka",
            "messaging.operation.type": "send",
            "messaging.destination.name": topic,
            "messaging.kafka.message.key": key,
        }
        producer = tracer().start_span(
            f"publish {topic}", context=context_of(out), kind=SpanKind.PRODUCER, attributes=attributes
        )
        out.update(current_headers(producer))
        producer.end()
    return [(k, v.encode()) for k, v in out.items()]


@contextlib.contextmanager
def consumer_span(message: Any, group: str) -> Iterator[Span | None]:
    """A CONSUMER span around applying one Kafka message, continuing the trace it carries (none
    when it carries no trace)."""
    current = start_consumer_span(message, group)
    if current is None:
        yield None
        return
    with trace.use_span(current, end_on_exit=True, record_exception=False) as used, _errors_recorded(used):
        yield used


def start_consumer_span(message: Any, group: str) -> Span | None:
    """The CONSUMER span of a Kafka message that carries a trace, started but not current: a
    batch applier makes it current around each step of its message (``in_span``) and ends it."""
    if _configured in (None, ""):
        return None
    headers = dict(message.headers() or [])
    if "traceparent" not in headers:
        return None
    key = message.key()
    attributes = {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.destination.name": message.topic() or "",
        "messaging.destination.partition.id": str(message.partition()),
        "messaging.kafka.offset": int(message.offset() or 0),
        "messaging.consumer.group.name": group,
        "messaging.kafka.message.key": key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key or ""),
    }
    return tracer().start_span(
        f"process {message.topic()}", context=context_of(headers), kind=SpanKind.CONSUMER,
        attributes=attributes,
    )


def in_span(current: Span | None) -> contextlib.AbstractContextManager[Any]:
    """``current`` as the current span (not ended on exit); nothing when None."""
    if current is None:
        return contextlib.nullcontext()
    return trace.use_span(current, end_on_exit=False)
