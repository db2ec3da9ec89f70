from __future__ import annotations

import time

from services.product.adapters.cache import ProductCache


def test_hit_and_eviction_by_newer_version() -> None:
    cache = ProductCache(10, 60)
    cache.put("p", 1, b"v1", '"1"')
    assert cache.get("p").body == b"v1"
    cache.invalidate("p", 2)
    assert cache.get("p") is None


def test_stale_read_cannot_repopulate_after_invalidation() -> None:
    cache = ProductCache(10, 60)
    cache.invalidate("p", 3)  # the event of version 3 arrived while a reader still held version 2
    cache.put("p", 2, b"old", '"2"')
    assert cache.get("p") is None
    cache.put("p", 3, b"new", '"3"')
    assert cache.get("p").body == b"new"


def test_own_version_event_keeps_entry() -> None:
    cache = ProductCache(10, 60)
    cache.put("p", 2, b"v2", '"2"')
    cache.invalidate("p", 2)
    assert cache.get("p").body == b"v2"


def test_lru_bound_and_ttl() -> None:
    cache = ProductCache(2, 0.05)
    for i in range(3):
        cache.put(str(i), 1, b"x", '"1"')
    assert len(cache) == 2 and cache.get("0") is None
    time.sleep(0.06)
    assert cache.get("2") is None


def test_a_search_takes_only_the_version_it_read() -> None:
    cache = ProductCache(10, 60)
    cache.put("p", 2, b"v2", '"2"')
    assert cache.at_version("p", 2).body == b"v2"
    assert cache.at_version("p", 3) is None  # the row moved on: read it again
    assert cache.at_version("p", 1) is None  # the search's snapshot is older than the copy
    assert cache.at_version("q", 1) is None
