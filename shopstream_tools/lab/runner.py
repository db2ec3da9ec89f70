"""``shopstream lab run``: brings up the lab's platform, measures the ceilings, runs the tests,
audits after each, and writes raw results, charts and the HTML report under
``performance-tests/results/<run-id>/``.

Ctrl-C stops cleanly: the running load generator is told to stop and writes what it measured,
no further step starts, and the results, charts and report are written from what was measured.
"""

from __future__ import annotations

import asyncio
import csv
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from shopstream.config import PROJECT_ROOT, Settings
from shopstream_tools.bench import RESULTS_DIR, git_revision, machine_info, run_id
from shopstream_tools.lab import audit, ceilings, orders, scrape, testbed
from shopstream_tools.lab.load import VEGETA
from shopstream_tools.lab.profiles import Profile
from shopstream_tools.lab.samplers import KafkaProbe, Sampler
from shopstream_tools.lab.stats import median
from shopstream_tools.lab.workload import Workload, prepare, restock_scarce

TESTS = ("PT-01", "PT-02", "PT-03", "PT-04", "PT-05", "PT-06")
TITLES = {
    "PT-01": "Baseline: concurrency vs throughput",
    "PT-02": "Synchronous vs asynchronous orders",
    "PT-03": "Horizontal scaling",
    "PT-04": "Kafka partitions",
    "PT-05": "Burst",
    "PT-06": "Tracing cost",
}
READ_WEIGHTS = {"search": 3, "by_id": 6, "list_orders": 1}


def say(line: str) -> None:
    print(line, flush=True)  # progress must show at once, also when the output is a file


class Interrupted(Exception):
    pass


class CannotStart(Exception):
    """The lab platform cannot start (a port taken by another program)."""


@dataclass
class Lab:
    settings: Settings
    profile: Profile
    run_dir: Path
    stop: threading.Event
    log: Callable[[str], object]
    workload: Workload | None = None
    order_service: bool = False
    ceilings: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    pgbench_scripts: dict[str, list[Path]] = field(default_factory=dict)
    pgbench_products: int = 0
    tests: dict[str, dict[str, Any]] = field(default_factory=dict)
    steps: list[dict[str, Any]] = field(default_factory=list)  # the running test's, as measured

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.settings.gateway_port}"

    @property
    def raw(self) -> Path:
        path = self.run_dir / "raw"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def check_stop(self) -> None:
        if self.stop.is_set():
            raise Interrupted()

    def ceiling(self, name: str) -> float | None:
        return median(c["rate"] for c in self.ceilings.get(name, []))

    def read_weights(self) -> dict[str, int]:
        w = dict(READ_WEIGHTS)
        if not self.order_service:
            w.pop("list_orders")
        return w


# --- one measured step --------------------------------------------------------------------------
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
                    "SELECT count(*) FROM outbox WHERE published_at IS NULL"
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
    drive: Callable[[Callable[[int], None], Callable[[dict[str, Any]], None]], dict[str, Any]],
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
    started = time.monotonic()
    probe = KafkaProbe(lab.settings.kafka_servers, testbed.TOPICS)
    try:
        while time.monotonic() - started < timeout and not lab.stop.is_set():
            pending = asyncio.run(audit.pending_work(lab.settings, lab.order_service))
            lag = sum(probe.sample()["lag"].values())
            if not any(pending.values()) and lag == 0:
                return round(time.monotonic() - started, 2)
            time.sleep(0.5)
    finally:
        probe.close()
    lab.log(f"  !! still in flight after {timeout:.0f}s")
    return None


