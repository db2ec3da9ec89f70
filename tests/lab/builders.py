"""Step records shaped like the runner's, for testing analysis, charts and the report without a
platform. Figures follow simple laws (throughput saturating with load, latency growing past it)."""

from __future__ import annotations

from typing import Any

from shopstream_tools.lab.hdr import Latencies


def load(rate: float, p50: float, tool: str = "locust", seconds: float = 10.0, failures: int = 0) -> dict[str, Any]:
    lat = Latencies.of_ms([p50 * f for f in (0.5, 0.8, 1.0, 1.0, 1.2, 1.5, 2.0, 3.0, 5.0, 8.0)] * 20)
    timeline = [
        {"t": float(t), "requests": int(rate), "failures": 0, "p50": p50, "p95": p50 * 3, "p99": p50 * 5}
        for t in range(1, int(seconds) + 1)
    ]
    return {
        "tool": tool,
        "seconds": seconds,
        "requests": int(rate * seconds),
        "failures": failures,
        "rate": rate,
        "ok_rate": rate - failures / seconds,
        "latency_ms": lat.summary(),
        "spectrum_ms": lat.spectrum(),
        "timeline": timeline,
        "started_wall": 1000.0,
        "loadgen": {"tool": tool, "cores": 0.3, "cpu_seconds": 3.0, "wall_seconds": seconds,
                    "saturated": False, "saturation_reason": "", "exit_code": 0, "interrupted": False},
    }  # fmt: skip


def samples(seconds: int = 10, lag: float = 0.0, instances: int = 1) -> list[dict[str, Any]]:
    out = []
    for t in range(1, seconds + 1):
        cpu = {"gateway": 0.05, "postgres": 0.3, "kafka": 0.2, "order-relay": 0.05, "loadgen": 0.3, "lab": 0.05}
        for i in range(1, instances + 1):
            cpu[f"product-{i}"] = 0.6 / instances
            cpu[f"order-{i}"] = 0.3 / instances
        out.append({
            "t": float(t),
            "cpu": cpu,
            "rss_mb": dict.fromkeys(cpu, 80.0),
            "pss_mb": dict.fromkeys(cpu, 60.0),
            "machine_cores": 1.95,
            "backlog": {"product": 0, "order": int(lag / 2)},
            "kafka": {"lag": {"product-saga": lag}, "messages": {"order-events": t * 100},
                      "lag_partitions": {"product-saga": {"order-events/0": lag}}},
        })  # fmt: skip
    return out


def cpu_cores(instances: int = 1) -> dict[str, float]:
    cores = {"gateway": 0.05, "postgres": 0.3, "kafka": 0.2, "order-relay": 0.05, "loadgen": 0.3, "lab": 0.05, "machine": 1.95}
    for i in range(1, instances + 1):
        cores[f"product-{i}"] = 0.6 / instances
        cores[f"order-{i}"] = 0.3 / instances
    return cores


def order_breakdown(e2e: float) -> dict[str, Any]:
    lat = Latencies.of_ms([e2e * f for f in (0.7, 1.0, 1.3, 2.0)] * 10)
    stage = {"count": 40.0, "p50": e2e / 4}
    return {
        "orders": 40, "outcomes": {"confirmed": 38, "payment_declined": 2},
        "end_to_end_ms": lat.summary(), "accepted_to_confirmed_ms": lat.summary(),
        "accepted_to_confirmed_spectrum_ms": lat.spectrum(),
        "stages_ms": {"publish": stage, "reserve": stage, "pay": stage, "confirm": stage},
    }  # fmt: skip


def step(test: str, name: str, params: dict[str, Any], the_load: dict[str, Any], **extra: Any) -> dict[str, Any]:
    instances = int(params.get("instances", 1))
    record = {
        "test": test, "step": name, "params": params, "started_at": "2026-01-01T00:00:00+00:00",
        "sampler_started_wall": 999.0, "load": the_load, "load_seconds": 10.0, "drain_seconds": 1.5,
        "samples": samples(instances=instances, lag=extra.pop("lag", 0.0)),
        "cpu_cores": cpu_cores(instances), "peak_rss_mb": {"product-1": 90.0, "postgres": 200.0},
        "partition_messages": {"order-events": {"0": 100, "1": 120, "2": 80}, "stock-events": {"0": 300}},
    }  # fmt: skip
    record.update(extra)
    return record


AUDIT = {"passed": True, "drained_seconds": 1.0, "checks": {
    "no stock oversold": {"passed": True, "detail": "2 products", "examples": []}}}  # fmt: skip


def ceilings() -> dict[str, list[dict[str, Any]]]:
    def c(name: str, rate: float, unit: str) -> dict[str, Any]:
        return {"name": name, "rate": rate, "unit": unit, "command": name, "round": 1,
                "loadgen": {"cores": 0.9}}  # fmt: skip

    return {
        "nginx-fixed": [c("nginx-fixed", 100_000, "req/s"), c("nginx-fixed", 110_000, "req/s")],
        "pgbench-read-mix": [c("pgbench-read-mix", 30_000, "tx/s")],
        "pgbench-order-path": [c("pgbench-order-path", 800, "orders/s")],
        "kafka-producer": [c("kafka-producer", 90_000, "msg/s")],
    }


