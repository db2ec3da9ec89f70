"""One measured step: a load with the samplers on (CPU, memory, Kafka, outbox backlog), then the
backlog left to drain while they keep sampling; and waiting until nothing is in flight."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from shopstream.config import Settings
from shopstream_tools.lab import audit, testbed
from shopstream_tools.lab.context import Lab
from shopstream_tools.lab.samplers import KafkaProbe, Sampler

# A load generator: given "its pid is" and "progress" callbacks, runs and returns its result.
Drive = Callable[[Callable[[int], None], Callable[[dict[str, Any]], None]], dict[str, Any]]


class Backlog:
    """Async callable for the sampler: unpublished outbox rows per service (own connections)."""

    def __init__(self, settings: Settings, services: list[str]) -> None:
        self.settings = settings
        self.services = services
        self.conns: dict[str, Any] = {}

    async def __call__(self) -> dict[str, int]:
        import asyncpg

        out = {}
        for service in self.services:
            if service not in self.conns:
                self.conns[service] = await asyncpg.connect(self.settings.database_url(service))
            out[service] = int(
                await self.conns[service].fetchval(
                    "SELECT count(*) FROM outbox"
                )
            )
        return out


def _printer(lab: Lab, label: str, seconds: float) -> Callable[[dict[str, Any]], None]:
    def show(status: dict[str, Any]) -> None:
        parts = [f"  [{label}] {status.get('elapsed', 0):5.0f}s/{seconds:.0f}s"]
        if "rate" in status:
            parts.append(f"{status['rate']:>7,.0f} req/s")
        if "users" in status:
            parts.append(f"users {status['users']}")
        if "failures" in status:
            parts.append(f"failures {status['failures']}")
        lab.log("  ".join(parts))

    return show


def measure(
    lab: Lab,
    test: str,
    step: str,
    params: dict[str, Any],
    drive: Drive,
    seconds: float,
    drain: bool = True,
) -> dict[str, Any]:
    """Run one load with the samplers on, then (optionally) let the backlog drain while they keep
    sampling; the step's record has the load result, the samples and when each phase ended."""
    lab.check_stop()
    label = f"{test} {step}"
    lab.log(f"{label}: {', '.join(f'{k}={v}' for k, v in params.items())}")
    services = [s for s in ("product", "order") if s == "product" or lab.order_service]
    probe = None
    try:
        probe = KafkaProbe(lab.settings.kafka_servers, testbed.TOPICS)
    except Exception as exc:  # pragma: no cover - Kafka down: sample the rest
        lab.log(f"  (no Kafka sampling: {exc})")
    sampler = Sampler(testbed.process_groups(lab.settings), 1.0, probe, Backlog(lab.settings, services))
    started_at = datetime.now(UTC)
    sampler.start()
    record: dict[str, Any] = {
        "test": test,
        "step": step,
        "params": params,
        "started_at": started_at.isoformat(),
        "sampler_started_wall": sampler.started_wall,
    }
    try:
        record["load"] = drive(lambda pid: sampler.add_group("loadgen", [pid]), _printer(lab, label, seconds))
        record["load_seconds"] = round(time.monotonic() - sampler.started, 3)
        record["load_ended_at"] = datetime.now(UTC).isoformat()
        if drain and not lab.stop.is_set():
            record["drain_seconds"] = wait_drained(lab, lab.profile.drain_timeout)
    finally:
        record["samples"] = sampler.stop()
        record["partition_messages"] = {
            topic: {
                str(p): sampler.last_offsets.get(topic, {}).get(p, 0) - start
                for p, start in parts.items()
            }
            for topic, parts in sampler.first_offsets.items()
        }
        if probe is not None:
            probe.close()
    lab.steps.append(record)  # kept even if a later step is interrupted
    record["cpu_cores"] = mean_cores(record["samples"], record.get("load_seconds"))
    record["peak_rss_mb"] = peak(record["samples"], "rss_mb")
    load = record["load"]
    lab.log(
        f"  -> {load.get('rate', 0):,.0f} req/s ({load.get('failures', 0)} failures), p50 "
        f"{load.get('latency_ms', {}).get('p50', float('nan')):.1f} ms, p99 "
        f"{load.get('latency_ms', {}).get('p99', float('nan')):.1f} ms; load generator "
        f"{load['loadgen']['cores']:.2f} cores"
        + (f" SATURATED: {load['loadgen']['saturation_reason']}" if load["loadgen"]["saturated"] else "")
        + (f"; drained in {record['drain_seconds']:.1f}s" if record.get("drain_seconds") is not None else "")
    )
    return record


def mean_cores(samples: list[dict[str, Any]], until: float | None) -> dict[str, float]:
    """Mean cores per process over the samples taken while the load ran."""
    during = [s for s in samples if until is None or s["t"] <= until + 0.5] or samples
    names = sorted({n for s in during for n in s.get("cpu", {})})
    out = {n: round(sum(s["cpu"].get(n, 0.0) for s in during) / len(during), 3) for n in names}
    if during:
        out["machine"] = round(sum(s.get("machine_cores", 0) for s in during) / len(during), 3)
    return out


def peak(samples: list[dict[str, Any]], key: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for s in samples:
        for n, v in s.get(key, {}).items():
            out[n] = max(out.get(n, 0.0), v)
    return out


def wait_drained(lab: Lab, timeout: float) -> float | None:
    """Seconds until nothing is in flight (outboxes empty, orders terminal, no consumer lag), or
    None after the timeout."""
    drained = audit.wait_drained(lab.settings, lab.order_service, timeout, lab.stop.is_set)
    if drained is not None:
        return drained
    lab.log(f"  !! still in flight after {timeout:.0f}s")
    return None

