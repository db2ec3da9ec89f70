"""How the saga's commands are carried out, per processing mode; ``command_table`` at the end is
the map: the same decisions, two ways of acting on them.

- **sync** (inside the request): ReserveStock and ReleaseStock are HTTP calls to the product
  service; AuthorizePayment and VoidPayment calls to the payment port. A reservation's or a
  payment's answer comes back as the event the saga decides on next.
- **async** (the saga consumer): ReserveStock and ReleaseStock need no call: the recorded
  OrderPlaced and StockReleased carry them to the product service on Kafka, whose answer comes
  back on stock-events. Payments are called as in sync mode, concurrently for a whole batch.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from uuid import UUID

from services.order.adapters.product_client import (
    ProductClient,
    ProductServiceUnavailable,
    Refused,
)
from services.order.domain import events as ev
from services.order.domain.commands import (
    AuthorizePayment,
    Command,
    ReleaseStock,
    ReserveStock,
    VoidPayment,
)
from services.order.domain.payment import (
    Declined,
    PaymentGateway,
    PaymentResult,
    PaymentUnavailable,
    payment_event,
)
from services.order.domain.values import ProcessingMode
from services.order.service_layer.messagebus import CommandTable
from services.order.service_layer.unit_of_work import UnitOfWorkFactory

log = logging.getLogger(__name__)


class OrderNotFound(Exception):
    pass


class SagaCommands:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        products: ProductClient,
        payments: PaymentGateway,
        clock: Callable[[], datetime],
    ) -> None:
        self.uow = uow
        self.products = products
        self.payments = payments
        self.clock = clock

    async def authorize(self, command: Command) -> ev.OrderEvent:
        """The payment port's answer as an event; an unavailable provider counts as a decline
        (the order is cancelled and its stock released rather than left waiting)."""
        assert isinstance(command, AuthorizePayment)
        result: PaymentResult
        try:
            result = await self.payments.authorize(command.to_request())
        except PaymentUnavailable as exc:
            log.warning("payment for order %s unavailable: %s", command.order_id, exc)
            result = Declined(f"payment provider unavailable: {exc}")
        return payment_event(command.order_id, result, self.clock())

    async def void(self, command: Command) -> None:
        assert isinstance(command, VoidPayment)
        try:
            await self.payments.void(command.payment_id, command.order_id)
        except PaymentUnavailable:
            log.error("void of payment %s (order %s) failed; the provider's authorization"
                      " expires on its own", command.payment_id, command.order_id)  # fmt: skip

    async def carried_by_event(self, command: Command) -> None:
        """Async mode: the recorded OrderPlaced / StockReleased carries it on Kafka."""

    async def reserve_over_http(self, command: Command) -> ev.OrderEvent | None:
        assert isinstance(command, ReserveStock)
        try:
            answer = await self.products.reserve(command.order_id, command.lines)
        except ProductServiceUnavailable as exc:
            log.error("reservation for order %s failed: %s", command.order_id, exc)
            await self.reject(command.order_id, "product service unavailable")
            # It may have held the stock before the answer was lost: give it back.
            await self.release(command.order_id)
            return None
        now = self.clock()
        if isinstance(answer, Refused):
            return ev.StockRejected(order_id=command.order_id, occurred_at=now,
                                    reason=answer.reason, product_id=answer.product_id)  # fmt: skip
        return ev.StockReserved(order_id=command.order_id, occurred_at=now, lines=answer.lines)

    async def release_over_http(self, command: Command) -> None:
        assert isinstance(command, ReleaseStock)
        await self.release(command.order_id)

    async def release(self, order_id: UUID) -> None:
        """Best effort: the recorded StockReleased also reaches the product service on Kafka."""
        await self._best_effort("release", self.products.release, order_id)

    async def commit(self, order_id: UUID) -> None:
        """Best effort: the recorded OrderConfirmed also commits the reservation via Kafka."""
        await self._best_effort("commit", self.products.commit, order_id)

    async def _best_effort(
        self, what: str, call: Callable[[UUID], Awaitable[object]], order_id: UUID
    ) -> None:
        try:
            await call(order_id)
        except ProductServiceUnavailable as exc:
            log.warning("%s of order %s over HTTP failed (Kafka will carry it): %s",
                        what, order_id, exc)  # fmt: skip

    async def reject(self, order_id: UUID, reason: str) -> None:
        """End a pending order the saga cannot move on (its stock answer cannot be had)."""
        async with self.uow() as uow:
            order = await uow.get(order_id)
            if order is None:
                raise OrderNotFound(order_id)
            if not order.state.is_terminal:
                order.reject(reason, self.clock())
                await uow.record(order)


def command_table(c: SagaCommands) -> CommandTable:
    return {
        ProcessingMode.SYNC: {
            ReserveStock: c.reserve_over_http,
            ReleaseStock: c.release_over_http,
            AuthorizePayment: c.authorize,
            VoidPayment: c.void,
        },
        ProcessingMode.ASYNC: {
            ReserveStock: c.carried_by_event,
            ReleaseStock: c.carried_by_event,
            AuthorizePayment: c.authorize,
            VoidPayment: c.void,
        },
    }
