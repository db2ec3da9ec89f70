"""Unit tests of the peers comparison's arithmetic (no platform needed)."""

import pytest

from shopstream_tools.lab import peers, peers_oversell, peers_report

STATS = """Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%
GET,by_id,200,10,12,14,3,90,500,40.0,2.0,12,13,14,15,20,30,40,55,80,90,90
,Aggregated,200,10,12,14,3,90,500,40.0,2.0,12,13,14,15,20,30,40,55,80,90,90
"""


def test_locust_row_reads_the_named_request() -> None:
    row = peers_report.locust_row(STATS, "by_id")
    assert row == {"count": 200.0, "rps": 40.0, "p50_ms": 12.0, "p99_ms": 55.0, "failures": 10.0,
                   "error_pct": 5.0}  # fmt: skip


def test_locust_row_names_a_missing_request() -> None:
    with pytest.raises(ValueError, match="search"):
        peers_report.locust_row(STATS, "search")


def test_ratios_set_a_peer_order_against_shopstreams_sync_order() -> None:
    results = {
        "shopstream": {
            "by_id": {"count": 9, "rps": 100.0, "p99_ms": 10.0},
            "order_sync": {"count": 9, "rps": 50.0, "p99_ms": 0.0},
            "order_sync@500": {"count": 9, "rps": 40.0},
        },
        "oscar": {
            "by_id": {"count": 9, "rps": 25.0, "p99_ms": 40.0},
            "order": {"count": 9, "rps": 10.0, "p99_ms": 5.0},
            "order@500": {"count": 9, "rps": 4.0},
        },
    }
    got = peers_report.ratios(results)
    assert got["oscar"]["by_id"] == {"rps": 0.25, "p99_ms": 4.0}
    assert got["oscar"]["order"] == {"rps": 0.2, "p99_ms": None}
    assert got["oscar"]["order@500"] == {"rps": 0.1}
    assert "| by_id | oscar | 25 | n/a | 40 | n/a | n/a | 0 | yes | 0.25 | n/a |" in (
        peers_report.table(results)
    )


def test_a_row_with_a_failed_request_is_invalid_and_has_no_ratio() -> None:
    results = {
        "shopstream": {"by_id": {"count": 9, "rps": 100.0, "failures": 3.0}},
        "oscar": {
            "by_id": {"count": 9, "rps": 25.0},
            "order": {"count": 9, "rps": 1.0, "failures": 0.0, "flow_failures": 2.0},
        },
    }
    assert peers_report.ratios(results) == {}
    table = peers_report.table(results)
    assert "| by_id | shopstream | 100 | n/a | n/a | n/a | n/a | 3 | **no** |" in table
    assert "| order | oscar | 1.00 | n/a | n/a | n/a | n/a | 0 (+2 in the flow) | **no** |" in table


def test_chart_draws_the_valid_rows(tmp_path) -> None:
    results = {
        "shopstream": {"by_id": {"count": 9, "rps": 100.0, "p99_ms": 2.0, "cpu_ms_per_op": 0.2}},
        "oscar": {"by_id": {"count": 9, "rps": 25.0, "p99_ms": 40.0, "cpu_ms_per_op": 9.0}},
    }
    path = peers_report.chart(results, tmp_path / "peers.png")
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_oversell_verdict() -> None:
    assert peers_oversell.verdict(20, 20, 0)["oversold"] is False
    assert peers_oversell.verdict(20, 21, -1)["oversold"] is True
    assert peers_oversell.verdict(20, 20, -3)["oversold"] is True


def test_small_ratios_keep_their_digits() -> None:
    assert peers_report._fmt(0.00048) == "0.00048"
    assert peers_report._fmt(0.25) == "0.25"
    assert peers_report._fmt(1681.4) == "1,681"


def test_an_open_loop_step_that_fell_behind_is_invalid() -> None:
    kept_up = {"count": 595.0, "p99_ms": 80.0}
    assert not peers_report.fell_behind(kept_up, rate=10, seconds=60, pacing=30)
    too_few = {"count": 400.0, "p99_ms": 80.0}
    assert peers_report.fell_behind(too_few, rate=10, seconds=60, pacing=30)
    # a peer's order flow slower than the pacing: that user's next order started late
    slow_flow = {"count": 24.0, "p99_ms": 900.0, "flow": {"p99_ms": 31_000.0}}
    assert peers_report.fell_behind(slow_flow, rate=0.4, seconds=60, pacing=30)
    assert not peers_report.valid({**kept_up, "behind": True})


def test_the_open_loop_table_shows_a_peers_whole_order_and_skips_the_closed_rows() -> None:
    results = {
        "shopstream": {
            "order_sync": {"count": 900.0, "rps": 90.0, "p50_ms": 400.0, "p99_ms": 900.0},
            "order_sync@open": {"count": 24.0, "rps": 0.4, "p50_ms": 30.0, "p99_ms": 60.0,
                                "offered_rps": 0.4, "cpu_ms_per_op": 18.0, "cores": 0.2},
        },
        "medusa": {
            "order@open": {"count": 20.0, "rps": 0.33, "p50_ms": 200.0, "p99_ms": 500.0,
                           "offered_rps": 0.4, "behind": True,
                           "flow": {"p50_ms": 1500.0, "p99_ms": 40_000.0}},
        },
    }
    table = peers_report.open_table(results)
    assert "| order_sync | shopstream | 0.40 | 0.40 | 30 | 60 | 0.20 | 18 | 0 | yes |" in table
    assert "| order | medusa | 0.40 | 0.33 | 1,500 | 40,000 |" in table
    assert "**no** (fell behind)" in table
    assert "order_sync@open" not in peers_report.table(results)
    assert "| order_sync | shopstream |" in peers_report.table(results)


def test_an_open_rate_is_asked_by_work_or_for_every_order() -> None:
    rates = {"by_id": 10.0, "order": 0.4}
    assert peers._open_rate(rates, "by_id") == 10.0
    assert peers._open_rate(rates, "order_async") == peers._open_rate(rates, "order") == 0.4
    assert peers._open_rate(rates, "search") == 0.0


def test_a_step_in_which_no_request_completed_reads_as_zero() -> None:
    stats = (
        "Type,Name,Request Count,Failure Count,Requests/s,50%,99%\n"
        ",Aggregated,0,0,0.0,N/A,N/A\n"
    )
    row = peers_report.locust_row(stats, "Aggregated")
    assert row["count"] == 0 and row["p99_ms"] == 0.0
    assert not peers_report.valid(row)


def test_a_failed_flow_counts_its_failed_request_once() -> None:
    stats = (
        "Type,Name,Request Count,Failure Count,Requests/s,50%,99%\n"
        "POST,order,35,0,0.6,13000,14000\n"
        "FLOW,order flow,37,2,0.6,14000,15000\n"
        "POST,order: cart,61,2,1.0,300,900\n"
        ",Aggregated,133,4,2.2,900,14000\n"
    )
    assert peers_report.flow_failures(stats) == 2
