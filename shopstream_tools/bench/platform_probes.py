"""What the benchmark reads from the running platform: whether it is ready, its processes by
role, what the gateway answered the benchmark's requests and the product cache's counters."""

from __future__ import annotations

import contextlib
import json
import os
import re
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from shopstream.config import Settings
from shopstream_tools.bench.load import USER_AGENT


def _http_status(url: str, timeout: float = 2.0) -> int:
    request = urllib.request.Request(
        url, headers={"User-Agent": f"{USER_AGENT}-check", "X-Client-Id": "bench-check"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def product_ports(settings: Settings) -> list[int]:
    from shopstream_tools.runtime import topology

    count = topology.instance_counts(settings).get("product", 0)
    return [settings.service_port("product", i) for i in range(1, count + 1)]


def platform_problem(settings: Settings) -> str:
    """Why the platform cannot be benchmarked now, or "" when it can."""
    ports = product_ports(settings)
    if not ports:
        return "no product-service instance is registered"
    for port in ports:
        if _http_status(f"http://127.0.0.1:{port}/health/ready") != 200:
            return f"product-service on :{port} is not ready"
    gateway = f"http://127.0.0.1:{settings.gateway_port}/products?limit=1"
    if (status := _http_status(gateway)) != 200:
        return f"the gateway does not answer GET /products with 200 (got {status or 'nothing'})"
    fixed = f"http://127.0.0.1:{settings.gateway_status_port}/fixed"
    if (status := _http_status(fixed)) != 200:
        return f"the gateway's fixed-response ceiling {fixed} answers {status or 'nothing'}"
    return ""


def process_groups(settings: Settings) -> dict[str, list[int]]:
    """The platform's processes by role; "background" is every other process the platform manages
    (relays, event consumers, other services' instances), so their CPU is not counted as "other"."""
    from shopstream_tools.runtime import gateway, kafka_broker, postgres, processes

    product_instances = {f"product-{i}" for i in range(1, len(product_ports(settings)) + 1)}
    groups: dict[str, list[int | None]] = {
        "gateway": [gateway.pid(settings)],
        "product": [processes.read_pid(settings, n) for n in sorted(product_instances)],
        "postgres": [postgres.pid(settings)],
        "kafka": [kafka_broker.pid(settings)],
    }
    # by pid, not by name: the supervisor also manages PostgreSQL, and a process counted twice
    # made "other" negative by its CPU
    named = {p for pids in groups.values() for p in pids}
    groups["background"] = [
        pid
        for pid in (processes.read_pid(settings, n) for n in processes.managed_names(settings))
        if pid not in named
    ]
    return {name: [p for p in pids if p and processes.alive(p)] for name, pids in groups.items()}


def parse_cache_lookups(metrics: str) -> tuple[float, float]:
    """(hits, misses) from a product instance's Prometheus text."""
    found = dict.fromkeys(("hit", "miss"), 0.0)
    for match in re.finditer(
        r'^product_cache_lookups_total\{result="(hit|miss)"\} ([0-9.e+]+)$', metrics, re.MULTILINE
    ):
        found[match.group(1)] += float(match.group(2))
    return found["hit"], found["miss"]


def scrape_cache(settings: Settings) -> tuple[float, float]:
    hits = misses = 0.0
    for port in product_ports(settings):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
                h, m = parse_cache_lookups(resp.read().decode())
        except OSError:
            continue
        hits, misses = hits + h, misses + m
    return hits, misses


def gateway_statuses(lines: Iterable[str], user_agent: str = USER_AGENT) -> Counter[int]:
    """Status codes of the benchmark's requests in the gateway's JSON access log lines."""
    statuses: Counter[int] = Counter()
    marker = f'"user_agent":"{user_agent}'
    for line in lines:
        if marker not in line:
            continue
        try:
            statuses[int(json.loads(line)["status"])] += 1
        except (ValueError, KeyError, TypeError):
            statuses[0] += 1
    return statuses


def non_2xx(statuses: Counter[int]) -> int:
    """Answers outside 2xx, leaving out 499 (wrk closing its connections at the end of a run)."""
    return sum(n for status, n in statuses.items() if not 200 <= status < 300 and status != 499)


def access_log_path(settings: Settings) -> Path:
    from shopstream_tools.runtime import gateway

    return gateway.access_log_path(settings)


def _lines_since(path: Path, offset: int) -> list[str]:
    if not path.exists():
        return []
    with path.open("rb") as fh:
        if fh.seek(0, os.SEEK_END) < offset:
            offset = 0  # rotated meanwhile
        fh.seek(offset)
        return fh.read().decode(errors="replace").splitlines()


def statuses_since(path: Path, offset: int) -> Counter[int]:
    """Status codes of the benchmark's requests logged after byte `offset` of the access log."""
    return gateway_statuses(_lines_since(path, offset))


def gateway_cache_since(path: Path, offset: int, user_agent: str = USER_AGENT) -> dict[str, Any]:
    """How the gateway's read cache answered the benchmark's requests (HIT, MISS, BYPASS ...)."""
    marker = f'"user_agent":"{user_agent}'
    counts: Counter[str] = Counter()
    for line in _lines_since(path, offset):
        if marker in line:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                counts[json.loads(line).get("cache") or "none"] += 1
    total = sum(counts.values())
    # STALE: an expired entry answered while one request refreshes it (proxy_cache_use_stale)
    served = counts["HIT"] + counts["UPDATING"] + counts["STALE"]
    return {**counts, "hit_ratio": round(served / total, 3) if total else None}
