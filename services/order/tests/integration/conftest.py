"""In-process order services against the real platform, for tests that must stop a saga at a
chosen step (a payment or a reservation held until the test lets it go)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any
from uuid import UUID

import pytest

from services.order.adapters.payments import payment_gateway
from services.order.adapters.product_client import ProductClient, ReservationAnswer
from services.order.bootstrap import bootstrap
from services.order.domain.partitioning import PartitionStrategy
from services.order.domain.payment import PaymentGateway, PaymentRequest, PaymentResult
from services.order.domain.placement import PlaceOrder, parse_place_order
from services.order.service_layer.orders import OrderService
from shopstream import auth, db


class Gate:
    """Holds callers at ``pass_through`` until ``open()``; ``reached`` tells they got there."""

    def __init__(self) -> None:
        self.reached = asyncio.Event()
        self._open = asyncio.Event()

    def open(self) -> None:
        self._open.set()

    async def pass_through(self) -> None:
        self.reached.set()
        await self._open.wait()


class GatedPayments:
    def __init__(self, inner: PaymentGateway, gate: Gate | None = None) -> None:
        self.inner = inner
        self.gate = gate
        self.voided: list[str] = []

    async def authorize(self, request: PaymentRequest) -> PaymentResult:
        if self.gate is not None:
            await self.gate.pass_through()
        return await self.inner.authorize(request)

    async def void(self, payment_id: str, order_id: UUID) -> None:
        self.voided.append(payment_id)
        await self.inner.void(payment_id, order_id)


class GatedProducts(ProductClient):
    def __init__(self, base_url: str, gate: Gate | None = None, credential: str = "") -> None:
        super().__init__(base_url, credential=credential)
        self.gate = gate

    async def reserve(self, order_id: UUID, lines: Any) -> ReservationAnswer:
        if self.gate is not None:
            await self.gate.pass_through()
        return await super().reserve(order_id, lines)


ServiceFactory = Callable[..., OrderService]


@pytest.fixture
async def order_service(platform) -> AsyncIterator[ServiceFactory]:
    """Builds OrderServices wired like the platform's, with optional gates on the payment and
    the reservation, and a partitioning strategy of the test's choice."""
    settings = platform.settings
    pool = await db.create_pool(settings, "order")
    clients: list[ProductClient] = []

    def build(
        *,
        payment_gate: Gate | None = None,
        reserve_gate: Gate | None = None,
        strategy: PartitionStrategy | None = None,
    ) -> OrderService:
        products = GatedProducts(
            settings.product_service, reserve_gate, credential=auth.service_credential(settings)
        )
        clients.append(products)
        payments = GatedPayments(payment_gateway(settings), payment_gate)
        return bootstrap(
            settings, pool, products=products, payments=payments, strategy=strategy
        )

    yield build
    for client in clients:
        await client.close()
    await pool.close()


def command(payload: dict[str, Any], mode: str, key: str | None = None) -> PlaceOrder:
    return parse_place_order(payload, idempotency_key=key, mode=mode)
