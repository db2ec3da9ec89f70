"""Kafka clients configured the one way shopstream uses them (confluent-kafka / librdkafka)."""

from __future__ import annotations

from typing import Any

from confluent_kafka import Consumer, Producer

from shopstream.config import Settings

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_SSL")


def security(settings: Settings) -> dict[str, Any]:
    """How every client (producer, consumer, admin) connects: plaintext, TLS, or TLS + SCRAM.

    A misspelt protocol or a SASL login without credentials fails here, at start-up, rather than
    as a broker that silently drops the connection.
    """
    protocol = settings.kafka_security_protocol.upper()
    if protocol not in SECURITY_PROTOCOLS:
        raise ValueError(
            f"SHOPSTREAM_KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol!r}:"
            f" expected one of {', '.join(SECURITY_PROTOCOLS)}"
        )
    config: dict[str, Any] = {"security.protocol": protocol}
    if protocol == "PLAINTEXT":
        return config
    # TLS: always verify the broker's name against its certificate.
    config["ssl.endpoint.identification.algorithm"] = "https"
    if settings.kafka_ca_location:
        config["ssl.ca.location"] = settings.kafka_ca_location
    if protocol == "SASL_SSL":
        if not (settings.kafka_sasl_username and settings.kafka_sasl_password):
            raise ValueError(
                "SHOPSTREAM_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs SHOPSTREAM_KAFKA_SASL_USERNAME"
                " and SHOPSTREAM_KAFKA_SASL_PASSWORD"
            )
        config["sasl.mechanism"] = settings.kafka_sasl_mechanism
        config["sasl.username"] = settings.kafka_sasl_username
        config["sasl.password"] = settings.kafka_sasl_password
    return config


def admin_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """The configuration of an AdminClient (topics, groups, lag) that reaches the same brokers."""
    return {"bootstrap.servers": settings.kafka_servers, **security(settings), **overrides}


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
        **security(settings),
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
        "fetch.wait.max.ms": settings.kafka_fetch_wait_ms,
        "fetch.min.bytes": settings.kafka_fetch_min_bytes,
        **security(settings),
    }
    config.update(overrides)
    return Consumer(config)
