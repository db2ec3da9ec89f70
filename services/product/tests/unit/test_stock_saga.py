"""The stock saga's table: the consumer lets through exactly the events the saga has a use case
for, and an event it has none for (or a sync order's placement) touches nothing."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from services.product.entrypoints.consumers import WANTED_TYPES
from services.product.service_layer.saga import StockSaga
from shopstream.contracts import orders


def test_the_consumer_wants_exactly_what_the_saga_handles() -> None:
    assert {kind.__name__ for kind in StockSaga().handlers} == WANTED_TYPES


class _NoDatabase:
    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"the saga used the database ({name}) for an event that asks nothing")


def test_a_sync_placement_and_other_steps_touch_nothing() -> None:
    now = datetime.now(UTC)
    placed = orders.OrderPlaced(order_id=uuid.uuid4(), occurred_at=now, customer_id=uuid.uuid4(),
                                lines=[], shipping_address={}, mode="sync")  # fmt: skip
    authorized = orders.PaymentAuthorized(order_id=uuid.uuid4(), occurred_at=now,
                                          payment_id="p-1", amount_cents=100)  # fmt: skip
    saga = StockSaga()
    for message in (placed, authorized):
        asyncio.run(saga.handle(_NoDatabase(), message))  # type: ignore[arg-type]
