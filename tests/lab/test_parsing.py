"""What the lab reads from its tools: vegeta's results, Locust's JSON, ProducerPerformance's
summary, the orders' stage timestamps; and the lab platform's settings."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from shopstream.config import Settings
from shopstream_tools.lab import ceilings, orders, testbed
from shopstream_tools.lab.hdr import Latencies
from shopstream_tools.lab.locust_load import summarize_locust
from shopstream_tools.lab.vegeta_load import parse_vegeta_csv, summarize_vegeta, vegeta_target


def csv_row(seq: int, sent_ns: int, latency_ns: int, status: int = 202, error: str = "") -> str:
    return f"{sent_ns},{status},{latency_ns},10,20,{error},Ym9keQ==,,{seq},POST,http://x/orders,"


def test_vegeta_csv_rows_become_hits() -> None:
    hits = parse_vegeta_csv([csv_row(0, 1000, 5_000_000), "", csv_row(1, 2000, 6_000_000, 500, "boom")])
    assert [(h.seq, h.status, h.error) for h in hits] == [(0, 202, ""), (1, 500, "boom")]


def test_open_loop_summary_counts_from_the_schedule() -> None:
    start, rate = 10**15, 10.0
    lines = [csv_row(i, start + i * 100_000_000, 2_000_000) for i in range(10)]
    # request 10 was due at 1.0 s but left at 1.5 s: 500 ms late
    lines.append(csv_row(10, start + 1_500_000_000, 2_000_000))
    lines.append(csv_row(11, start + 1_600_000_000, 1_000_000, 503, "503 Service Unavailable"))
    lines.append(csv_row(12, start + 1_700_000_000, 1_000_000, 402, "402 Payment Required"))
    s = summarize_vegeta(parse_vegeta_csv(lines), rate, 1.3)
    assert s["requests"] == 13
    assert s["failures"] == 1  # the 503; a declined payment is an answer, not a failure
    assert s["statuses"] == {"202": 11, "503": 1, "402": 1}
    assert s["latency_ms"]["max"] == pytest.approx(502, rel=1e-2)
    assert s["uncorrected_latency_ms"]["max"] == pytest.approx(2, rel=1e-2)
    assert Latencies.decode(s["hdr"]).count == 13
    assert [e["t"] for e in s["timeline"]] == [1, 2]
    assert s["timeline"][1]["failures"] == 1


def test_vegeta_target_is_its_json_format() -> None:
    line = json.loads(vegeta_target("POST", "http://h/orders", b'{"a":1}', {"Idempotency-Key": "k"}))
    assert line == {
        "method": "POST",
        "url": "http://h/orders",
        "body": base64.b64encode(b'{"a":1}').decode(),
        "header": {"Idempotency-Key": ["k"]},
    }


def test_locust_results_are_merged_per_name_and_overall() -> None:
    a, b = Latencies.of_ms([1.0, 2.0, 3.0]), Latencies.of_ms([10.0])
    raw = {
        "seconds": 2.0,
        "requests": {
            "GET /products/{id}": {"count": 3, "failures": 0, "statuses": {"200": 3}, "hdr": a.encode()},
            "POST /orders (async)": {"count": 1, "failures": 1, "statuses": {"503": 1}, "hdr": b.encode()},
        },
        "timeline": [{"t": 1.0, "requests": 4, "failures": 1}],
        "started_wall": 5.0,
    }
    s = summarize_locust(raw)
    assert s["requests"] == 4 and s["failures"] == 1
    assert s["rate"] == 2.0 and s["ok_rate"] == 1.5
    assert s["latency_ms"]["max"] == pytest.approx(10, rel=1e-3)
    assert s["per_name"]["GET /products/{id}"]["latency_ms"]["p50"] == pytest.approx(2, rel=1e-3)
    assert s["started_wall"] == 5.0


PERF_OUTPUT = """\
9521 records sent, 1904.2 records/sec (1.27 MB/sec), 1012.3 ms avg latency, 1630.0 ms max latency.
200000 records sent, 98765.4 records/sec (65.93 MB/sec), 250.12 ms avg latency, 640.00 ms max latency, 230 ms 50th, 450 ms 95th, 600 ms 99th, 630 ms 99.9th.
"""


def test_producer_performance_summary_line() -> None:
    parsed = ceilings.parse_producer_perf(PERF_OUTPUT)
    assert parsed["records"] == 200000
    assert parsed["rate"] == 98765.4
    assert parsed["latency_ms"]["p99"] == 600
    with pytest.raises(ValueError):
        ceilings.parse_producer_perf("nothing")


def test_order_path_script_is_one_order_through_the_saga() -> None:
    script = ceilings.order_path_script()
    assert script.count("BEGIN;") == 4
    for statement in ("order_events", "UPDATE lab_ceiling.products", "reservations", "outbox"):
        assert statement in script
    assert "processed_events" not in script, "neither saga writes a row per applied event"
    assert "public." not in script  # only scratch tables are written


def test_stage_breakdown_of_orders() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)

    def at(ms: float) -> str:
        return (t0 + timedelta(milliseconds=ms)).isoformat()

    rows = [
        {"mode": "async", "outcome": "confirmed", "published_at": t0 + timedelta(milliseconds=5),
         "timestamps": {"accepted": at(0), "stock_reserved": at(25), "payment_authorized": at(50),
                        "confirmed": at(60)}},
        {"mode": "async", "outcome": "stock_rejected", "published_at": None,
         "timestamps": {"accepted": at(0), "stock_rejected": at(30), "rejected": at(40)}},
    ]  # fmt: skip
    b = orders.breakdown(rows)
    assert b["orders"] == 2
    assert b["outcomes"] == {"confirmed": 1, "stock_rejected": 1}
    assert b["accepted_to_confirmed_ms"]["count"] == 1
    assert b["accepted_to_confirmed_ms"]["p50"] == pytest.approx(60, rel=1e-3)
    assert b["end_to_end_ms"]["count"] == 2
    stages = b["stages_ms"]
    assert stages["publish"]["p50"] == pytest.approx(5, rel=1e-3)
    assert stages["reserve"]["p50"] == pytest.approx(20, rel=1e-3)
    assert stages["pay"]["p50"] == pytest.approx(25, rel=1e-3)
    assert stages["confirm"]["p50"] == pytest.approx(10, rel=1e-3)


def test_the_lab_platform_has_its_own_ports_and_folder(tmp_path: object) -> None:
    base = Settings(gateway_port=9999, prometheus_port=9090)
    lab = testbed.lab_settings(base, testbed.LAB_DATA, testbed.LAB_PORT_OFFSET, partitions=3)
    assert lab.gateway_port == 16080  # from the defaults, not the developer's override
    assert lab.postgres_port == 23432
    assert lab.kafka_port == 27092
    # Prometheus scrapes the lab; the exporters, the console and tracing stay off
    assert lab.prometheus_port == 17090 and 17090 in testbed.ports(lab)
    assert lab.zipkin_port == 0 and lab.node_exporter_port == 0 and lab.console_port == 0
    # ports off by default stay off: no TLS listener and no redirect of the load generators' HTTP
    assert lab.gateway_tls_port == 0 and lab.gateway_https_redirect_port == 0
    traced = testbed.with_tracing(lab, 0.1)
    assert traced.zipkin_port == 17411 and traced.tracing_sample_ratio == 0.1
    assert testbed.tracing_ratio(lab) is None and testbed.tracing_ratio(traced) == 0.1
    assert testbed.with_tracing(traced, None).zipkin_port == 0
    assert lab.data_path == testbed.LAB_DATA
    assert lab.topics()["order-events"] == 3
    assert lab.topics()["dead-letter"] == 1
    assert lab.gateway_rate_limit >= 1_000_000
    assert 16080 in testbed.ports(lab) and 23432 in testbed.ports(lab)
    # below Linux's ephemeral range: an outgoing connection cannot take one before the bind
    assert max(testbed.ports(lab)) < 32768


def test_a_port_held_by_another_program_is_named() -> None:
    import socket

    base = Settings()
    data = testbed.LAB_DATA.parent / "data-test-lab-ports"
    with socket.socket() as sock:
        for offset in range(43013, 45000, 97):  # the lab's gateway port would be 8080 + offset
            try:
                sock.bind(("127.0.0.1", base.gateway_port + offset))
                break
            except OSError:
                continue
        else:
            pytest.skip("no free port to hold")
        sock.listen()
        problem = testbed.port_problem(testbed.lab_settings(base, data, offset))
        assert f"port {base.gateway_port + offset} is taken" in problem
        with pytest.raises(RuntimeError, match="no free set of ports"):
            testbed.free_offset(base, data, [offset])
