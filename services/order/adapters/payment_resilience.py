"""The payment port made safe to lean on: a timeout per call, bounded retries, a circuit breaker,
and an answer for the order whose payment outcome was lost.

Libraries, chosen for being well kept and asyncio-native: ``tenacity`` retries (exponential backoff
with jitter, a bounded number of attempts, only on a provider failure, never on a decline);
``purgatory`` is the circuit breaker (opens after ``breaker_threshold`` failed calls in a row, fails
fast for ``breaker_open_seconds``, then lets one call try). aiobreaker was the other candidate; it
has not been released since 2021.

Retrying ``authorize`` is safe because the provider deduplicates by the order's idempotency key.
When every attempt timed out, the provider may have authorized without the answer reaching us:
the order's authorization is looked up (``PaymentLookup.find``) and used if there is one; if the
provider cannot be asked either, its authorization for the order is voided if it can be, and the
call raises ``PaymentOutcomeUnknown`` so the saga compensates (the order is cancelled and its stock
released) instead of waiting forever.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar
from uuid import UUID

from prometheus_client import Counter, Gauge
from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from services.order.domain.payment import (
    PaymentGateway,
    PaymentLookup,
    PaymentOutcomeUnknown,
    PaymentRequest,
    PaymentResult,
    PaymentUnavailable,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
CIRCUIT = "payment-provider"

CALLS = Counter(
    "order_payment_calls", "calls to the payment provider, by operation and outcome",
    ["operation", "outcome"],
)  # fmt: skip
CIRCUIT_OPEN = Gauge("order_payment_circuit_open", "1 while the payment circuit breaker is open")
UNKNOWN = Counter(
    "order_payment_outcomes_unknown", "authorizations whose answer was lost, by how they were settled",
    ["resolution"],
)  # fmt: skip


class _CircuitOpen(PaymentUnavailable):
    """The breaker is open: fail fast, do not retry."""


def _worth_retrying(exc: BaseException) -> bool:
    return isinstance(exc, TimeoutError | PaymentUnavailable) and not isinstance(exc, _CircuitOpen)


class ResilientPayments:
    """A ``PaymentGateway`` around another one."""

    def __init__(
        self,
        inner: PaymentGateway,
        *,
        timeout_s: float = 1.0,
        attempts: int = 3,
        backoff_s: float = 0.1,
        backoff_max_s: float = 1.0,
        breaker_threshold: int = 5,
        breaker_open_seconds: float = 10.0,
    ) -> None:
        if timeout_s <= 0 or attempts < 1:
            raise ValueError("timeout_s must be > 0 and attempts >= 1")
        self.inner = inner
        self.timeout_s = timeout_s
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.breakers = AsyncCircuitBreakerFactory(
            default_threshold=breaker_threshold, default_ttl=breaker_open_seconds
        )
        self.breakers.add_listener(self._on_breaker_event)

    async def authorize(self, request: PaymentRequest) -> PaymentResult:
        timed_out = False

        async def once() -> PaymentResult:
            nonlocal timed_out
            try:
                return await self._call("authorize", lambda: self.inner.authorize(request))
            except TimeoutError:
                timed_out = True
                raise

        try:
            return await self._retrying(once)
        except (TimeoutError, PaymentUnavailable):
            if not timed_out:
                raise  # every attempt was refused: nothing can have been authorized
        # An attempt timed out: the provider may have authorized without the answer reaching us.
        return await self._settle_lost_answer(request.order_id)

    async def void(self, payment_id: str, order_id: UUID) -> None:
        try:
            await self._retrying(
                lambda: self._call("void", lambda: self.inner.void(payment_id, order_id))
            )
        except TimeoutError as exc:
            raise PaymentUnavailable("void timed out") from exc

    async def _settle_lost_answer(self, order_id: UUID) -> PaymentResult:
        if not isinstance(self.inner, PaymentLookup):
            UNKNOWN.labels("compensated").inc()
            raise PaymentOutcomeUnknown(f"no answer for order {order_id}")
        lookup = self.inner
        try:
            found = await self._call("find", lambda: lookup.find(order_id))
        except (TimeoutError, PaymentUnavailable):
            found = None
        else:
            if found is not None:
                UNKNOWN.labels("found_authorized").inc()
                return found
            UNKNOWN.labels("found_nothing").inc()
            raise PaymentUnavailable(f"the provider holds no authorization for order {order_id}")
        try:
            await self._call("void_order", lambda: lookup.void_order(order_id))
            UNKNOWN.labels("voided").inc()
        except (TimeoutError, PaymentUnavailable):
            log.error("payment outcome of order %s unknown and the provider unreachable: the order "
                      "is compensated; a stray authorization lapses at the provider", order_id)  # fmt: skip
            UNKNOWN.labels("compensated").inc()
        raise PaymentOutcomeUnknown(f"no answer for order {order_id}")

    async def _retrying(self, call: Callable[[], Awaitable[T]]) -> T:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential_jitter(multiplier=self.backoff_s, max=self.backoff_max_s),
            retry=retry_if_exception(_worth_retrying),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await call()
        raise AssertionError("tenacity re-raises the last failure")

    async def _call(self, operation: str, call: Callable[[], Awaitable[T]]) -> T:
        """One call under the breaker and the timeout. An open circuit is not retried."""
        try:
            async with await self.breakers.get_breaker(CIRCUIT):
                async with asyncio.timeout(self.timeout_s):
                    result = await call()
        except OpenedState as exc:
            CALLS.labels(operation, "circuit_open").inc()
            raise _CircuitOpen("payment circuit open") from exc
        except TimeoutError:
            CALLS.labels(operation, "timeout").inc()
            raise
        except PaymentUnavailable:
            CALLS.labels(operation, "failed").inc()
            raise
        CALLS.labels(operation, "ok").inc()
        return result

    def _on_breaker_event(self, name: str, event_type: str, event: object) -> None:
        if event_type == "state_changed":
            CIRCUIT_OPEN.set(1 if getattr(event, "state", "") == "opened" else 0)
