"""The one place where order-service is wired: the unit of work, the saga's command table, the
message bus and the use cases, for the HTTP app and the consumers alike. Tests pass their own
payment port, product client or clock; nothing else builds these objects."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import asyncpg

from services.order.adapters.payments import payment_gateway
from services.order.adapters.product_client import ProductClient
from services.order.domain.partitioning import PartitionStrategy
from services.order.domain.payment import PaymentGateway
from services.order.service_layer.handlers import SagaCommands, command_table
from services.order.service_layer.messagebus import MessageBus
from services.order.service_layer.orders import OrderService, utcnow
from services.order.service_layer.unit_of_work import UnitOfWork
from shopstream import auth
from shopstream.config import Settings

# Payments in flight at once per process: a batch of stock answers pays concurrently.
PAYMENT_CONCURRENCY = 64


def bootstrap(
    settings: Settings,
    pool: asyncpg.Pool,
    *,
    products: ProductClient | None = None,
    payments: PaymentGateway | None = None,
    strategy: PartitionStrategy | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> OrderService:
    chosen = strategy or PartitionStrategy(settings.order_partition_strategy)
    client = products or ProductClient(
        settings.product_service, credential=auth.service_credential(settings)
    )

    def uow() -> UnitOfWork:
        return UnitOfWork(pool, chosen)

    commands = SagaCommands(uow, client, payments or payment_gateway(settings), clock)
    bus = MessageBus(uow, command_table(commands), clock, PAYMENT_CONCURRENCY)
    return OrderService(pool, bus, commands, client, chosen, clock)
