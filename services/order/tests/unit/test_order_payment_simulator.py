"""The payment simulator: deterministic under a seed, the configured decline rate, forced paths."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from uuid import UUID

import pytest

from services.order.adapters.payment_simulator import (
    ALWAYS_APPROVE_CUSTOMER,
    ALWAYS_DECLINE_CUSTOMER,
    PaymentSimulator,
)
from services.order.domain import events as ev
from services.order.domain.payment import (
    Authorized,
    Declined,
    PaymentGateway,
    PaymentRequest,
    payment_event,
)
from services.order.tests.unit.order_builders import CUSTOMER, ORDER


def requests(n: int, seed: int = 1, amount: int = 2500) -> list[PaymentRequest]:
    rng = random.Random(seed)
    return [PaymentRequest(UUID(int=rng.getrandbits(128), version=4), CUSTOMER, amount)
            for _ in range(n)]


class FakeSleep:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def test_the_same_seed_and_order_always_get_the_same_answer():
    batch = requests(500)
    first = [PaymentSimulator(decline_rate=0.5, seed=42).decide(r) for r in batch]
    again = [PaymentSimulator(decline_rate=0.5, seed=42).decide(r) for r in batch]
    assert first == again
    other_seed = [PaymentSimulator(decline_rate=0.5, seed=43).decide(r) for r in batch]
    assert first != other_seed


@pytest.mark.parametrize("rate", [0.05, 0.2, 0.5, 0.9])
def test_the_decline_rate_holds_over_ten_thousand_orders(rate: float):
    simulator = PaymentSimulator(decline_rate=rate, seed=7)
    declined = sum(isinstance(simulator.decide(r), Declined) for r in requests(10_000))
    assert rate - 0.02 <= declined / 10_000 <= rate + 0.02


@pytest.mark.parametrize(("rate", "expected"), [(0.0, 0), (1.0, 1000)])
def test_rates_zero_and_one_are_exact(rate: float, expected: int):
    simulator = PaymentSimulator(decline_rate=rate)
    assert sum(isinstance(simulator.decide(r), Declined) for r in requests(1000)) == expected


def test_an_authorization_has_a_stable_id_per_order_and_the_requested_amount():
    simulator = PaymentSimulator(seed=3)
    a, b = requests(2)
    first = simulator.decide(a)
    assert isinstance(first, Authorized)
    assert first == simulator.decide(a)
    assert first.amount_cents == 2500
    assert first.payment_id.startswith("sim_")
    assert first.payment_id != simulator.decide(b).payment_id  # type: ignore[union-attr]


def test_forced_customers_win_over_the_rate():
    approve_all = PaymentSimulator(decline_rate=1.0)
    decline_none = PaymentSimulator(decline_rate=0.0)
    for r in requests(50):
        approved = PaymentRequest(r.order_id, ALWAYS_APPROVE_CUSTOMER, r.amount_cents)
        declined = PaymentRequest(r.order_id, ALWAYS_DECLINE_CUSTOMER, r.amount_cents)
        assert isinstance(approve_all.decide(approved), Authorized)
        assert decline_none.decide(declined) == Declined("card declined (test customer)")


def test_forced_amounts_and_the_limit_decline():
    simulator = PaymentSimulator(decline_amounts_cents=[4200], limit_cents=10_000)
    assert simulator.decide(PaymentRequest(ORDER, CUSTOMER, 4200)) == Declined(
        "card declined (test amount)")
    assert simulator.decide(PaymentRequest(ORDER, CUSTOMER, 10_001)) == Declined(
        "amount over the limit of 10000 cents")
    assert isinstance(simulator.decide(PaymentRequest(ORDER, CUSTOMER, 10_000)), Authorized)


def test_custom_forced_customers_replace_the_defaults():
    vip = UUID(int=5, version=4)
    simulator = PaymentSimulator(decline_rate=1.0, approve_customers=[vip], decline_customers=[])
    assert isinstance(simulator.decide(PaymentRequest(ORDER, vip, 1)), Authorized)
    assert isinstance(simulator.decide(PaymentRequest(ORDER, ALWAYS_APPROVE_CUSTOMER, 1)),
                      Declined)


def test_keyed_by_request_two_orders_with_the_same_content_share_their_fate():
    simulator = PaymentSimulator(decline_rate=0.5, key_by="request", seed=1)
    outcomes = set()
    for amount in range(1000, 1040):
        a, b = requests(2, seed=amount, amount=amount)
        assert type(simulator.decide(a)) is type(simulator.decide(b))
        outcomes.add(type(simulator.decide(a)))
    assert outcomes == {Authorized, Declined}


async def test_authorize_waits_the_latency_then_answers_like_decide():
    sleep = FakeSleep()
    simulator = PaymentSimulator(decline_rate=0.5, latency_ms=20, jitter_ms=10, sleep=sleep)
    batch = requests(100)
    answers = [await simulator.authorize(r) for r in batch]
    assert answers == [simulator.decide(r) for r in batch]
    assert len(sleep.calls) == 100
    assert all(0.020 <= s < 0.030 for s in sleep.calls)
    assert len(set(sleep.calls)) > 50  # jitter varies per order...
    assert sleep.calls == [simulator.latency_seconds(r) for r in batch]  # ...deterministically


async def test_no_latency_means_no_sleep():
    sleep = FakeSleep()
    simulator = PaymentSimulator(sleep=sleep)
    await simulator.authorize(requests(1)[0])
    await simulator.void("sim_x", ORDER)
    assert sleep.calls == []
    assert simulator.voided == {"sim_x"}


async def test_void_is_idempotent():
    simulator = PaymentSimulator()
    await simulator.void("sim_x", ORDER)
    await simulator.void("sim_x", ORDER)
    assert simulator.voided == {"sim_x"}


@pytest.mark.parametrize(
    "kwargs", [{"decline_rate": -0.1}, {"decline_rate": 1.5}, {"latency_ms": -1},
               {"jitter_ms": -1}, {"key_by": "customer"}],
)
def test_nonsense_settings_are_refused(kwargs: dict):
    with pytest.raises(ValueError):
        PaymentSimulator(**kwargs)


def test_the_simulator_is_a_payment_gateway():
    gateway: PaymentGateway = PaymentSimulator()
    assert callable(gateway.authorize) and callable(gateway.void)


def test_payment_results_become_events():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert payment_event(ORDER, Authorized("p1", 99), now) == ev.PaymentAuthorized(
        order_id=ORDER, occurred_at=now, payment_id="p1", amount_cents=99)
    assert payment_event(ORDER, Declined("nope"), now) == ev.PaymentDeclined(
        order_id=ORDER, occurred_at=now, reason="nope")


def test_the_request_idempotency_key_is_per_order():
    assert PaymentRequest(ORDER, CUSTOMER, 1).idempotency_key == f"order-{ORDER}"
