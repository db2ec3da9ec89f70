"""What the lab samples every second while a step runs.

* CPU (cores) and memory (RSS of the main process, PSS of its whole tree) of every platform process
  by its pid file: each service instance, relays, consumers, Kafka, PostgreSQL, the gateway, and
  the load generator once it runs; the machine's busy cores; the lab's own process.
* Kafka: end offsets per topic partition and each consumer group's lag per partition.
* Backlog: each service's outbox rows not yet published.

/proc parsing is shopstream_tools.bench's (``read_proc_stats``, ``tree``): one implementation.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from shopstream_tools.bench import ProcTimes, parse_cpu_line, read_proc_stats, tree
from shopstream_tools.bench.cpu import CLOCK_TICKS_PER_SECOND
from shopstream_tools.runtime.processes import rss_bytes


def parse_pss_kb(smaps_rollup: str) -> int:
    for line in smaps_rollup.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def pss_bytes(pid: int) -> int:
    try:
        return parse_pss_kb(Path(f"/proc/{pid}/smaps_rollup").read_text()) * 1024
    except OSError:
        return 0


def tree_ticks(stats: dict[int, ProcTimes], pids: Iterable[int]) -> int:
    """CPU ticks of a tree: its members' own time plus what they reaped from exited children."""
    return sum(stats[p].total for p in pids if p in stats)


class Sampler:
    """Samples in a thread of its own (with its own event loop for the database queries)."""

    def __init__(
        self,
        groups: dict[str, list[int]],
        interval: float = 1.0,
        kafka: Any = None,  # KafkaProbe or None
        backlog: Callable[[], Any] | None = None,  # async () -> {service: pending rows}
    ) -> None:
        self.groups = {k: list(v) for k, v in groups.items() if v}
        self.interval = interval
        self.kafka = kafka
        self.backlog = backlog
        self.samples: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lab-sampler", daemon=True)
        self.started = 0.0
        self.started_wall = 0.0
        self.first_offsets: dict[str, dict[int, int]] = {}
        self.last_offsets: dict[str, dict[int, int]] = {}

    def add_group(self, name: str, pids: list[int]) -> None:
        with self._lock:
            self.groups[name] = list(pids)

    def start(self) -> Sampler:
        self.started = time.monotonic()
        self.started_wall = time.time()
        if self.kafka is not None:
            self.first_offsets = self.kafka.end_offsets()
        self._thread.start()
        return self

    def stop(self) -> list[dict[str, Any]]:
        self._stop.set()
        self._thread.join(timeout=30)
        if self.kafka is not None:
            with contextlib.suppress(Exception):
                self.last_offsets = self.kafka.end_offsets()
        return self.samples

    def latest(self) -> dict[str, Any]:
        return self.samples[-1] if self.samples else {}

    # -- the loop -------------------------------------------------------------------------------
    def _run(self) -> None:
        asyncio.run(self._loop())

    async def _loop(self) -> None:
        prev_stats = read_proc_stats()
        prev_machine = parse_cpu_line(Path("/proc/stat").read_text())
        prev_own = _own_cpu()
        prev_at = time.monotonic()
        while not self._stop.wait(self.interval):
            stats = read_proc_stats()
            machine = parse_cpu_line(Path("/proc/stat").read_text())
            own = _own_cpu()
            now = time.monotonic()
            dt = now - prev_at
            with self._lock:
                groups = dict(self.groups)
            sample: dict[str, Any] = {"t": round(now - self.started, 3), "cpu": {}, "rss_mb": {}}
            sample["pss_mb"] = {}
            for name, roots in groups.items():
                members = tree(stats, roots)
                before = tree(prev_stats, roots)
                # members born during the interval count with all their time; those that exited
                # were reaped by a member, so their time moved into its children's account
                used = tree_ticks(stats, members) - tree_ticks(prev_stats, before)
                sample["cpu"][name] = round(max(0, used) / CLOCK_TICKS_PER_SECOND / dt, 4) if dt > 0 else 0.0
                sample["rss_mb"][name] = round(sum(rss_bytes(p) for p in roots) / 2**20, 1)
                sample["pss_mb"][name] = round(sum(pss_bytes(p) for p in members) / 2**20, 1)
            busy = machine[0] - prev_machine[0]
            total = machine[1] - prev_machine[1]
            sample["machine_cores"] = round(busy / total * (os.cpu_count() or 1), 3) if total else 0
            sample["cpu"]["lab"] = round((own - prev_own) / dt, 4) if dt > 0 else 0.0
            if self.kafka is not None:
                try:
                    sample["kafka"] = self.kafka.sample()
                except Exception as exc:  # a broker busy with a rebalance: keep sampling
                    sample["kafka"] = {"error": str(exc)}
            if self.backlog is not None:
                try:
                    sample["backlog"] = await self.backlog()
                except Exception as exc:
                    sample["backlog"] = {"error": str(exc)}
            with self._lock:
                self.samples.append(sample)
            prev_stats, prev_machine, prev_own, prev_at = stats, machine, own, now


