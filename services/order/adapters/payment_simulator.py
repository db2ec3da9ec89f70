"""The local payment provider: a PaymentGateway that decides by hashing, with a simulated latency.

Its only I/O is ``asyncio.sleep`` for latency. Decisions are deterministic: the same seed and the
same order id always give the same answer, whatever the processing mode, the time or the process,
so sync and async processing reach the same outcome and tests and benchmarks can force each path:

- customers in ``approve_customers`` are always authorized, those in ``decline_customers`` always
  declined (by default the two well-known ids below, usable from any HTTP client);
- amounts in ``decline_amounts_cents`` and amounts above ``limit_cents`` are declined;
- everything else is declined with probability ``decline_rate``, drawn from
  sha256(seed, order id), or from sha256(seed, customer id, amount) with ``key_by="request"``
  (then two orders with the same customer and total share their fate, in any mode).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Iterable
from typing import Literal
from uuid import UUID

from services.order.adapters.payment_faults import FaultSwitch
from services.order.domain.payment import (
    Authorized,
    Declined,
    PaymentRequest,
    PaymentResult,
    PaymentUnavailable,
)

ALWAYS_APPROVE_CUSTOMER = UUID("00000000-0000-4000-8000-00000000acce")
ALWAYS_DECLINE_CUSTOMER = UUID("00000000-0000-4000-8000-00000000dec1")


class PaymentSimulator:
    REMEMBERED = (
        100_000  # authorizations kept for ``find``; an answer is lost for seconds, not days
    )

    def __init__(
        self,
        *,
        decline_rate: float = 0.0,
        latency_ms: float = 0.0,
        jitter_ms: float = 0.0,
        seed: int = 0,
        key_by: Literal["order", "request"] = "order",
        approve_customers: Iterable[UUID] = (ALWAYS_APPROVE_CUSTOMER,),
        decline_customers: Iterable[UUID] = (ALWAYS_DECLINE_CUSTOMER,),
        decline_amounts_cents: Iterable[int] = (),
        limit_cents: int | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        faults: FaultSwitch | None = None,
    ) -> None:
        if not 0.0 <= decline_rate <= 1.0:
            raise ValueError(f"decline_rate must be within [0, 1], got {decline_rate}")
        if latency_ms < 0 or jitter_ms < 0:
            raise ValueError("latency_ms and jitter_ms must not be negative")
        if key_by not in ("order", "request"):
            raise ValueError(f"key_by must be 'order' or 'request', got {key_by!r}")
        self.decline_rate = decline_rate
        self.latency_ms = latency_ms
        self.jitter_ms = jitter_ms
        self.seed = seed
        self.key_by = key_by
        self.approve_customers = frozenset(approve_customers)
        self.decline_customers = frozenset(decline_customers)
        self.decline_amounts_cents = frozenset(decline_amounts_cents)
        self.limit_cents = limit_cents
        self._sleep = sleep
        self.voided: set[str] = set()
        """Payment ids voided so far (in memory, for tests and the console)."""
        self.authorized: dict[UUID, Authorized] = {}
        """What this provider authorized, by order: asked when an answer was lost (``find``)."""
        self.faults = faults or FaultSwitch(None)

    # Pure, deterministic parts -------------------------------------------------------------------
    def decide(self, request: PaymentRequest) -> PaymentResult:
        """The answer for ``request``; no latency, no state."""
        if request.customer_id in self.approve_customers:
            return self._authorized(request)
        if request.customer_id in self.decline_customers:
            return Declined("card declined (test customer)")
        if request.amount_cents in self.decline_amounts_cents:
            return Declined("card declined (test amount)")
        if self.limit_cents is not None and request.amount_cents > self.limit_cents:
            return Declined(f"amount over the limit of {self.limit_cents} cents")
        if self._draw(request, "decision") < self.decline_rate:
            return Declined("insufficient funds")
        return self._authorized(request)

    def latency_seconds(self, request: PaymentRequest) -> float:
        """``latency_ms`` plus a deterministic jitter in [0, ``jitter_ms``)."""
        return (self.latency_ms + self.jitter_ms * self._draw(request, "latency")) / 1000.0

    # PaymentGateway ------------------------------------------------------------------------------
    async def authorize(self, request: PaymentRequest) -> PaymentResult:
        await self._answer_delay(self.latency_seconds(request))
        result = self.decide(request)
        if isinstance(result, Authorized):
            self.authorized[request.order_id] = result
            if len(self.authorized) > self.REMEMBERED:
                del self.authorized[next(iter(self.authorized))]  # the oldest (insertion order)
        await self._misbehave()  # a hanging provider has decided; its answer is what gets lost
        return result

    async def void(self, payment_id: str, order_id: UUID) -> None:
        await self._answer_delay(self.latency_ms / 1000.0)
        await self._misbehave()
        self.voided.add(payment_id)

    # PaymentLookup -------------------------------------------------------------------------------
    async def find(self, order_id: UUID) -> Authorized | None:
        await self._answer_delay(self.latency_ms / 1000.0)
        await self._misbehave()
        found = self.authorized.get(order_id)
        return None if found is None or found.payment_id in self.voided else found

    async def void_order(self, order_id: UUID) -> None:
        found = await self.find(order_id)
        if found is not None:
            self.voided.add(found.payment_id)

    # The fault switch ----------------------------------------------------------------------------
    async def _answer_delay(self, delay: float) -> None:
        fault = self.faults.current()
        if self.faults.mode() == "slow":
            delay += fault.delay_ms / 1000.0
        if delay > 0:
            await self._sleep(delay)

    async def _misbehave(self) -> None:
        mode = self.faults.mode()
        if mode == "fail":
            raise PaymentUnavailable("simulated provider failure")
        while mode == "hang":  # until the caller gives up or the fault is switched off
            await self._sleep(0.1)
            mode = self.faults.mode()

    # Internals -----------------------------------------------------------------------------------
    def _authorized(self, request: PaymentRequest) -> Authorized:
        digest = hashlib.sha256(f"{self.seed}:{request.order_id}:payment".encode()).hexdigest()
        return Authorized(payment_id=f"sim_{digest[:24]}", amount_cents=request.amount_cents)

    def _draw(self, request: PaymentRequest, purpose: str) -> float:
        """A number in [0, 1) fixed by the seed and the order (or the request's content)."""
        if self.key_by == "order":
            subject = str(request.order_id)
        else:
            subject = f"{request.customer_id}:{request.amount_cents}"
        digest = hashlib.sha256(f"{self.seed}:{subject}:{purpose}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64
