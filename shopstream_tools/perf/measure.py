"""What one perf-check step costs: CPU ticks of every platform process between two snapshots,
per operation, beside the idle cost of the same processes over the same time.

CPU per operation is the figure the gate compares: unlike throughput it barely moves when the
machine is shared, since a process that waits for the CPU spends no ticks waiting.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from shopstream.config import Settings
from shopstream_tools.bench.cpu import CLOCK_TICKS_PER_SECOND, group_ticks, read_proc_stats

# Every process counted, grouped the way the report reads them.
INFRASTRUCTURE = ("kafka", "postgres", "gateway", "zipkin")


def stage_of(process: str) -> str:
    """``order-1`` -> ``order http``, ``product-relay`` -> ``product relay``, ``kafka`` -> ``kafka``."""
    if process.startswith(INFRASTRUCTURE):
        return process.split("-")[0]
    service, _, kind = process.partition("-")
    if not kind:
        return "other"
    if kind.startswith("relay"):
        return f"{service} relay"
    if kind.startswith("consume"):
        return f"{service} consumers"
    return f"{service} http" if kind[0].isdigit() else "other"


@dataclass
class Snapshot:
    at: float
    ticks: dict[str, int]


def snapshot(groups: Mapping[str, list[int]]) -> Snapshot:
    stats = read_proc_stats()
    return Snapshot(time.monotonic(), {n: group_ticks(stats, roots) for n, roots in groups.items()})


def cpu_ms(before: Snapshot, after: Snapshot) -> dict[str, float]:
    """Milliseconds of CPU per process between two snapshots."""
    return {
        n: (after.ticks.get(n, 0) - t) / CLOCK_TICKS_PER_SECOND * 1000
        for n, t in before.ticks.items()
    }


def by_stage(per_process: Mapping[str, float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, value in per_process.items():
        stage = stage_of(name)
        out[stage] = out.get(stage, 0.0) + value
    return out


def idle_rate(groups: Mapping[str, list[int]], seconds: float) -> dict[str, float]:
    """CPU (ms per second) of each process with no load at all."""
    before = snapshot(groups)
    time.sleep(seconds)
    after = snapshot(groups)
    wall = after.at - before.at
    return {n: v / wall for n, v in cpu_ms(before, after).items()}


def wait_drained(settings: Settings, timeout: float) -> float | None:
    """Seconds until nothing is in flight (outboxes empty, orders terminal, no consumer lag)."""
    from shopstream_tools.lab import audit

    return audit.wait_drained(settings, True, timeout, lambda: False)


WAL_COUNTERS = ("wal_records", "wal_fpi", "wal_bytes", "wal_sync")


def wal_counters(settings: Settings) -> dict[str, float]:
    """PostgreSQL's write-ahead log counters (``pg_stat_wal``). What the database writes per
    operation does not move with the machine's load at all, unlike its CPU: the steady figure
    for the database's share of a change to the write path."""
    import asyncio

    import asyncpg

    async def read() -> dict[str, float]:
        conn = await asyncpg.connect(settings.admin_database_url())
        try:
            row = await conn.fetchrow(f"SELECT {', '.join(WAL_COUNTERS)} FROM pg_stat_wal")
        finally:
            await conn.close()
        assert row is not None  # pg_stat_wal always has its one row
        return {k: float(row[k]) for k in WAL_COUNTERS}

    return asyncio.run(read())


def wal_per_op(
    before: Mapping[str, float], after: Mapping[str, float], ops: int
) -> dict[str, float]:
    return {k: round((after[k] - before[k]) / max(ops, 1), 2) for k in WAL_COUNTERS}
