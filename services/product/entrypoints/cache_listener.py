"""Follows product-events and evicts changed products from this instance's cache.

Every instance reads every partition from the end (no consumer group to share with: each instance
must see every change), in a thread, because the Kafka client blocks.
"""

from __future__ import annotations

import logging
import threading

from confluent_kafka import OFFSET_END, TopicPartition

from services.product.adapters.cache import INVALIDATION_LAG, ProductCache
from services.product.domain import model
from shopstream import events, kafka
from shopstream.config import Settings
from shopstream.consumer import next_batch

log = logging.getLogger(__name__)


class CacheListener:
    def __init__(self, settings: Settings, cache: ProductCache) -> None:
        self.settings = settings
        self.cache = cache
        self.assigned = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cache-listener", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        consumer = kafka.consumer(
            self.settings,
            f"product-cache-{self.settings.instance_id}",
            **{"enable.partition.eof": False},
        )
        try:
            while not self._stop.is_set() and not self.assigned.is_set():
                try:
                    topic = consumer.list_topics(model.TOPIC, timeout=5).topics[model.TOPIC]
                    if topic.error is None and topic.partitions:
                        consumer.assign(
                            [TopicPartition(model.TOPIC, p, OFFSET_END) for p in topic.partitions]
                        )
                        self.assigned.set()
                except Exception:
                    log.exception("cache listener cannot see %s yet", model.TOPIC)
                    self._stop.wait(1)
            while not self._stop.is_set():
                for message in next_batch(consumer, 500, 0.2):
                    value = message.value()
                    if message.error() or value is None:
                        continue
                    self._apply(value)
        finally:
            consumer.close()

    def _apply(self, raw: bytes) -> None:
        try:
            event = events.decode(raw)
        except Exception:
            log.warning("undecodable product event skipped")
            return
        version = int(event.data.get("version", 0))
        self.cache.invalidate(event.aggregate_id, version)
        INVALIDATION_LAG.observe(max(0.0, events.age_seconds(event)))
