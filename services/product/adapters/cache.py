"""The read cache of one service instance, kept correct by the product events of every instance.

A write through this instance evicts at once; a write through another instance evicts when its event
arrives (relay + Kafka: the staleness bound, measured as ``product_cache_invalidation_lag_seconds``).
The highest version seen per product guards against a read that raced a write putting the old copy
back, and the TTL bounds the damage if events ever stopped arriving.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from prometheus_client import Counter, Histogram

LOOKUPS = Counter("product_cache_lookups_total", "Product cache lookups", ["result"])
INVALIDATION_LAG = Histogram(
    "product_cache_invalidation_lag_seconds",
    "From a product change to its eviction from this instance's cache",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10),
)
HITS, MISSES = LOOKUPS.labels("hit"), LOOKUPS.labels("miss")  # bound once: a lookup per read


@dataclass(frozen=True)
class Entry:
    version: int
    body: bytes
    etag: str
    stored_at: float


class ProductCache:
    def __init__(self, max_entries: int, ttl_seconds: float) -> None:
        self.max_entries = max_entries
        self.ttl = ttl_seconds
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._newest_version: dict[str, int] = {}
        self._lock = threading.Lock()

    def get(self, product_id: str) -> Entry | None:
        with self._lock:
            entry = self._entries.get(product_id)
            if entry is None or time.monotonic() - entry.stored_at > self.ttl:
                MISSES.inc()
                return None
            self._entries.move_to_end(product_id)
        HITS.inc()
        return entry

    def at_version(self, product_id: str, version: int) -> Entry | None:
        """The cached copy of exactly ``version`` (what a search just read), else None."""
        with self._lock:
            entry = self._entries.get(product_id)
            if entry is None or entry.version != version:
                MISSES.inc()
                return None
            self._entries.move_to_end(product_id)
        HITS.inc()
        return entry

    def put(self, product_id: str, version: int, body: bytes, etag: str) -> None:
        with self._lock:
            if version < self._newest_version.get(product_id, 0):
                return  # a newer change is already known: this copy is stale
            self._entries[product_id] = Entry(version, body, etag, time.monotonic())
            self._entries.move_to_end(product_id)
            while len(self._entries) > self.max_entries:
                evicted, _ = self._entries.popitem(last=False)
                self._newest_version.pop(evicted, None)

    def invalidate(self, product_id: str, version: int) -> None:
        with self._lock:
            if version > self._newest_version.get(product_id, 0):
                self._newest_version[product_id] = version
            entry = self._entries.get(product_id)
            if entry is not None and entry.version < version:
                del self._entries[product_id]

    def evict(self, product_id: str) -> None:
        """Forget a product now; its event will record the new version when it arrives."""
        with self._lock:
            self._entries.pop(product_id, None)

    def __len__(self) -> int:
        return len(self._entries)