# --- ceilings --------------------------------------------------------------------------------------
def measure_ceilings(lab: Lab, round_number: int) -> None:
    p = lab.profile
    lab.log(f"ceilings, round {round_number}: nginx /fixed, pgbench (read mix, order path), Kafka producer")
    scripts = lab.pgbench_scripts
    reads = [(scripts["by_id"][0], 2 * len(scripts["search"]))] + [(s, 1) for s in scripts["search"]]
    # by id : search = 6 : 3, the Locust read mix (listing orders has no product-side SQL)
    plan: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("nginx-fixed", lambda: ceilings.nginx_fixed(lab.settings, p.ceiling_seconds, lab.raw, lab.stop)),
        ("pgbench-read-mix", lambda: ceilings.pgbench(lab.settings, "pgbench-read-mix", reads, p.ceiling_seconds, lab.pgbench_products, lab.raw, lab.stop)),
        ("pgbench-order-path", lambda: ceilings.pgbench(lab.settings, "pgbench-order-path", [(scripts["order_path"][0], 1)], p.ceiling_seconds, lab.pgbench_products, lab.raw, lab.stop, "orders/s")),
        ("kafka-producer", lambda: ceilings.kafka_producer(lab.settings, 6, p.kafka_records, lab.raw, lab.stop)),
    ]  # fmt: skip
    for name, run in plan:
        lab.check_stop()
        result = run() | {"round": round_number, "at": datetime.now(UTC).isoformat()}
        lab.ceilings.setdefault(name, []).append(result)
        lab.log(f"  {name:<20} {result['rate']:>10,.0f} {result['unit']}")


# --- the tests ------------------------------------------------------------------------------------
Drive = Callable[[Callable[[int], None], Callable[[dict[str, Any]], None]], dict[str, Any]]


