"""The payment port under a misbehaving provider: timeouts, retries, the circuit breaker, lost
answers settled, and the simulator's fault switch."""

from __future__ import annotations

import time
from pathlib import Path
from uuid import uuid4

import pytest

from services.order.adapters import payment_faults
from services.order.adapters.payment_faults import Fault, FaultSwitch, Mode
from services.order.adapters.payment_resilience import ResilientPayments
from services.order.adapters.payment_simulator import ALWAYS_DECLINE_CUSTOMER, PaymentSimulator
from services.order.domain.payment import (
    Authorized,
    Declined,
    PaymentOutcomeUnknown,
    PaymentRequest,
    PaymentUnavailable,
)
from services.order.tests.unit.order_builders import CUSTOMER


class Switch(FaultSwitch):
    """A fault switch the test flips directly (the file is tested on its own below)."""

    def __init__(self, mode: Mode = "off", delay_ms: float = 0.0) -> None:
        super().__init__(None)
        self.set(mode, delay_ms)

    def set(self, mode: Mode, delay_ms: float = 0.0) -> None:
        self._fault = Fault(mode, None, delay_ms)


class Counting(PaymentSimulator):
    def __init__(self, switch: Switch) -> None:
        super().__init__(faults=switch)
        self.authorize_calls = 0

    async def authorize(self, request: PaymentRequest):  # type: ignore[no-untyped-def]
        self.authorize_calls += 1
        return await super().authorize(request)


def resilient(inner: PaymentSimulator, **kw: float) -> ResilientPayments:
    options = {"timeout_s": 0.05, "attempts": 3, "backoff_s": 0.001, "backoff_max_s": 0.002}
    return ResilientPayments(inner, **{**options, **kw})  # type: ignore[arg-type]


def request(customer=CUSTOMER) -> PaymentRequest:  # type: ignore[no-untyped-def]
    return PaymentRequest(uuid4(), customer, 2500)


async def test_a_healthy_provider_answers_once() -> None:
    inner = Counting(Switch())
    result = await resilient(inner).authorize(request())
    assert isinstance(result, Authorized)
    assert inner.authorize_calls == 1


async def test_a_decline_is_an_answer_not_retried() -> None:
    inner = Counting(Switch())
    result = await resilient(inner).authorize(request(ALWAYS_DECLINE_CUSTOMER))
    assert isinstance(result, Declined)
    assert inner.authorize_calls == 1


async def test_a_failing_provider_is_retried_a_bounded_number_of_times() -> None:
    inner = Counting(Switch("fail"))
    with pytest.raises(PaymentUnavailable) as caught:
        await resilient(inner, attempts=3).authorize(request())
    assert not isinstance(caught.value, PaymentOutcomeUnknown)  # refused: nothing authorized
    assert inner.authorize_calls == 3


async def test_a_slow_provider_within_the_timeout_is_just_slow() -> None:
    inner = Counting(Switch("slow", delay_ms=10))
    result = await resilient(inner, timeout_s=0.5).authorize(request())
    assert isinstance(result, Authorized)
    assert inner.authorize_calls == 1


async def test_a_lost_answer_is_found_at_the_provider() -> None:
    switch = Switch("hang")
    inner = Counting(switch)
    payments = resilient(inner)
    req = request()

    # The provider decides, then hangs on answering; it can still be asked by order.
    async def find_answers(order_id):  # type: ignore[no-untyped-def]
        return inner.authorized.get(order_id)

    inner.find = find_answers  # type: ignore[method-assign]
    result = await payments.authorize(req)
    assert isinstance(result, Authorized)
    assert result == inner.authorized[req.order_id]
    assert inner.authorize_calls == 3


async def test_an_unreachable_provider_leaves_the_outcome_unknown_and_the_order_compensated() -> (
    None
):
    switch = Switch("hang")
    inner = Counting(switch)
    req = request()
    started = time.monotonic()
    with pytest.raises(PaymentOutcomeUnknown):
        await resilient(inner).authorize(req)
    assert time.monotonic() - started < 1.0  # bounded: 3 tries, a lookup, a void, 50 ms each
    switch.set("off")
    # the stray authorization exists at the provider; voiding by order settles it
    assert await inner.find(req.order_id) is not None
    await inner.void_order(req.order_id)
    assert await inner.find(req.order_id) is None


async def test_the_circuit_opens_and_fails_fast_then_closes_again() -> None:
    switch = Switch("fail")
    inner = Counting(switch)
    payments = resilient(inner, attempts=1, breaker_threshold=3, breaker_open_seconds=0.3)
    for _ in range(3):
        with pytest.raises(PaymentUnavailable):
            await payments.authorize(request())
    assert inner.authorize_calls == 3
    switch.set("off")
    with pytest.raises(PaymentUnavailable):
        await payments.authorize(request())  # open: the provider is not even asked
    assert inner.authorize_calls == 3
    time.sleep(0.35)
    assert isinstance(await payments.authorize(request()), Authorized)  # half-open, then closed
    assert inner.authorize_calls == 4


def test_the_fault_file_switches_and_expires(tmp_path: Path) -> None:
    path = tmp_path / "faults" / "payment.json"
    assert payment_faults.read(path).active(time.time()) == "off"
    payment_faults.write(path, "hang", seconds=30)
    fault = payment_faults.read(path)
    assert fault.active(time.time()) == "hang"
    assert fault.active(time.time() + 31) == "off"
    assert FaultSwitch(path).mode() == "hang"
    payment_faults.write(path, "off")
    assert not path.exists()
    with pytest.raises(ValueError):
        payment_faults.write(path, "explode")  # type: ignore[arg-type]
