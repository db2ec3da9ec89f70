"""Where a trace may begin, and what an untraced request costs: no span, no context."""

from __future__ import annotations

import pytest
from opentelemetry import trace

from shopstream import tracing

SCOPE = {"type": "http", "method": "POST", "path": "/orders", "headers": []}


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(tracing, "_configured", "order")

    def ratio(value: float) -> None:
        monkeypatch.setattr(tracing, "_ratio", value)

    return ratio


def test_an_unsampled_request_makes_no_span_and_leaves_no_context(configured) -> None:
    configured(0.0)
    with tracing.server_span(SCOPE, "rid") as server:
        assert server.span is None
        assert not trace.get_current_span().get_span_context().is_valid
        assert tracing.current_headers() == {}, "its outbox rows carry no trace"


def test_a_sampled_request_begins_a_trace(configured) -> None:
    configured(1.0)
    with tracing.server_span(SCOPE, "rid") as server:
        assert server.span is not None


def test_a_request_that_carries_a_trace_continues_it_whatever_the_ratio(configured) -> None:
    configured(0.0)
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    scope = {**SCOPE, "headers": [(b"traceparent", parent.encode())]}
    with tracing.server_span(scope, "rid") as server:
        assert server.span is not None


class Message:
    def __init__(self, headers: list[tuple[str, bytes]]) -> None:
        self._headers = headers

    def headers(self) -> list[tuple[str, bytes]]:
        return self._headers

    def key(self) -> bytes:
        return b"k"

    def topic(self) -> str:
        return "stock-events"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return 1


def test_a_message_without_a_trace_starts_none_at_the_consumer(configured) -> None:
    configured(1.0)
    assert tracing.start_consumer_span(Message([]), "order-saga") is None
    parent = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    assert tracing.start_consumer_span(Message([("traceparent", parent)]), "order-saga") is not None


def test_the_ratio_is_drawn_per_new_trace(configured) -> None:
    configured(0.25)
    drawn = sum(tracing.sampled_root() for _ in range(20_000))
    assert 4_000 < drawn < 6_000


def test_a_traced_row_is_published_under_a_producer_span_and_an_untraced_one_as_is(
    configured, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    configured(0.0)
    finished = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(finished))
    monkeypatch.setattr(tracing, "_tracer", provider.get_tracer("test"))
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    sent = dict(tracing.publish_headers({"traceparent": parent, "event_type": "X"}, "order-events", "k"))
    (producer,) = finished.get_finished_spans()
    assert producer.kind == trace.SpanKind.PRODUCER and producer.name == "publish order-events"
    assert producer.parent is not None and producer.parent.span_id == 0xB7AD6B7169203331
    assert producer.context.trace_id == 0x0AF7651916CD43DD8448EB211C80319C
    assert producer.attributes["messaging.kafka.message.key"] == "k"
    # the consumer continues from the producer span, in the same trace
    assert sent == {
        "traceparent": f"00-{producer.context.trace_id:032x}-{producer.context.span_id:016x}-01".encode(),
        "event_type": b"X",
    }
    assert not trace.get_current_span().get_span_context().is_valid  # nothing left current
    assert dict(tracing.publish_headers({"event_type": "X"}, "order-events", "k")) == {"event_type": b"X"}
    assert len(finished.get_finished_spans()) == 1  # an untraced row makes no span