def tests() -> dict[str, dict[str, Any]]:
    pt01 = [
        step("PT-01", f"users={u}", {"users": u, "think_s": 0.1}, load(r, p))
        for u, r, p in ((10, 95, 2), (50, 460, 3), (100, 800, 10), (500, 850, 400))
    ]
    pt02 = []
    for users, sync_rate, async_rate in ((100, 60, 300), (500, 62, 420)):
        for mode, rate in (("sync", sync_rate), ("async", async_rate)):
            pt02.append(step("PT-02", f"{mode} users={users}", {"mode": mode, "users": users, "loop": "closed"},
                             load(rate, 50 if mode == "async" else 800), orders=order_breakdown(200)))  # fmt: skip
    for mode in ("sync", "async"):
        pt02.append(step("PT-02", f"{mode} open loop 30/s", {"mode": mode, "rate": 30, "loop": "open"},
                         load(30, 5 if mode == "async" else 60, "vegeta"), orders=order_breakdown(150)))  # fmt: skip
    pt03 = [
        step("PT-03", f"instances={n}", {"instances": n, "users": 100}, load(r, 20))
        for n, r in ((1, 500), (2, 700), (4, 720), (8, 690))
    ]
    pt04 = [
        step("PT-04", f"partitions={p}", {"partitions": p, "rate": 200}, load(200, 8, "vegeta"),
             kafka_ceiling={"rate": 80_000.0 + p}, orders=order_breakdown(100 * (13 - p)),
             processed={"orders": 2000, "seconds": 12.0, "rate": 150.0 + p}, lag=50.0 * (13 - p))
        for p in (1, 3, 6, 12)
    ]
    burst = load(100, 10, seconds=30)
    for e in burst["timeline"]:
        if 10 < e["t"] <= 20:
            e.update(requests=400, p95=300.0)
        elif 20 < e["t"] <= 23:
            e.update(p95=60.0)
    pt05 = [step("PT-05", "burst", {"phases": [[10, 50], [10, 1000], [10, 50]], "think_s": 0.5}, burst, lag=20.0)]
    pt06 = []
    for repeat, (off, on) in enumerate(((200, 180), (220, 190), (180, 171)), start=1):
        for label, ratio, rate in (("off", None, off), ("0.1", 0.1, on)):
            pt06.append(step("PT-06", f"tracing {label} #{repeat}",
                             {"tracing": label, "ratio": ratio, "repeat": repeat, "users": 50, "mode": "async"},
                             load(rate, 20), orders=order_breakdown(100),
                             cpu_cores={**cpu_cores(), **({"zipkin": 0.1} if ratio else {})}))  # fmt: skip
    faults = load(100, 5, seconds=40)
    for e in faults["timeline"]:
        if 10 < e["t"] <= 13:
            e.update(failures=20)
    pt07 = [step("PT-07", "faults", {"users": 50, "window_s": 15}, faults,
                 faults=[{"fault": "order instance killed", "wall": 1010.0, "outcome": "pid 1 killed"},
                         {"fault": "broker stopped 15 s", "wall": 1025.0, "outcome": "pid 2 stopped"}])]  # fmt: skip
    # round robin gives the two product instances 500 requests each, least_conn 600 and 400
    pt03b = [
        step("PT-03b", f"{strategy}, {n} instances", {"instances": n, "strategy": strategy, "users": 100}, load(r, 20),
             instance_requests={**{f"product-{i}": float(c) for i, c in enumerate(spread, 1)}, "order-1": 100.0, "order-2": 100.0})
        for n, strategy, r, spread in ((2, "least_conn", 700, (600, 400)), (2, "round_robin", 690, (500, 500)))
    ]
    # keyed by customer: a busy customer makes order-events' partition 0 hot
    pt04b = [
        step("PT-04b", f"keyed by {strategy}", {"strategy": strategy, "partitions": 3, "rate": 200}, load(200, 8, "vegeta"),
             orders=order_breakdown(100), processed={"orders": 2000, "seconds": 12.0, "rate": 150.0},
             partition_messages={"order-events": dict(zip("012", dist, strict=True)), "payment-events": dict(zip("012", dist, strict=True)),
                                 "stock-events": {"0": 100, "1": 100, "2": 100}},
             key_order={t: {"messages": 300, "keys": 100, "orders": 100, "split": 0, "out_of_order": 0, "kept": True, "examples": []}
                        for t in ("order-events", "stock-events", "payment-events")})
        for strategy, dist in (("order_id", (100, 100, 100)), ("customer_id", (200, 50, 50)))
    ]  # fmt: skip
    return {
        name: {"test": name, "title": name, "steps": s, "audit": AUDIT}
        for name, s in (("PT-01", pt01), ("PT-02", pt02), ("PT-03", pt03), ("PT-03b", pt03b), ("PT-04", pt04),
                        ("PT-04b", pt04b), ("PT-05", pt05), ("PT-06", pt06), ("PT-07", pt07))
    }
