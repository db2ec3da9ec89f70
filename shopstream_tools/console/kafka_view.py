"""What the console shows of Kafka, read with confluent-kafka's AdminClient and an assign-only consumer.

Every function here is blocking (librdkafka calls); the app runs them in a thread. Nothing here
writes to Kafka or commits an offset: the console is read-only.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from shopstream import redaction
from shopstream.config import Settings
from shopstream.consumer import DEAD_LETTER_TOPIC

TIMEOUT = 10.0


class UnknownTopic(LookupError):
    pass


class UnknownPartition(LookupError):
    pass


@dataclass
class Broker:
    id: int
    host: str
    port: int
    controller: bool


@dataclass
class Partition:
    id: int
    leader: int
    replicas: list[int]
    isr: list[int]
    low: int = 0  # log start offset
    high: int = 0  # log end offset

    @property
    def messages(self) -> int:
        return self.high - self.low


@dataclass
class Topic:
    name: str
    partitions: list[Partition] = field(default_factory=list)

    @property
    def messages(self) -> int:
        return sum(p.messages for p in self.partitions)

    @property
    def internal(self) -> bool:
        return self.name.startswith("__")


@dataclass
class GroupPartition:
    topic: str
    partition: int
    committed: int | None
    end: int

    @property
    def lag(self) -> int:
        return self.end - (self.committed or 0) if self.committed is not None else self.end


@dataclass
class Group:
    id: str
    state: str
    members: int
    partitions: list[GroupPartition] = field(default_factory=list)

    @property
    def lag(self) -> int:
        return sum(p.lag for p in self.partitions)


@dataclass
class Message:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: str | None
    headers: dict[str, str]
    value: Any  # decoded JSON, or the text when it is not JSON
    json: bool

    @property
    def dlq_reason(self) -> str:
        return self.headers.get("dlq.reason", "")


class KafkaView:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.admin = AdminClient(
            {"bootstrap.servers": settings.kafka_servers, "client.id": "shopstream-console"}
        )

    # -- cluster and topics ----------------------------------------------------------------------

    def brokers(self) -> tuple[str, list[Broker]]:
        md = self.admin.list_topics(timeout=TIMEOUT)
        brokers = [
            Broker(b.id, b.host or "", b.port, b.id == md.controller_id)
            for b in sorted(md.brokers.values(), key=lambda b: b.id)
        ]
        return md.cluster_id or "", brokers

    def topics(self, with_offsets: bool = True) -> list[Topic]:
        md = self.admin.list_topics(timeout=TIMEOUT)
        topics = []
        for name in sorted(md.topics):
            t = md.topics[name]
            parts = [
                Partition(p.id, p.leader, list(p.replicas), list(p.isrs))
                for p in sorted(t.partitions.values(), key=lambda p: p.id)
            ]
            topics.append(Topic(name, parts))
        if with_offsets:
            self._fill_offsets([p for t in topics for p in _with_topic(t)])
        return topics

    def topic(self, name: str) -> Topic:
        md = self.admin.list_topics(topic=name, timeout=TIMEOUT)
        t = md.topics.get(name)
        if t is None or t.error is not None:
            raise UnknownTopic(name)
        topic = Topic(
            name,
            [
                Partition(p.id, p.leader, list(p.replicas), list(p.isrs))
                for p in sorted(t.partitions.values(), key=lambda p: p.id)
            ],
        )
        self._fill_offsets(_with_topic(topic))
        return topic

    def _fill_offsets(self, parts: list[tuple[str, Partition]]) -> None:
        if not parts:
            return
        for spec, attr in ((OffsetSpec.earliest(), "low"), (OffsetSpec.latest(), "high")):
            request = {TopicPartition(topic, p.id): spec for topic, p in parts}
            futures = self.admin.list_offsets(request, request_timeout=TIMEOUT)
            by_key = {(topic, p.id): p for topic, p in parts}
            for tp, future in futures.items():
                setattr(by_key[(tp.topic, tp.partition)], attr, future.result().offset)

    # -- consumer groups -------------------------------------------------------------------------

    def groups(self) -> list[Group]:
        listed = self.admin.list_consumer_groups(request_timeout=TIMEOUT).result()
        ids = sorted(g.group_id for g in listed.valid if not g.group_id.startswith("test-"))
        if not ids:
            return []
        described = {
            gid: f.result()
            for gid, f in self.admin.describe_consumer_groups(
                ids, request_timeout=TIMEOUT
            ).items()
        }
        groups: list[Group] = []
        ends: dict[tuple[str, int], int] = {}
        committed: dict[str, list[TopicPartition]] = {}
        for gid in ids:
            # one group per request: the offsets call takes a single group
            future = self.admin.list_consumer_group_offsets(
                [ConsumerGroupTopicPartitions(gid)], request_timeout=TIMEOUT
            )[gid]
            committed[gid] = list(future.result().topic_partitions or [])
            for tp in committed[gid]:
                ends[(tp.topic, tp.partition)] = 0
        if ends:
            futures = self.admin.list_offsets(
                {TopicPartition(t, p): OffsetSpec.latest() for t, p in ends},
                request_timeout=TIMEOUT,
            )
            for tp, f in futures.items():
                ends[(tp.topic, tp.partition)] = f.result().offset
        for gid in ids:
            d = described[gid]
            offsets = {(tp.topic, tp.partition): tp.offset for tp in committed[gid]}
            # partitions assigned to a member but never committed count from the log start
            for member in d.members:
                for tp in member.assignment.topic_partitions if member.assignment else []:
                    offsets.setdefault((tp.topic, tp.partition), -1)
            missing = [k for k in offsets if k not in ends]
            if missing:
                futures = self.admin.list_offsets(
                    {TopicPartition(t, p): OffsetSpec.latest() for t, p in missing},
                    request_timeout=TIMEOUT,
                )
                for tp, f in futures.items():
                    ends[(tp.topic, tp.partition)] = f.result().offset
            parts = [
                GroupPartition(t, p, off if off >= 0 else None, ends[(t, p)])
                for (t, p), off in sorted(offsets.items())
            ]
            state = getattr(d.state, "name", str(d.state))
            groups.append(Group(gid, state, len(d.members), parts))
        return groups

    # -- messages --------------------------------------------------------------------------------

    def latest_messages(self, topic: str, partition: int, limit: int) -> list[Message]:
        """The last ``limit`` messages of a partition, newest first."""
        t = self.topic(topic)
        part = next((p for p in t.partitions if p.id == partition), None)
        if part is None:
            raise UnknownPartition(f"{topic} has partitions 0..{len(t.partitions) - 1}")
        start = max(part.low, part.high - limit)
        if part.high <= start:
            return []
        consumer = Consumer(
            {
                "bootstrap.servers": self.settings.kafka_servers,
                "group.id": f"shopstream-console-{uuid.uuid4().hex}",  # never committed
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "client.id": "shopstream-console",
            }
        )
        found: list[Message] = []
        try:
            consumer.assign([TopicPartition(topic, partition, start)])
            want = part.high - start
            misses = 0
            while len(found) < want and misses < 10:
                batch = consumer.consume(want - len(found), timeout=1.0)
                if not batch:
                    misses += 1
                for m in batch:
                    if m.error() is None and (m.offset() or 0) < part.high:
                        found.append(decode(m))
        finally:
            consumer.close()
        return sorted(found, key=lambda m: m.offset, reverse=True)

    def dead_letters(self, limit: int) -> list[Message]:
        """The newest dead-lettered messages across the dead-letter topic's partitions."""
        topic = self.topic(DEAD_LETTER_TOPIC)
        found: list[Message] = []
        for p in topic.partitions:
            found.extend(self.latest_messages(DEAD_LETTER_TOPIC, p.id, limit))
        return sorted(found, key=lambda m: m.timestamp_ms, reverse=True)[:limit]


def _with_topic(topic: Topic) -> list[tuple[str, Partition]]:
    return [(topic.name, p) for p in topic.partitions]


def decode(m: Any) -> Message:
    raw = m.value() or b""
    try:
        value: Any = json.loads(raw)
        is_json = True
    except ValueError:
        value, is_json = raw.decode("utf-8", "replace"), False
    # the console shows events to operators: no tokens, passwords or shipping addresses
    value = redaction.value(value)
    headers = {
        k: (v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v or ""))
        for k, v in (m.headers() or [])
    }
    headers = redaction.value(headers)
    key = m.key()
    return Message(
        m.topic(),
        m.partition(),
        m.offset(),
        m.timestamp()[1],
        key.decode("utf-8", "replace") if isinstance(key, bytes) else key,
        headers,
        value,
        is_json,
    )


__all__ = ["KafkaView", "UnknownPartition", "UnknownTopic"]
