"""The strategy comparisons' figures (PT-03b balancing, PT-04b partitioning): requests per instance
from the instances' own counters, balance, and per-key order read back from Kafka."""

from __future__ import annotations

import pytest

from shopstream_tools.lab import analysis, spread
from shopstream_tools.lab.spread import Message
from tests.lab import builders

METRICS = """# HELP http_requests_total HTTP requests answered
# TYPE http_requests_total counter
http_requests_total{service="product",method="GET",route="/products/{product_id:uuid}",status="200"} 120.0
http_requests_total{service="product",method="GET",route="/products",status="200"} 30.0
http_requests_total{service="product",method="GET",route="/health",status="200"} 500.0
http_requests_total{service="product",method="GET",route="/ready",status="200"} 7.0
http_requests_total{service="product",method="GET",route="/metrics",status="200"} 9.0
http_requests_total{service="product",method="GET",route="/products",status="400"} 2.0
# HELP http_requests_created HTTP requests answered
# TYPE http_requests_created gauge
http_requests_created{service="product",method="GET",route="/products",status="200"} 1.7e9
"""


def test_an_instance_answered_its_load_not_its_probes_or_scrapes() -> None:
    assert spread.answered(METRICS) == 152.0
    assert spread.answered("") == 0.0


def test_requests_served_between_readings_per_service() -> None:
    before = {"product-1": 100.0, "product-2": 50.0, "order-1": 10.0}
    after = {"product-1": 160.0, "product-2": 20.0, "order-1": 10.0, "order-2": 5.0}
    served = spread.served(before, after)
    # product-2 restarted between the readings: its counter started again from 0
    assert served == {"product-1": 60.0, "product-2": 20.0, "order-1": 0.0, "order-2": 5.0}
    assert spread.by_service(served) == {"product": {"product-1": 60.0, "product-2": 20.0},
                                         "order": {"order-1": 0.0, "order-2": 5.0}}  # fmt: skip


def test_key_order_holds_when_each_order_stays_on_one_partition_in_version_order() -> None:
    msgs = [Message(0, 1, "c1", "o1", 1), Message(0, 2, "c1", "o2", 1), Message(0, 3, "c1", "o1", 2),
            Message(1, 1, "c2", "o3", 1), Message(1, 2, "c2", "o3", 2)]  # fmt: skip
    result = spread.key_order(reversed(msgs))  # read in any order: sorted by partition and offset
    assert result | {"examples": []} == {"messages": 5, "keys": 2, "orders": 3, "split": 0,
                                         "out_of_order": 0, "kept": True, "examples": []}  # fmt: skip


def test_key_order_finds_an_order_split_over_partitions_or_going_back() -> None:
    split = spread.key_order([Message(0, 1, "a", "o1", 1), Message(1, 1, "b", "o1", 2)])
    assert (split["split"], split["out_of_order"], split["kept"], split["examples"]) == (1, 0, False, ["o1"])
    back = spread.key_order([Message(0, 1, "a", "o1", 2), Message(0, 2, "a", "o1", 1)])
    assert (back["split"], back["out_of_order"], back["kept"]) == (0, 1, False)
    # stock answers carry no order version: only the partition is checked
    unversioned = spread.key_order([Message(2, 1, "o1", "o1", None), Message(2, 2, "o1", "o1", None)])
    assert unversioned["kept"] is True


def test_balancing_rows_give_each_strategy_its_spread_over_instances() -> None:
    rows = analysis.summarize(builders.ceilings(), builders.tests(), 2)["tests"]["PT-03b"]["rows"]
    by = {r["strategy"]: r for r in rows}
    assert by["least_conn"]["product_max_over_mean"] == pytest.approx(1.2)
    assert by["least_conn"]["product_cv"] == pytest.approx(0.2)
    assert by["round_robin"]["product_max_over_mean"] == pytest.approx(1.0)
    assert by["round_robin"]["order_cv"] == pytest.approx(0.0)


def test_partitioning_rows_give_balance_per_topic_and_the_order_check() -> None:
    rows = analysis.summarize(builders.ceilings(), builders.tests(), 2)["tests"]["PT-04b"]["rows"]
    by = {r["strategy"]: r for r in rows}
    assert by["order_id"]["order_max_over_mean"] == pytest.approx(1.0)
    assert by["customer_id"]["order_max_over_mean"] == pytest.approx(2.0)
    assert by["customer_id"]["payment_max_over_mean"] == pytest.approx(2.0)
    assert by["customer_id"]["stock_max_over_mean"] == pytest.approx(1.0)
    assert by["order_id"]["processed_per_s"] == 150.0 and by["order_id"]["e2e_p50_ms"] > 0
    assert all(r["order_kept"] and r["keys"] == 100 for r in rows)


def test_rounds_alternate_the_order_and_the_comparison_takes_medians() -> None:
    from shopstream_tools.lab import stats

    assert stats.rounds_of(("a", "b", "c"), 3) == [(1, ["a", "b", "c"]), (2, ["c", "b", "a"]), (3, ["a", "b", "c"])]
    assert stats.rounds_of(("a",), 0) == [(1, ["a"])]
    rows = [{"strategy": "a", "n": 2, "x": 10.0}, {"strategy": "b", "n": 2, "x": 5.0},
            {"strategy": "a", "n": 2, "x": 30.0}, {"strategy": "a", "n": 4, "x": None}]  # fmt: skip
    assert stats.medians_by(rows, ("strategy", "n"), ("x",)) == [
        {"strategy": "a", "n": 2, "rounds": 2, "x": 20.0},
        {"strategy": "b", "n": 2, "rounds": 1, "x": 5.0},
        {"strategy": "a", "n": 4, "rounds": 1, "x": None},
    ]


def test_the_strategies_are_compared_on_their_medians() -> None:
    summary = analysis.summarize(builders.ceilings(), builders.tests(), 2)
    balancing = {r["strategy"]: r for r in summary["tests"]["PT-03b"]["compared"]}
    assert balancing["least_conn"]["rounds"] == 1 and balancing["least_conn"]["ok_rate"] == pytest.approx(700)
    keying = {r["strategy"]: r for r in summary["tests"]["PT-04b"]["compared"]}
    assert keying["customer_id"]["order_max_over_mean"] == pytest.approx(2.0) and keying["customer_id"]["order_kept"]