def _own_cpu() -> float:
    """CPU seconds of this process alone (its threads), not its children."""
    t = os.times()
    return t.user + t.system


class KafkaProbe:
    """End offsets per partition and consumer-group lag, read in a child process.

    librdkafka's admin client has crashed the process that held it (SIGSEGV in its rdk:main
    thread) when a broker frozen by the lab's PT-07 answered requests the client had already
    given up on: in a child, such a crash costs one sample, and the next one starts a new child.
    """

    def __init__(self, bootstrap: str, topics: Iterable[str]) -> None:
        self.bootstrap, self.topics = bootstrap, list(topics)
        self._pool = self._start()
        self.end_offsets()  # as before: a broker that cannot be reached fails here

    @staticmethod
    def _start() -> Any:
        import concurrent.futures
        import multiprocessing

        spawn = multiprocessing.get_context("spawn")  # no fork of a process with threads
        return concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=spawn)

    def _call(self, method: str) -> Any:
        from concurrent.futures.process import BrokenProcessPool

        for attempt in (1, 2):
            try:
                return self._pool.submit(_probe_call, self.bootstrap, self.topics, method).result(60)
            except BrokenProcessPool:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = self._start()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def end_offsets(self) -> dict[str, dict[int, int]]:
        return dict(self._call("end_offsets"))

    def sample(self) -> dict[str, Any]:
        return dict(self._call("sample"))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


_CHILD_PROBE: list[AdminProbe] = []  # the child's one admin client, made by its first call


def _probe_call(bootstrap: str, topics: list[str], method: str) -> Any:
    if not _CHILD_PROBE:
        _CHILD_PROBE.append(AdminProbe(bootstrap, topics))
    return getattr(_CHILD_PROBE[0], method)()


class AdminProbe:
    """End offsets per partition and consumer-group lag, through the admin API."""

    def __init__(self, bootstrap: str, topics: Iterable[str]) -> None:
        from confluent_kafka.admin import AdminClient

        self.admin = AdminClient({"bootstrap.servers": bootstrap})
        self.topics = list(topics)
        self.groups = self._groups()

    def _groups(self) -> list[str]:
        from confluent_kafka import ConsumerGroupState

        result = self.admin.list_consumer_groups(request_timeout=5).result()
        # A group with no member left (one the platform no longer runs) lags forever: not ours.
        return sorted(
            g.group_id
            for g in result.valid
            if not g.group_id.startswith(("lab-", "test-")) and g.state != ConsumerGroupState.EMPTY
        )

    def partitions(self) -> dict[str, int]:
        meta = self.admin.list_topics(timeout=5).topics
        return {t: len(meta[t].partitions) for t in self.topics if t in meta}

    def end_offsets(self) -> dict[str, dict[int, int]]:
        """Every partition's end offset, in one request to the broker."""
        from confluent_kafka import TopicPartition
        from confluent_kafka.admin import OffsetSpec

        wanted = {
            TopicPartition(topic, p): OffsetSpec.latest()
            for topic, count in self.partitions().items()
            for p in range(count)
        }
        out: dict[str, dict[int, int]] = {}
        if not wanted:
            return out
        for tp, future in self.admin.list_offsets(wanted, request_timeout=5).items():
            out.setdefault(tp.topic, {})[tp.partition] = int(future.result().offset)
        return out

    def committed(self, group: str) -> dict[str, dict[int, int]]:
        from confluent_kafka import ConsumerGroupTopicPartitions

        futures = self.admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])
        found = next(iter(futures.values())).result()
        out: dict[str, dict[int, int]] = {}
        for tp in found.topic_partitions or []:
            if tp.offset >= 0:
                out.setdefault(tp.topic, {})[tp.partition] = int(tp.offset)
        return out

    def sample(self) -> dict[str, Any]:
        ends = self.end_offsets()
        lag: dict[str, dict[str, int]] = {}
        for group in self.groups:
            done = self.committed(group)
            per: dict[str, int] = {}
            for topic, parts in done.items():
                for p, offset in parts.items():
                    end = ends.get(topic, {}).get(p)
                    if end is not None:
                        per[f"{topic}/{p}"] = max(0, end - offset)
            lag[group] = per
        return {
            "messages": {t: sum(parts.values()) for t, parts in ends.items()},
            "lag": {g: sum(v.values()) for g, v in lag.items()},
            "lag_partitions": lag,
        }

    def close(self) -> None:
        """Nothing to release: the admin client closes with the object."""
