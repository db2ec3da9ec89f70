"""Which payment provider the order service talks to: the payment simulator, set up from settings.

The simulator decides by the request's content (customer and amount, ``key_by="request"``), not
by the order id, so the same order placed in sync and in async mode meets the same fate and the
two processing models can be compared on equal terms. ``ALWAYS_APPROVE_CUSTOMER`` and
``ALWAYS_DECLINE_CUSTOMER`` force either path from any client.

The provider is reached through ``ResilientPayments`` (timeout, retries, circuit breaker, lost
answers settled), and the simulator obeys the fault switch in ``fault_file`` (``shopstream fault``).
"""

from __future__ import annotations

from pathlib import Path

from services.order.adapters.payment_faults import FaultSwitch
from services.order.adapters.payment_resilience import ResilientPayments
from services.order.adapters.payment_simulator import (
    ALWAYS_APPROVE_CUSTOMER,
    ALWAYS_DECLINE_CUSTOMER,
    PaymentSimulator,
)
from services.order.domain.payment import PaymentGateway
from shopstream.config import Settings

__all__ = ["ALWAYS_APPROVE_CUSTOMER", "ALWAYS_DECLINE_CUSTOMER", "fault_file", "payment_gateway"]


def fault_file(settings: Settings) -> Path:
    return settings.data_path / "faults" / "payment.json"


def payment_gateway(settings: Settings) -> PaymentGateway:
    simulator = PaymentSimulator(
        decline_rate=settings.payment_decline_rate,
        latency_ms=settings.payment_latency_ms,
        jitter_ms=settings.payment_jitter_ms,
        seed=settings.payment_seed,
        key_by="request",
        faults=FaultSwitch(fault_file(settings)),
    )
    return ResilientPayments(
        simulator,
        timeout_s=settings.payment_timeout_ms / 1000.0,
        attempts=settings.payment_attempts,
    )
