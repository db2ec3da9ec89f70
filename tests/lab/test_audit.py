"""The consistency audit's verdicts, from before/after observations."""

from __future__ import annotations

from shopstream_tools.lab.audit import Observed, Units, check


def before() -> Observed:
    return Observed(units={"a": Units(stock=100), "scarce": Units(stock=5)})


def consistent_after() -> Observed:
    return Observed(
        # a sold 3 and holds 2 for an order in flight... that ended; scarce sold out exactly
        units={"a": Units(stock=95, held=0, sold=5), "scarce": Units(stock=0, sold=5)},
        orders_by_status={"CONFIRMED": 2, "REJECTED": 1},
        order_reservations=[
            ("o1", "CONFIRMED", ["committed", "committed"]),
            ("o2", "CONFIRMED", ["committed"]),
            ("o3", "REJECTED", []),
            ("o4", "CANCELLED", ["released"]),
        ],
    )


def test_a_consistent_run_passes_every_check() -> None:
    result = check(before(), consistent_after())
    assert result["passed"] is True
    assert set(result["checks"]) == {
        "accepted orders terminal",
        "no stock oversold",
        "reservations agree with orders",
        "no event applied twice",
    }


def test_an_order_left_in_flight_fails() -> None:
    after = consistent_after()
    after.open_orders = ["o9"]
    result = check(before(), after)
    assert result["passed"] is False
    assert result["checks"]["accepted orders terminal"]["examples"] == ["o9"]


def test_units_created_or_lost_fail_the_oversell_check() -> None:
    after = consistent_after()
    after.units["scarce"] = Units(stock=0, sold=6)  # one more sold than there was
    result = check(before(), after)
    assert not result["checks"]["no stock oversold"]["passed"]
    assert "scarce" in result["checks"]["no stock oversold"]["examples"][0]
    after = consistent_after()
    after.units["a"] = Units(stock=97, sold=5)  # a release applied twice gives back too much
    assert not check(before(), after)["checks"]["no stock oversold"]["passed"]


def test_negative_stock_or_a_vanished_product_fails() -> None:
    after = consistent_after()
    after.negative_stock = ["x"]
    assert not check(before(), after)["checks"]["no stock oversold"]["passed"]
    after = consistent_after()
    del after.units["a"]
    assert not check(before(), after)["checks"]["no stock oversold"]["passed"]


def test_reservations_must_agree_with_the_orders_end() -> None:
    after = consistent_after()
    after.order_reservations.append(("o5", "CONFIRMED", ["held"]))
    after.order_reservations.append(("o6", "CANCELLED", ["held"]))
    after.order_reservations.append(("o7", "CONFIRMED", []))
    result = check(before(), after)
    examples = result["checks"]["reservations agree with orders"]["examples"]
    assert len(examples) == 3
    assert result["passed"] is False


def test_an_event_applied_twice_fails() -> None:
    after = consistent_after()
    after.duplicate_saga_steps = ["o1 StockReserved x2"]
    assert not check(before(), after)["checks"]["no event applied twice"]["passed"]


def test_without_an_order_service_only_stock_is_checked() -> None:
    b, a = before(), Observed(units=consistent_after().units, order_service=False)
    result = check(b, a)
    assert set(result["checks"]) == {"no stock oversold"}
    assert result["passed"] is True