def _scraped(lab: Lab, name: str, tool: str, run: Callable[[int, Callable[[int], None], Callable[[dict[str, Any]], None]], dict[str, Any]]) -> Drive:
    """A load generator that serves metrics on a port of its own, listed as Prometheus' loadgen
    target from the moment it starts until it stops; what Prometheus saw goes with its result."""

    def drive(on_start: Callable[[int], None], progress: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        port = scrape.free_port()
        run_name = lab.run_dir.name

        def started(pid: int) -> None:
            scrape.register(lab.settings, port, run_name, name, tool)
            on_start(pid)

        began = time.monotonic()
        try:
            result = run(port, started, progress)
        finally:
            scrape.unregister(lab.settings)
        result["prometheus"] = scrape.seen(lab.settings, run_name, name, tool, time.monotonic() - began)
        return result

    return drive


def _locust(lab: Lab, name: str, **plan: Any) -> Drive:
    from dataclasses import replace

    from shopstream_tools.lab.load import LocustPlan, run_locust

    assert lab.workload is not None
    locust_plan = LocustPlan(host=lab.gateway, data_file=lab.workload.path, **plan)

    def run(port: int, on_start: Callable[[int], None], progress: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        return run_locust(replace(locust_plan, metrics_port=port), lab.raw, name, lab.stop, on_start, progress)

    return _scraped(lab, name, "locust", run)


def _attach_orders(lab: Lab, record: dict[str, Any]) -> None:
    if not lab.order_service:
        return
    since = datetime.fromisoformat(record["started_at"])
    until = datetime.fromisoformat(record["load_ended_at"])
    rows = asyncio.run(orders.fetch(lab.settings, since, until))
    record["orders"] = orders.breakdown(rows)


def pt01(lab: Lab) -> list[dict[str, Any]]:
    p = lab.profile
    steps = []
    for users in p.pt01_users:
        drive = _locust(
            lab, f"PT-01-u{users}", weights=lab.read_weights(), users=users,
            spawn_rate=max(users, 1), seconds=p.pt01_seconds, think_seconds=p.pt01_think,
        )  # fmt: skip
        steps.append(measure(lab, "PT-01", f"users={users}", {"users": users, "think_s": p.pt01_think}, drive, p.pt01_seconds, drain=False))
    return steps


def _order_targets(lab: Lab, path: Path, mode: str, count: int) -> None:
    import random
    import uuid

    from shopstream_tools.lab.load import vegeta_target, write_targets

    assert lab.workload is not None
    w = lab.workload
    rng = random.Random()  # fresh keys every run: a repeated Idempotency-Key replays an old order

    def lines() -> Any:
        for _ in range(count):
            items = [{"product_id": pid, "quantity": 1} for pid in rng.sample(w.order_products, 2)]
            if w.scarce_products and rng.random() < 0.02:
                items.append({"product_id": rng.choice(w.scarce_products), "quantity": 1})
            customer = rng.choice(w.customers)
            body = {
                "customer_id": customer,
                "lines": items,
                "shipping_address": {"name": "Lab Customer", "line1": "1 Benchmark Way",
                                     "city": "Lisbon", "postal_code": "1000-001", "country": "PT"},
                "mode": mode,
            }  # fmt: skip
            headers = {
                "Content-Type": "application/json",
                "Idempotency-Key": uuid.UUID(int=rng.getrandbits(128)).hex,
                "X-Client-Id": f"lab-open-{rng.randrange(1024)}",
                "Authorization": f"Bearer {w.tokens[customer]}",
            }
            yield vegeta_target("POST", f"{lab.gateway}/orders", json.dumps(body).encode(), headers)

    write_targets(path, lines())


def _vegeta(lab: Lab, name: str, mode: str, rate: float, seconds: float) -> Drive:
    from shopstream_tools.lab.load import run_vegeta

    targets = lab.raw / f"{name}.targets.jsonl"
    _order_targets(lab, targets, mode, int(rate * seconds * 1.05) + 10)

    def run(port: int, on_start: Callable[[int], None], progress: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        try:
            return run_vegeta(targets, rate, seconds, lab.raw, name, lab.stop, on_start, progress, metrics_port=port)
        finally:
            targets.unlink(missing_ok=True)

    return _scraped(lab, name, "vegeta", run)


def pt02(lab: Lab) -> list[dict[str, Any]]:
    p = lab.profile
    steps = []
    capacity: dict[str, float] = {}
    for users in p.pt02_users:
        for mode in ("sync", "async"):
            drive = _locust(
                lab, f"PT-02-{mode}-u{users}", weights={"place_order": 1}, users=users,
                spawn_rate=max(users, 1), seconds=p.pt02_seconds, think_seconds=p.pt02_think, mode=mode,
            )  # fmt: skip
            record = measure(lab, "PT-02", f"{mode} users={users}", {"mode": mode, "users": users, "think_s": p.pt02_think, "loop": "closed"}, drive, p.pt02_seconds)
            _attach_orders(lab, record)
            steps.append(record)
            capacity[mode] = max(capacity.get(mode, 0.0), record["load"].get("ok_rate", 0.0))
    # open loop at the same constant rate for both: the latency each model gives a user
    rate = max(1.0, round(0.5 * min(capacity.values() or [1.0])))
    for mode in ("sync", "async"):
        drive = _vegeta(lab, f"PT-02-open-{mode}", mode, rate, p.pt02_open_seconds)
        record = measure(lab, "PT-02", f"{mode} open loop {rate:g}/s", {"mode": mode, "rate": rate, "loop": "open"}, drive, p.pt02_open_seconds)
        _attach_orders(lab, record)
        steps.append(record)
    return steps


def pt03(lab: Lab) -> list[dict[str, Any]]:
    p = lab.profile
    steps = []
    weights = {**lab.read_weights(), **({"place_order": 1} if lab.order_service else {})}
    scaled = [s for s in testbed.services(lab.settings)]
    try:
        for n in p.pt03_instances:
            lab.check_stop()
            for service in scaled:  # instances and consumers together: a saga scales with its service
                testbed.scale(lab.settings, service, n)
                testbed.scale_consumers(lab.settings, service, n)
            drive = _locust(
                lab, f"PT-03-n{n}", weights=weights, users=p.pt03_users,
                spawn_rate=max(p.pt03_users, 1), seconds=p.pt03_seconds, think_seconds=0.0,
            )  # fmt: skip
            record = measure(lab, "PT-03", f"instances={n}", {"instances": n, "consumers": n, "users": p.pt03_users, "scaled": scaled}, drive, p.pt03_seconds)
            _attach_orders(lab, record)
            steps.append(record)
    finally:
        for service in scaled:
            testbed.scale(lab.settings, service, 1)
            testbed.scale_consumers(lab.settings, service, 1)
    return steps


def pt04(lab: Lab) -> list[dict[str, Any]]:
    p = lab.profile
    steps = []
    original = lab.settings
    try:
        for partitions in p.pt04_partitions:
            lab.check_stop()
            lab.settings = testbed.set_partitions(lab.settings, partitions, lab.log)
            ceiling = ceilings.kafka_producer(lab.settings, partitions, p.kafka_records, lab.raw, lab.stop)
            lab.log(f"  kafka producer on {partitions} partition(s): {ceiling['rate']:,.0f} msg/s")
            if lab.order_service:
                drive = _vegeta(lab, f"PT-04-p{partitions}", "async", p.pt04_rate, p.pt04_seconds)
            else:  # without orders, the product events of a catalog change stand in
                drive = _locust(lab, f"PT-04-p{partitions}", weights=lab.read_weights(), users=20, spawn_rate=20, seconds=p.pt04_seconds)
            record = measure(lab, "PT-04", f"partitions={partitions}", {"partitions": partitions, "rate": p.pt04_rate}, drive, p.pt04_seconds)
            record["kafka_ceiling"] = ceiling
            _attach_orders(lab, record)
            if lab.order_service:
                since = datetime.fromisoformat(record["started_at"])
                done, span = asyncio.run(orders.completed_per_second(lab.settings, since))
                record["processed"] = {"orders": done, "seconds": span, "rate": done / span if span else None}
            steps.append(record)
    finally:
        if not lab.stop.is_set():
            lab.settings = testbed.set_partitions(original, testbed.DEFAULT_PARTITIONS, lab.log)
    return steps


def pt05(lab: Lab) -> list[dict[str, Any]]:
    p = lab.profile
    weights = {**lab.read_weights(), **({"place_order": 1} if lab.order_service else {})}
    phases = [
        (p.pt05_base_seconds, p.pt05_base_users),
        (p.pt05_peak_seconds, p.pt05_peak_users),
        (p.pt05_recovery_seconds, p.pt05_base_users),
    ]
    total = sum(s for s, _ in phases)
    drive = _locust(
        lab, "PT-05", weights=weights, phases=phases, spawn_rate=max(p.pt05_peak_users, 1),
        think_seconds=p.pt05_think,
    )  # fmt: skip
    record = measure(lab, "PT-05", "burst", {"phases": phases, "think_s": p.pt05_think}, drive, total)
    _attach_orders(lab, record)
    return [record]


def pt06(lab: Lab) -> list[dict[str, Any]]:
    """The same async order load (closed loop, fixed users, no think time, same length) with
    tracing off and at the configured ratio, repeated with the order alternating (off, on; on,
    off; ...) so drift on the shared machine hits both alike. Every step starts from freshly
    restarted service processes, whichever the setting."""
    p = lab.profile
    ratio = lab.settings.tracing_sample_ratio
    arms: list[tuple[str, float | None]] = [("off", None), (f"{ratio:g}", ratio)]
    steps = []
    try:
        for repeat in range(1, p.pt06_repeats + 1):
            for label, arm in arms if repeat % 2 else arms[::-1]:
                lab.check_stop()
                lab.settings = testbed.set_tracing(lab.settings, arm, lab.log)
                name = f"PT-06-{'off' if arm is None else 'on'}-r{repeat}"
                drive = _locust(
                    lab, name, weights={"place_order": 1}, users=p.pt06_users,
                    spawn_rate=max(p.pt06_users, 1), seconds=p.pt06_seconds, think_seconds=0.0, mode="async",
                )  # fmt: skip
                params = {"tracing": label, "ratio": arm, "repeat": repeat, "users": p.pt06_users, "mode": "async"}
                record = measure(lab, "PT-06", f"tracing {label} #{repeat}", params, drive, p.pt06_seconds)
                _attach_orders(lab, record)
                steps.append(record)
    finally:  # the other tests measure the services without tracing, and without Zipkin
        lab.settings = testbed.set_tracing(lab.settings, None, lab.log)
        testbed.stop_zipkin(lab.settings)
    return steps


SCENARIOS: dict[str, Callable[[Lab], list[dict[str, Any]]]] = {
    "PT-01": pt01, "PT-02": pt02, "PT-03": pt03, "PT-04": pt04, "PT-05": pt05, "PT-06": pt06,
}  # fmt: skip
NEEDS_ORDERS = {"PT-02", "PT-06"}


def run_test(lab: Lab, test: str) -> dict[str, Any]:
    assert lab.workload is not None
    result: dict[str, Any] = {"test": test, "title": TITLES[test], "steps": []}
    if test in NEEDS_ORDERS and not lab.order_service:
        result["skipped"] = "the order service is not part of this build yet"
        lab.log(f"{test}: skipped ({result['skipped']})")
        return result
    lab.log(f"== {test} {TITLES[test]}")
    products = lab.workload.lab_products
    restock_scarce(lab.settings, lab.workload)
    before = asyncio.run(audit.snapshot(lab.settings, products, lab.order_service))
    since = datetime.now(UTC)
    lab.steps = result["steps"]
    try:
        SCENARIOS[test](lab)
    except Interrupted:
        result["interrupted"] = True
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
        lab.log(f"  !! {test} failed: {result['error']}")
    if lab.stop.is_set():
        result["interrupted"] = True
        result["audit"] = {"passed": None, "skipped": "interrupted: in-flight work was not awaited"}
        return result
    drained = wait_drained(lab, lab.profile.drain_timeout)
    after = asyncio.run(audit.collect(lab.settings, products, since, lab.order_service))
    result["audit"] = audit.check(before, after) | {"drained_seconds": drained}
    verdict = "passed" if result["audit"]["passed"] else "FAILED"
    lab.log(f"  audit {verdict}: " + "; ".join(
        f"{name} {'ok' if c['passed'] else 'FAILED'}" for name, c in result["audit"]["checks"].items()
    ))  # fmt: skip
    return result


# --- results on disk ---------------------------------------------------------------------------------
def versions(settings: Settings) -> dict[str, str]:
    import importlib.metadata as md

    from shopstream_tools.bench import _command_output
    from shopstream_tools.runtime import gateway, kafka_broker, postgres

    kafka_jar = sorted(kafka_broker.LIBS.glob("kafka_2.13-*.jar"))
    return {
        "python": sys.version.split()[0],
        "nginx": _command_output([gateway.nginx_binary(), "-v"]),
        "postgresql": _command_output([str(postgres.bin_dir() / "postgres"), "--version"]),
        "kafka": kafka_jar[-1].stem.replace("kafka_2.13-", "") if kafka_jar else "missing",
        "wrk": _command_output(["wrk", "-v"]),
        "pgbench": _command_output([str(postgres.bin_dir() / "pgbench"), "--version"]),
        "locust": md.version("locust"),
        "vegeta": "v12.13.0" if VEGETA.exists() else "missing",
        "hdrhistogram": md.version("hdrhistogram"),
        "matplotlib": md.version("matplotlib"),
    }


def write_samples_csv(path: Path, steps: list[dict[str, Any]]) -> None:
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["step", "t", "process", "cpu_cores", "rss_mb", "pss_mb"])
        for step in steps:
            for s in step.get("samples", []):
                for name, cores in s.get("cpu", {}).items():
                    out.writerow([step["step"], s["t"], name, cores, s.get("rss_mb", {}).get(name, ""), s.get("pss_mb", {}).get(name, "")])
                out.writerow([step["step"], s["t"], "machine", s.get("machine_cores", ""), "", ""])


def write_kafka_csv(path: Path, steps: list[dict[str, Any]]) -> None:
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["step", "t", "kind", "name", "value"])
        for step in steps:
            for s in step.get("samples", []):
                k = s.get("kafka") or {}
                for group, parts in (k.get("lag_partitions") or {}).items():
                    for tp, lag in parts.items():
                        out.writerow([step["step"], s["t"], "lag", f"{group} {tp}", lag])
                for topic, total in (k.get("messages") or {}).items():
                    out.writerow([step["step"], s["t"], "end_offset_sum", topic, total])
                for service, rows in (s.get("backlog") or {}).items():
                    out.writerow([step["step"], s["t"], "outbox_pending", service, rows])


def write_results(lab: Lab, environment: dict[str, Any], summary: dict[str, Any]) -> None:
    (lab.run_dir / "environment.json").write_text(json.dumps(environment, indent=2, default=str))
    (lab.run_dir / "ceilings.json").write_text(json.dumps(lab.ceilings, indent=2, default=str))
    for test, result in lab.tests.items():
        (lab.run_dir / f"{test}.json").write_text(json.dumps(result, indent=1, default=str))
        write_samples_csv(lab.run_dir / f"{test}-processes.csv", result.get("steps", []))
        write_kafka_csv(lab.run_dir / f"{test}-kafka.csv", result.get("steps", []))
    (lab.run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))


