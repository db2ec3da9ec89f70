"""`shopstream dlq replay`: the dry run lists and changes nothing; the replay republishes, in order,
to the original topic with the original key, value and headers, then empties the dead-letter topic."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

from shopstream.consumer import DEAD_LETTER_TOPIC
from tests.observability import prom

pytestmark = pytest.mark.integration


def cli(platform, *args: str) -> str:
    env = {**__import__("os").environ, **platform.settings.as_env()}
    result = subprocess.run(
        [sys.executable, "-m", "shopstream_tools.cli", *args],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def offsets(admin: AdminClient, topic: str, spec: OffsetSpec) -> int:
    futures = admin.list_offsets({TopicPartition(topic, 0): spec})
    return next(iter(futures.values())).result().offset


def read_all(platform, topic: str, count: int) -> list:
    consumer = Consumer({"bootstrap.servers": platform.settings.kafka_servers,
                         "group.id": f"test-{uuid.uuid4().hex}", "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition(topic, 0, 0)])
    found = []
    try:
        for _ in range(30):
            found += [m for m in consumer.consume(count, timeout=1) if m.error() is None]
            if len(found) >= count:
                break
    finally:
        consumer.close()
    return found


def test_dry_run_then_replay(platform) -> None:
    settings = platform.settings
    admin = AdminClient({"bootstrap.servers": settings.kafka_servers})
    topic = f"dlq-replay-test-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result()
    run = uuid.uuid4().hex[:8]
    keys = [f"order-{run}-1", f"order-{run}-2"]
    producer = Producer({"bootstrap.servers": settings.kafka_servers})
    for n, key in enumerate(keys):
        producer.produce(
            DEAD_LETTER_TOPIC,
            key=key,
            value=json.dumps({"n": n, "run": run}).encode(),
            headers=[
                ("dlq.reason", f"RuntimeError: payment provider down ({run})".encode()),
                ("dlq.original_topic", topic.encode()),
                ("dlq.original_partition", b"0"),
                ("dlq.original_offset", str(40 + n).encode()),
                ("dlq.consumer_group", b"order-saga"),
                ("dlq.attempts", b"5"),
                ("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
            ],
        )
    assert producer.flush(10) == 0

    # The alert sees the waiting messages: JMX agent -> Prometheus -> alerting rule.
    prom.poll(
        lambda: prom.query(settings, 'ALERTS{alertname="DeadLetterNotEmpty",alertstate="firing"}'),
        90,
        lambda: "DeadLetterNotEmpty never fired",
    )

    listed = cli(platform, "dlq", "replay", "--dry-run")
    for key in keys:
        assert key in listed
    assert f"payment provider down ({run})" in listed and "dry run" in listed
    assert f"from {topic}/0@40" in listed
    assert offsets(admin, topic, OffsetSpec.latest()) == 0  # nothing published

    dlq_end = offsets(admin, DEAD_LETTER_TOPIC, OffsetSpec.latest())
    replayed = cli(platform, "dlq", "replay")
    assert "replayed" in replayed

    messages = read_all(platform, topic, 2)
    assert [m.key().decode() for m in messages] == keys  # in order
    assert [json.loads(m.value())["n"] for m in messages] == [0, 1]
    for m in messages:
        headers = dict(m.headers())
        assert headers["traceparent"].startswith(b"00-0af7651916cd43dd")
        assert headers["dlq.replayed_from"].startswith(b"dead-letter/0@")
        assert not any(k.startswith("dlq.") and k != "dlq.replayed_from" for k in headers)

    # Replayed records are gone from the dead-letter topic; a second dry run no longer lists them.
    assert offsets(admin, DEAD_LETTER_TOPIC, OffsetSpec.earliest()) >= dlq_end
    again = cli(platform, "dlq", "replay", "--dry-run")
    assert not any(key in again for key in keys)
    admin.delete_topics([topic])
