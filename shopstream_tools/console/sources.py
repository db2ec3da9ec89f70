"""Where the console's views read from: Kafka (through ``kafka_view``, off the event loop), the
order service's HTTP API (with a service token), the Prometheus of the platform or of the lab,
and Zipkin's links."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

import httpx

from shopstream import auth, redaction
from shopstream.config import Settings
from shopstream.http import Problem, field_error
from shopstream_tools.console import charts, health
from shopstream_tools.console.kafka_view import (
    KafkaView,
    Message,
    Topic,
    UnknownPartition,
    UnknownTopic,
)
from shopstream_tools.runtime import gateway_tls


class Console:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._kafka: KafkaView | None = None

    @property
    def kafka(self) -> KafkaView:
        if self._kafka is None:
            self._kafka = KafkaView(self.settings)
        return self._kafka

    async def run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    async def topic(self, name: str) -> Topic:
        try:
            return await self.run(self.kafka.topic, name)
        except UnknownTopic:
            raise Problem(
                404, "Unknown topic", f"no topic {name!r}", [field_error("topic", "no such topic")]
            ) from None

    async def messages(self, name: str, partition: int, limit: int) -> tuple[Topic, list[Message]]:
        topic = await self.topic(name)
        try:
            return topic, await self.run(self.kafka.latest_messages, name, partition, limit)
        except UnknownPartition as exc:
            raise Problem(
                404, "Unknown partition", str(exc), [field_error("partition", str(exc))]
            ) from None

    async def partition_sizes(self, name: str) -> dict[int, float]:
        try:
            async with httpx.AsyncClient(base_url=health.base_url(self.settings), timeout=3) as c:
                rows = await health.query(c, f'kafka_log_size{{topic="{name}"}}')
        except (httpx.HTTPError, RuntimeError):
            return {}
        return {int(r.labels["partition"]): r.value for r in rows}

    async def order(self, order_id: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]], str]:
        """The order and its event stream (the event store), from the order service's API."""
        gateway, verify = gateway_tls.client_endpoint(self.settings)
        base = f"{gateway}/orders/{order_id}"
        # the console reads any customer's order: it is an operator (docs/security.md)
        token = auth.admin_token(self.settings, 300)
        headers = {"X-Client-Id": "shopstream-console", "Authorization": f"Bearer {token}"}
        try:
            async with httpx.AsyncClient(timeout=5, headers=headers, verify=verify) as client:
                order, stream = await asyncio.gather(client.get(base), client.get(f"{base}/events"))
        except httpx.HTTPError as exc:
            raise Problem(503, "Order service unreachable", str(exc)) from None
        if order.status_code == 404:
            raise Problem(
                404, "Unknown order", f"no order {order_id}", [field_error("id", "no such order")]
            )
        if order.status_code != 200:
            raise Problem(
                502, "Order service failed", f"GET /orders/{order_id} answered {order.status_code}"
            )
        events = stream.json().get("events", []) if stream.status_code == 200 else []
        note = "" if stream.status_code == 200 else f"events answered {stream.status_code}"
        # an operator needs the order's course, not where it ships: the address keeps its country
        return redaction.value(order.json()), redaction.value(events), note

    async def lab_steps(self) -> tuple[str, list[list[Any]]]:
        """The Prometheus the lab view reads, and the load generators it scrapes now:
        (run, step, tool, up or down)."""
        base = await charts.prometheus_for(self.settings, "lab")
        try:
            async with httpx.AsyncClient(base_url=base, timeout=3) as c:
                rows = await health.query(c, 'up{job="loadgen"}')
        except (httpx.HTTPError, RuntimeError):
            return base, []
        return base, [
            [r.labels.get("run", ""), r.labels.get("step", ""), r.labels.get("tool", ""), "up" if r.value else "down"]
            for r in rows
        ]

    def trace_link(self, order_id: str) -> str:
        if not self.settings.zipkin_port:
            return ""
        query = quote(f"messaging.kafka.message.key={order_id}")
        return f"http://127.0.0.1:{self.settings.zipkin_port}/zipkin/?annotationQuery={query}&lookback=86400000&limit=10"
