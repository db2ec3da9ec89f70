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
