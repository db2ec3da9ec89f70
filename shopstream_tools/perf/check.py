"""``shopstream perf-check`` (``make perf-check``): the regression gate of the hot paths.

On its own platform (``data-perf/``, ports +12000), after a minute of orders that warms the Kafka
broker's JIT up (not measured), it runs a fixed open-loop load of async orders and then a fixed
open-loop read mix, and measures **CPU per order** and **CPU per read**: the ticks
every platform process spent (services, relays, consumers, Kafka, PostgreSQL, gateway) from the
first request until the work is drained, divided by the operations done, beside the machine's
speed measured throughout each step (``speed``). ``gate`` compares them, at the baseline's speed,
with the committed baseline (``performance-tests/perf-baseline.json``) and fails beyond +25%;
``--runs N`` judges the medians of N runs.
``--profile DIR`` also samples every Python process of the pipeline with py-spy during the order
step (collapsed stacks per process, and a table of where the CPU goes) and during the read step
(the same in ``DIR/reads/``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shopstream.config import PROJECT_ROOT, Settings
from shopstream_tools.perf import gate, measure, speed
from shopstream_tools.perf.load import open_loop, order_targets, read_targets, saga_latency_ms

PERF_DATA = PROJECT_ROOT / "data-perf"
PERF_OFFSET = 12000
BENCH_LOCK = "/tmp/shopstream-bench.lock"
CATALOG = 20_000


@dataclass(frozen=True)
class Plan:
    order_rate: float = 100.0
    order_seconds: float = 30.0
    read_rate: float = 400.0
    read_seconds: float = 20.0
    idle_seconds: float = 10.0
    warmup_rate: float = 150.0
    warmup_seconds: float = 60.0
    """Orders before anything is measured, not counted. A fresh Kafka broker spends half its CPU
    in the JVM's JIT compilers in its first minute of load, which a broker that has run for a
    while no longer does: measured at 100 orders/s, the broker's CPU per order was 4.9 ms cold
    (2.6 of it the compiler threads), 2.9 ms after 3,000 orders (1.3), 1.7 ms after 9,000 (0.4)."""
    drain_timeout: float = 120.0
    tracing_ratio: float | None = None
    """None: tracing off, as the baseline. A ratio: the services traced at it, Zipkin running and
    costed as a stage of its own; such a run is reported, never compared with the baseline."""


def perf_settings(base: Settings | None = None) -> Settings:
    from shopstream_tools.lab.testbed import lab_settings

    return lab_settings(base or Settings.from_env(), PERF_DATA, PERF_OFFSET)


def step(settings: Settings, folder: Path, name: str, lines: list[str], rate: float,
         seconds: float, plan: Plan, profile: Path | None = None) -> dict[str, Any]:  # fmt: skip
    """Run one load, wait until drained, and cost it per operation."""
    from shopstream_tools.lab import testbed
    from shopstream_tools.perf import profile as profiler
    from shopstream_tools.perf import wal_profile

    groups = testbed.process_groups(settings)
    idle = measure.idle_rate(groups, plan.idle_seconds)
    wall_started = time.time()
    recorder = profiler.start(settings, groups, folder / "profile" if profile else None, seconds)
    wal_before = measure.wal_counters(settings)
    wal_from = wal_profile.insert_position(settings) if profile is not None else None
    probe = speed.SpeedProbe().start()
    before = measure.snapshot(groups)
    load = open_loop(folder, name, lines, rate, seconds)
    drained = measure.wait_drained(settings, plan.drain_timeout)
    after = measure.snapshot(groups)
    probe.stop()
    wal_after = measure.wal_counters(settings)
    if recorder is not None:
        recorder.finish(profile)  # type: ignore[arg-type]
    statuses = load.get("statuses", {})
    done = sum(n for s, n in statuses.items() if s.startswith("2"))
    if profile is not None and wal_from is not None:
        wal_profile.write(settings, wal_from, done, profile / "wal.md")
    spent = measure.cpu_ms(before, after)
    wall = after.at - before.at
    record: dict[str, Any] = {
        "rate": rate,
        "seconds": seconds,
        "operations": done,
        "failures": load.get("failures", 0),
        "statuses": statuses,
        "drain_seconds": drained,
        "wall_seconds": round(wall, 2),
        "latency_ms": {k: load.get("latency_ms", {}).get(k) for k in ("p50", "p99")},
        "cpu_ms_per_op": round(sum(spent.values()) / max(done, 1), 3),
        "machine_ms_per_unit": probe.ms_per_unit,
        "wal_per_op": measure.wal_per_op(wal_before, wal_after, done),
        "cpu_ms_per_op_by_process": {
            n: round(v / max(done, 1), 3) for n, v in sorted(spent.items())
        },
        "cpu_ms_per_op_by_stage": {
            n: round(v / max(done, 1), 3) for n, v in sorted(measure.by_stage(spent).items())
        },
        "idle_cores_by_process": {n: round(v / 1000, 4) for n, v in sorted(idle.items())},
        "cores_above_idle_by_stage": {
            n: round(
                v / wall / 1000
                - sum(idle.get(p, 0) for p in groups if measure.stage_of(p) == n) / 1000,
                3,
            )
            for n, v in sorted(measure.by_stage(spent).items())
        },
    }
    if name == "orders":
        latency = saga_latency_ms(settings, wall_started)
        record["accepted_to_ended_ms"] = latency["ended"]
        record["stages_ms"] = latency["stages"]
    return record


def run(plan: Plan, profile: Path | None, update_baseline: bool, keep_up: bool, runs: int = 1) -> int:
    """Measure ``runs`` times, compare the medians with the baseline (or record them as it);
    0 when within it."""
    results = [measure_once(plan, profile, keep_up and n == runs - 1) for n in range(runs)]
    result = gate.median_result(results)
    if runs > 1:
        print(f"medians of {runs} runs: CPU per operation (at the median machine speed), WAL records;"
              " latency and the rest from the middle run")  # fmt: skip
        print(report(result))
    if plan.tracing_ratio is not None:
        print(f"tracing at ratio {plan.tracing_ratio:g}: not compared with the baseline")
        return 1 if any(result[n]["failures"] for n in ("orders", "reads")) else 0
    if update_baseline:
        gate.BASELINE.write_text(json.dumps(gate.baseline_of(result), indent=2) + "\n")
        print(f"baseline written to {gate.BASELINE.relative_to(PROJECT_ROOT)}")
        return 0
    return gate.compare(result)


def measure_once(plan: Plan, profile: Path | None, keep_up: bool) -> dict[str, Any]:
    """Start the perf platform afresh, warm it up, measure both steps; print and keep the result."""
    from shopstream_tools.lab import testbed, workload

    settings = perf_settings()
    folder = PERF_DATA / "results"
    folder.mkdir(parents=True, exist_ok=True)
    testbed.down(settings)  # processes left up by --keep-up run the code of their start
    testbed.up(settings, log=lambda line: None)
    settings = testbed.set_partitions(settings, testbed.DEFAULT_PARTITIONS, lambda line: None)
    if plan.tracing_ratio is not None:
        settings = testbed.set_tracing(settings, plan.tracing_ratio, lambda line: None)
    try:
        work = workload.prepare(settings, folder, CATALOG)
        gateway = f"http://127.0.0.1:{settings.gateway_port}"
        windows = json.loads(work.path.read_text())["windows"]
        if plan.warmup_seconds > 0:
            warm = int(plan.warmup_rate * plan.warmup_seconds) + 10
            open_loop(folder, "warmup", order_targets(gateway, work.order_products, work.customers,
                                                    warm, work.tokens),
                    plan.warmup_rate, plan.warmup_seconds)  # fmt: skip
            measure.wait_drained(settings, plan.drain_timeout)
        count = int(plan.order_rate * plan.order_seconds * 1.05) + 10
        orders = step(settings, folder, "orders",
                      order_targets(gateway, work.order_products, work.customers, count, work.tokens),
                      plan.order_rate, plan.order_seconds, plan, profile)  # fmt: skip
        count = int(plan.read_rate * plan.read_seconds * 1.05) + 10
        reads = step(settings, folder, "reads", read_targets(gateway, work.products, windows, count),
                     plan.read_rate, plan.read_seconds, plan,
                     profile / "reads" if profile is not None else None)  # fmt: skip
    finally:
        if not keep_up:
            testbed.down(settings)
    result = {"plan": plan.__dict__, "orders": orders, "reads": reads}
    (folder / "perf-check.json").write_text(json.dumps(result, indent=2))
    if profile is not None:
        (profile / "perf-check.json").write_text(json.dumps(result, indent=2))
    print(report(result))
    return result


def report(result: dict[str, Any]) -> str:
    lines = []
    for name in ("orders", "reads"):
        r = result[name]
        lines.append(
            f"{name}: {r['operations']} ok at {r['rate']:g}/s for {r['seconds']:g}s, "
            f"{r['failures']} failures, drained in {r['drain_seconds']}s, p50 {r['latency_ms']['p50']} ms, "
            f"p99 {r['latency_ms']['p99']} ms; CPU {r['cpu_ms_per_op']:.2f} ms per operation"
        )
        if "accepted_to_ended_ms" in r:
            lines.append(f"  accepted -> ended: {r['accepted_to_ended_ms']}")
        if r.get("stages_ms"):
            stages = ", ".join(f"{k} {v['p50']:g}/{v['p99']:g}" for k, v in r["stages_ms"].items())
            lines.append(f"  stages p50/p99 ms: {stages}")
        if r.get("machine_ms_per_unit"):
            lines.append(f"  machine: {r['machine_ms_per_unit']:.3f} ms of CPU per probe unit")
        if "wal_per_op" in r:
            wal = r["wal_per_op"]
            lines.append(f"  PostgreSQL WAL per operation: {wal['wal_records']:g} records,"
                         f" {wal['wal_bytes']:g} bytes, {wal['wal_fpi']:g} full pages,"
                         f" {wal['wal_sync']:g} flushes")  # fmt: skip
        for stage, ms in r["cpu_ms_per_op_by_stage"].items():
            above = r["cores_above_idle_by_stage"].get(stage, 0)
            lines.append(f"  {stage:16s} {ms:7.3f} ms/op   {above:+.3f} cores above idle")
    return "\n".join(lines)
