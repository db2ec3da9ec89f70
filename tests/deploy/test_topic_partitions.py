"""`migrate` creates the configured topics and refuses to add partitions to an existing one.

Against the test platform's real Kafka: adding partitions moves keys and breaks per-key order, so
the refusal must leave the topic exactly as it was and tell the operator how to migrate.
"""

from __future__ import annotations

import dataclasses
import uuid

import pytest
from confluent_kafka.admin import AdminClient

from shopstream import kafka
from shopstream_tools.runtime.kafka_broker import TopicPartitionsMismatch, ensure_topics

pytestmark = pytest.mark.integration


def partitions(admin: AdminClient, topic: str) -> int:
    return len(admin.list_topics(topic, timeout=10).topics[topic].partitions)


def test_migrate_creates_topics_and_refuses_to_add_partitions(platform) -> None:
    topic = f"deploy-partitions-{uuid.uuid4().hex[:8]}"
    settings = dataclasses.replace(platform.settings, topic_partitions=f"{topic}=2")
    admin = AdminClient(kafka.admin_config(settings))
    try:
        assert ensure_topics(settings) == {topic: 2}
        assert partitions(admin, topic) == 2
        assert ensure_topics(settings) == {topic: 2}  # a second migrate changes nothing

        grown = dataclasses.replace(settings, topic_partitions=f"{topic}=4")
        with pytest.raises(TopicPartitionsMismatch) as refused:
            ensure_topics(grown)
        message = str(refused.value)
        assert f"{topic} has 2 partitions, SHOPSTREAM_TOPIC_PARTITIONS asks for 4" in message
        assert "--alter" in message and "drain" in message
        assert partitions(admin, topic) == 2
    finally:
        for future in admin.delete_topics([topic], operation_timeout=30).values():
            future.result()