# --- entry point ---------------------------------------------------------------------------------
def run(
    base: Settings,
    tests: list[str],
    profile: Profile,
    data_dir: Path = testbed.LAB_DATA,
    port_offset: int = testbed.LAB_PORT_OFFSET,
    results_dir: Path = RESULTS_DIR,
    log: Callable[[str], object] = say,
    keep_up: bool = True,
) -> Path:
    """Run the tests; return the run's folder (its report.html, summary.json, charts)."""
    from shopstream_tools.lab import analysis, charts, report

    settings = testbed.lab_settings(base, data_dir, port_offset)
    problem = testbed.port_problem(settings)
    if problem:
        raise CannotStart(problem)
    machine = machine_info()
    rev, dirty = git_revision()
    started = datetime.now(UTC)
    run_dir = results_dir / run_id(started, rev)
    run_dir.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    lab = Lab(settings, profile, run_dir, stop, log)
    t0 = time.monotonic()

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        log("\n^C: stopping after the current load; keeping what was measured (^C again to abort)")

    previous = signal.signal(signal.SIGINT, on_sigint) if threading.current_thread() is threading.main_thread() else None
    try:
        log(f"lab run {run_dir.name}: profile {profile.name}, tests {' '.join(tests)}")
        log(f"lab platform: {settings.data_path} (gateway :{settings.gateway_port}, PostgreSQL :{settings.postgres_port}, Kafka :{settings.kafka_port})")
        testbed.up(settings, log=lambda line: log("  " + line))
        if testbed.zipkin_running(settings):  # a run cut short in PT-06 left the services tracing
            settings = testbed.set_tracing(settings, None, log)
            testbed.stop_zipkin(settings)
        lab.settings = settings = testbed.set_partitions(settings, testbed.DEFAULT_PARTITIONS, log)
        for service in testbed.services(settings):
            testbed.scale(settings, service, 1)
            testbed.scale_consumers(settings, service, 1)
        lab.order_service = "order" in testbed.services(settings)
        log(f"preparing the workload (catalog of {profile.catalog:,} products, lab products)")
        lab.workload = prepare(settings, lab.raw, profile.catalog, order_service=lab.order_service)
        # a fresh catalog's events (100k ProductCreated) must be through before anything is measured
        drained = wait_drained(lab, max(profile.drain_timeout, 300))
        log(f"nothing in flight ({drained}s)" if drained is not None else "still busy: measuring anyway")
        lab.pgbench_products = asyncio.run(ceilings.prepare_pgbench(settings))
        lab.pgbench_scripts = ceilings.write_pgbench_scripts(lab.raw / "pgbench")
        measure_ceilings(lab, 1)
        for test in tests:
            if stop.is_set():
                break
            lab.tests[test] = run_test(lab, test)
        if profile.ceiling_rounds > 1 and not stop.is_set():
            measure_ceilings(lab, 2)
    except Interrupted:
        pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        with_catch(lambda: asyncio.run(ceilings.drop_pgbench(settings)))
        environment = {
            "run_id": run_dir.name,
            "started_at": started.isoformat(),
            "seconds": round(time.monotonic() - t0, 1),
            "interrupted": stop.is_set(),
            "profile": asdict(profile),
            "tests": tests,
            "git_revision": rev,
            "git_dirty": dirty,
            "machine": machine,
            "load_average_after": [round(x, 2) for x in __import__("os").getloadavg()],
            "versions": with_catch(lambda: versions(settings)) or {},
            "settings": settings.as_env(),
            "order_service": lab.order_service,
        }
        summary = analysis.summarize(lab.ceilings, lab.tests, machine.get("cores") or 2)
        write_results(lab, environment, summary)
        made = charts.draw_all(summary, lab.tests, run_dir / "charts")
        report.write(run_dir / "report.html", environment, lab.ceilings, summary, lab.tests, made)
        if not keep_up:
            testbed.down(settings)
    log(f"\nresults: {run_dir.relative_to(PROJECT_ROOT) if run_dir.is_relative_to(PROJECT_ROOT) else run_dir}")
    log(f"report:  {run_dir / 'report.html'}")
    return run_dir


def with_catch(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception as exc:
        print(f"  (ignored: {type(exc).__name__}: {exc})", file=sys.stderr)
        return None


def open_report(path: Path) -> None:  # pragma: no cover - a convenience for people
    subprocess.run(["xdg-open", str(path)], check=False)
