"""Kafka clients configured the one way shopstream uses them (confluent-kafka / librdkafka)."""

from __future__ import annotations

from typing import Any

from confluent_kafka import Consumer, Producer

from shopstream.config import Settings


def producer(settings: Settings, **overrides: Any) -> Producer:
    """An idempotent producer: acks=all, no duplicates or reordering per partition on retry."""
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_servers,
        "client.id": settings.instance_id,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
        # Kafka's Java default: a key lands on the partition other clients and tools expect.
        "partitioner": "murmur2_random",
    }
    config.update(overrides)
    return Producer(config)


def consumer(settings: Settings, group: str, **overrides: Any) -> Consumer:
    """A consumer that commits offsets only when told to, after the effect is durable."""
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_servers,
        "group.id": group,
        "client.id": settings.instance_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "partition.assignment.strategy": "cooperative-sticky",
        "session.timeout.ms": 10000,
        "heartbeat.interval.ms": 1000,
    }
    config.update(overrides)
    return Consumer(config)
