"""How work spread, for the strategy comparisons: requests each service instance answered (PT-03b,
from the instances' own ``http_requests_total``), and what Kafka holds for a step on each
partition, read back to check that every order's messages stayed on one partition in their
order (PT-04b). Counting and checking are pure functions; reading them is a thin layer."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from shopstream.config import Settings
from shopstream_tools.runtime import topology

# routes nobody but the platform calls: probes and scrapes are not the load
NOT_LOAD = ("/health", "/ready", "/metrics")


def answered(metrics_text: str) -> float:
    """Requests an instance answered, from its Prometheus text, probes and scrapes left out."""
    total = 0.0
    for family in text_string_to_metric_families(metrics_text):
        if family.name != "http_requests":
            continue
        for sample in family.samples:
            if sample.name == "http_requests_total" and not sample.labels.get("route", "").startswith(NOT_LOAD):
                total += sample.value
    return total


def instance_requests(settings: Settings) -> dict[str, float]:
    """{"product-1": requests answered so far, ...} for every running instance (one that does not
    answer its /metrics is left out)."""
    out: dict[str, float] = {}
    counts = topology.instance_counts(settings)
    with httpx.Client(timeout=5) as client:
        for spec in topology.specs():
            for i in range(1, counts.get(spec.name, 0) + 1):
                service = spec.name
                url = f"http://127.0.0.1:{settings.service_port(service, i)}/metrics"
                try:
                    out[topology.instance_name(service, i)] = answered(client.get(url).text)
                except httpx.HTTPError:
                    continue
    return out


def served(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    """Requests each instance answered between two readings (a restarted instance counts from 0)."""
    return {name: v - before.get(name, 0.0) if v >= before.get(name, 0.0) else v for name, v in after.items()}


def by_service(counts: Mapping[str, float]) -> dict[str, dict[str, float]]:
    """{"product": {"product-1": n, ...}, "order": {...}}."""
    out: dict[str, dict[str, float]] = {}
    for name, value in counts.items():
        out.setdefault(name.rsplit("-", 1)[0], {})[name] = value
    return out


# --- per-key order on Kafka ------------------------------------------------------------------------
@dataclass(frozen=True)
class Message:
    partition: int
    offset: int
    key: str
    order_id: str  # the event's aggregate
    order_version: int | None  # the order's version (order-events, payment-events), None elsewhere


def key_order(messages: Iterable[Message]) -> dict[str, Any]:
    """Whether each order's messages stayed on one partition and, where they carry the order's
    version, came in its order. ``split``: orders seen on more than one partition;
    ``out_of_order``: orders whose version went down from one message to the next."""
    partitions: dict[str, set[int]] = {}
    last: dict[str, int] = {}
    keys: set[str] = set()
    out_of_order: set[str] = set()
    count = 0
    for m in sorted(messages, key=lambda m: (m.partition, m.offset)):
        count += 1
        keys.add(m.key)
        partitions.setdefault(m.order_id, set()).add(m.partition)
        if m.order_version is not None:
            if m.order_version < last.get(m.order_id, -1):
                out_of_order.add(m.order_id)
            last[m.order_id] = m.order_version
    split = sorted(o for o, p in partitions.items() if len(p) > 1)
    return {
        "messages": count,
        "keys": len(keys),
        "orders": len(partitions),
        "split": len(split),
        "out_of_order": len(out_of_order),
        "kept": not split and not out_of_order,
        "examples": (split + sorted(out_of_order))[:5],
    }


def high_watermarks(settings: Settings, topic: str) -> dict[int, int]:
    """{partition: next offset} of ``topic`` now."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": settings.kafka_servers, "group.id": "lab-spread"})
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in meta.partitions}
    finally:
        consumer.close()


def read_between(settings: Settings, topic: str, start: Mapping[int, int], end: Mapping[int, int], timeout: float = 60) -> list[Message]:
    """The messages of ``topic`` from ``start`` up to ``end`` (exclusive) on each partition."""
    import time

    from confluent_kafka import Consumer, TopicPartition

    from shopstream.events import decode

    wanted = {p: (start.get(p, 0), e) for p, e in end.items() if e > start.get(p, 0)}
    if not wanted:
        return []
    consumer = Consumer({"bootstrap.servers": settings.kafka_servers, "group.id": "lab-spread",
                         "enable.auto.commit": False, "enable.partition.eof": False})  # fmt: skip
    out: list[Message] = []
    try:
        consumer.assign([TopicPartition(topic, p, s) for p, (s, _) in wanted.items()])
        remaining = sum(e - s for s, e in wanted.values())
        deadline = time.monotonic() + timeout
        while remaining > 0 and time.monotonic() < deadline:
            for msg in consumer.consume(1000, 1.0):
                if msg.error() is not None:
                    continue
                p, offset, value = msg.partition(), msg.offset(), msg.value()
                if p is None or offset is None or value is None or p not in wanted or offset >= wanted[p][1]:
                    continue
                remaining -= 1
                headers = dict(msg.headers() or [])
                version = headers.get("order_version")
                event = decode(value)
                out.append(Message(p, offset, (msg.key() or b"").decode(), event.aggregate_id,
                                   int(version) if version is not None else None))  # fmt: skip
    finally:
        consumer.close()
    return out
