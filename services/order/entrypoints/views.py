"""Projection rows and stored events as the API's JSON views."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from services.order.adapters import projection
from services.order.domain.state import OrderState
from services.order.entrypoints.schemas import (
    AddressView,
    EventView,
    ItemView,
    LineView,
    OrderView,
    PaymentView,
    StatusChangeView,
    StockRejectionView,
)

STAGES = (
    "accepted", "published", "stock_requested_again", "stock_reserved", "stock_rejected",
    "payment_authorized", "payment_declined", "payment_voided", "stock_released", "confirmed",
    "cancelled", "rejected",
)
_encoder = msgspec.json.Encoder()


def iso(at: datetime) -> str:
    return _encoder.encode(at).decode().strip('"')


def _decode(raw: str | None, kind: Any) -> Any:
    return None if raw is None else msgspec.json.decode(raw, type=kind)


def order_view(row: asyncpg.Record | Mapping[str, Any]) -> OrderView:
    stamps: dict[str, str] = msgspec.json.decode(row["timestamps"], type=dict[str, str])
    if row["published_at"] is not None:
        stamps["published"] = iso(row["published_at"])
    return OrderView(
        id=str(row["id"]),
        customer_id=str(row["customer_id"]),
        status=row["status"],
        mode=row["mode"],
        outcome=row["outcome"],
        version=row["version"],
        lines=_decode(row["lines"], list[LineView]),
        total_cents=row["total_cents"],
        shipping_address=_decode(row["shipping_address"], AddressView),
        reserved=_decode(row["reserved"], list[ItemView]),
        released=_decode(row["released"], list[ItemView]),
        payment=_decode(row["payment"], PaymentView),
        stock_rejected=_decode(row["stock_rejected"], StockRejectionView),
        payment_declined_reason=row["payment_declined_reason"],
        reason=row["reason"],
        cancelled_by=row["cancelled_by"],
        history=_decode(row["history"], list[StatusChangeView]),
        timestamps={stage: stamps[stage] for stage in STAGES if stage in stamps},
        idempotency_key=row["idempotency_key"],
        created_at=iso(row["created_at"]),
        updated_at=iso(row["updated_at"]),
    )


def recorded_view(state: OrderState) -> OrderView:
    """The view of an order this request has just recorded, from its state: the projection row
    it wrote is ``row_of(state)``, so it is not read back (a round trip and a decode per order)."""
    row: dict[str, Any] = dict(zip(projection.COLUMNS, projection.row_of(state), strict=True))
    row["published_at"] = None
    return order_view(row)


def event_view(row: asyncpg.Record) -> EventView:
    return EventView(
        version=row["version"],
        event_id=str(row["event_id"]),
        type=row["type"],
        occurred_at=iso(row["occurred_at"]),
        recorded_at=iso(row["recorded_at"]),
        data=msgspec.json.decode(row["data"]),
    )


def encode(value: Any) -> bytes:
    return _encoder.encode(value)
