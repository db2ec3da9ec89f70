"""The perf-check gate's own logic: stages, the comparison with the baseline, profile shares."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shopstream_tools.perf import gate, load, measure, profile


@pytest.mark.parametrize(
    ("process", "stage"),
    [("order-1", "order http"), ("product-3", "product http"), ("order-relay", "order relay"),
     ("product-consume", "product consumers"), ("order-consume-2", "order consumers"),
     ("kafka", "kafka"), ("postgres", "postgres"), ("gateway", "gateway"),
     ("zipkin", "zipkin"), ("prometheus", "other")],
)  # fmt: skip
def test_every_process_is_costed_in_its_stage(process: str, stage: str) -> None:
    assert measure.stage_of(process) == stage


def _result(order_ms: float, read_ms: float, failures: int = 0, wal: float = 100.0,
            unit: float | None = None) -> dict:  # fmt: skip
    def step(ms: float) -> dict:
        return {"cpu_ms_per_op": ms, "failures": failures, "drain_seconds": 0.5,
                "wal_per_op": {"wal_records": wal}, "machine_ms_per_unit": unit}  # fmt: skip

    return {"orders": step(order_ms), "reads": step(read_ms), "plan": {}}


def test_the_gate_fails_beyond_a_quarter_more_cpu_per_operation(tmp_path: Path, monkeypatch) -> None:
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps({"cpu_ms_per_order": 10.0, "cpu_ms_per_read": 1.0}))
    monkeypatch.setattr(gate, "BASELINE", baseline)
    assert gate.compare(_result(12.4, 1.2)) == 0
    assert gate.compare(_result(12.6, 1.0)) == 1, "orders 1.26x"
    assert gate.compare(_result(10.0, 1.3)) == 1, "reads 1.3x"
    assert gate.compare(_result(5.0, 0.5, failures=3)) == 1, "failed requests fail the gate"


def test_the_gate_fails_beyond_a_quarter_more_wal_per_order(tmp_path: Path, monkeypatch) -> None:
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps({"cpu_ms_per_order": 10.0, "cpu_ms_per_read": 1.0,
                                    "wal_records_per_order": 100.0}))  # fmt: skip
    monkeypatch.setattr(gate, "BASELINE", baseline)
    assert gate.compare(_result(10.0, 1.0, wal=124.0)) == 0
    assert gate.compare(_result(10.0, 1.0, wal=130.0)) == 1, "WAL records 1.3x"


def test_cpu_is_compared_at_the_baselines_machine_speed(tmp_path: Path, monkeypatch) -> None:
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps(gate.baseline_of(_result(10.0, 1.0, unit=0.30))))
    monkeypatch.setattr(gate, "BASELINE", baseline)
    assert gate.compare(_result(13.0, 1.3, unit=0.36)) == 0, "1.3x raw, the probe 1.2x slower"
    assert gate.compare(_result(14.0, 1.0, unit=0.36)) == 1, "1.4x raw: more than the speed explains"
    assert gate.compare(_result(13.0, 1.0, unit=0.30)) == 1, "1.3x at the same speed"
    assert gate.compare(_result(11.0, 1.0, unit=0.24)) == 1, "a faster machine hides nothing"
    assert gate.compare(_result(13.0, 1.0)) == 1, "no probe in the run: compared raw"


def test_several_runs_are_judged_by_their_medians_at_the_median_machine_speed() -> None:
    runs = [_result(10.0, 1.0, unit=0.30), _result(14.0, 1.2, unit=0.40),
            _result(12.0, 2.0, unit=0.30, failures=1)]  # fmt: skip
    merged = gate.median_result(runs)
    slower = (0.40 / 0.30) ** gate.SPEED_ELASTICITY  # the second run's machine, against the median
    # at the median speed 0.30: orders 10.0, 14.0 / slower (11.78), 12.0
    assert merged["orders"]["cpu_ms_per_op"] == pytest.approx(14.0 / slower, abs=0.001)
    assert merged["reads"]["cpu_ms_per_op"] == pytest.approx(1.2 / slower, abs=0.001), "1.0, 1.01, 2.0"
    assert merged["orders"]["failures"] == 1 and merged["orders"]["machine_ms_per_unit"] == 0.30
    assert gate.median_result(runs[:1]) is runs[0]


def test_wal_per_operation_is_the_counters_difference_over_the_operations() -> None:
    before = dict.fromkeys(measure.WAL_COUNTERS, 1000.0)
    after = {k: 1000.0 + 300.0 for k in measure.WAL_COUNTERS}
    assert measure.wal_per_op(before, after, 3) == dict.fromkeys(measure.WAL_COUNTERS, 100.0)


def test_a_baseline_is_written_from_a_run(tmp_path: Path) -> None:
    baseline = gate.baseline_of(_result(9.5, 0.9, wal=97.8))
    assert baseline["cpu_ms_per_order"] == 9.5 and baseline["wal_records_per_order"] == 97.8


def test_a_profile_summary_gives_each_function_its_share_of_the_samples() -> None:
    stacks = "\n".join([
        "main (cli.py:1);run (loop.py:2);execute (connection.py:3) 60",
        "main (cli.py:1);run (loop.py:2);encode (events.py:4) 30",
        "main (cli.py:1);idle (loop.py:9) 10",
    ])  # fmt: skip
    summary = profile.summarize("order-1", stacks)
    assert "100 samples" in summary
    assert "| 60.0% | `execute (connection.py)`" in summary
    assert "| 30.0% | `encode (events.py)`" in summary
    assert "`run (loop.py)`" in summary and "90.0%" in summary


def test_a_flight_recording_becomes_collapsed_stacks_root_first() -> None:
    from shopstream_tools.perf import jvm_profile

    def frame(owner: str, name: str) -> dict[str, object]:
        return {"method": {"type": {"name": owner}, "name": name}}

    handler = frame("kafka/server/KafkaRequestHandler", "run")
    produce = frame("kafka/server/KafkaApis", "handleProduceRequest")
    fetch = frame("kafka/server/KafkaApis", "handleFetchRequest")
    sample = {"values": {"stackTrace": {"frames": [produce, handler]}}}  # leaf first, as JFR has it
    document = {"recording": {"events": [
        sample, sample, {"values": {"stackTrace": {"frames": [fetch, handler]}}},
        {"values": {"stackTrace": None}},
    ]}}  # fmt: skip

    text = jvm_profile.to_collapsed(document)

    assert text.splitlines() == [
        "KafkaRequestHandler.run;KafkaApis.handleProduceRequest 2",
        "KafkaRequestHandler.run;KafkaApis.handleFetchRequest 1",
    ]
    summary = profile.summarize("kafka", text)
    assert "66.7% | `KafkaApis.handleProduceRequest`" in summary


WALDUMP = """\
rmgr: Heap        len (rec/tot):     59/   659, tx:       9001, lsn: 1/72000028, prev 1/71FFFFD0, desc: INSERT off 3 flags 0x00, blkref #0: rel 1663/16384/16390 blk 12
rmgr: Btree       len (rec/tot):     64/  8256, tx:       9001, lsn: 1/720002C0, prev 1/72000028, desc: INSERT_LEAF off 5, blkref #0: rel 1663/16384/16395 blk 3 FPW
rmgr: Heap        len (rec/tot):     54/    54, tx:       9002, lsn: 1/72002300, prev 1/720002C0, desc: DELETE off 3 flags 0x00 KEYS_UPDATED , blkref #0: rel 1663/16384/16390 blk 12
rmgr: Transaction len (rec/tot):     34/    34, tx:       9002, lsn: 1/72002338, prev 1/72002300, desc: COMMIT 2026-12-05 22:00:00.000000 UTC
pg_waldump: error: error in WAL record at 1/72002360: invalid record length
"""


def test_the_wal_profile_counts_records_bytes_and_full_pages_by_relation() -> None:
    from shopstream_tools.perf import wal_profile

    names = {"16390": "order.outbox", "16395": "order.outbox_pkey"}
    wal = wal_profile.tally(WALDUMP.splitlines(), names)
    assert wal.records == {"order.outbox": 2, "order.outbox_pkey": 1, "-": 1}
    assert wal.bytes["order.outbox"] == 659 + 54 and wal.full_pages == {"order.outbox_pkey": 1}
    assert wal.kinds[("order.outbox", "Heap/DELETE")] == 1
    md = wal_profile.table(wal, operations=2)
    assert "| `order.outbox` | 1.00 | 356 | 0.00 | Heap/INSERT 0.50, Heap/DELETE 0.50 |" in md
    assert "| **total** | **2.00** |" in md


def test_saga_latency_reads_ended_and_stages_from_the_same_async_orders() -> None:
    def order(mode: str, offsets_ms: dict[str, int]) -> dict:
        at = "2026-12-07T00:00:00.{:03d}000+00:00"
        return {"mode": mode, "outcome": "confirmed", "published_at": None,
                "timestamps": {k: at.format(v) for k, v in offsets_ms.items()}}  # fmt: skip

    stamps = {"accepted": 0, "stock_reserved": 40, "payment_authorized": 100, "confirmed": 120}
    rows = [order("async", stamps), order("async", {**stamps, "confirmed": 300}),
            order("async", {"accepted": 0, "stock_reserved": 30}),  # still in flight: no end
            order("sync", {"accepted": 0, "confirmed": 900})]  # fmt: skip
    latency = load.saga_latency(rows)
    assert latency["ended"]["n"] == 2, "only the async orders that ended"
    assert latency["ended"]["p50"] == pytest.approx(120, rel=0.01)
    assert latency["ended"]["p99"] == pytest.approx(300, rel=0.01)
    assert latency["stages"]["pay"]["p50"] == pytest.approx(60, rel=0.01)
    assert latency["stages"]["confirm"]["p99"] == pytest.approx(200, rel=0.01)
