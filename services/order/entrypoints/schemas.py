"""The order API's request and response bodies (they also make its OpenAPI document)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import Meta

Uuid = Annotated[str, Meta(examples=["0b7c9f4e-2a51-4d1c-9a3e-6f5d2c1b0a01"])]


# Requests -----------------------------------------------------------------------------------------
class LineRequest(msgspec.Struct, forbid_unknown_fields=True):
    product_id: Uuid
    quantity: Annotated[int, Meta(description="units, 1 to 1000", examples=[2])]


class AddressRequest(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, Meta(examples=["Erika Mustermann"])]
    line1: Annotated[str, Meta(examples=["Heidestraße 17"])]
    city: Annotated[str, Meta(examples=["Köln"])]
    postal_code: Annotated[str, Meta(examples=["51147"])]
    country: Annotated[str, Meta(description="ISO 3166-1 alpha-2, upper case", examples=["DE"])]
    line2: Annotated[str, Meta(examples=["3rd floor"])] = ""


class PlaceOrderRequest(msgspec.Struct, forbid_unknown_fields=True):
    lines: Annotated[list[LineRequest], Meta(description="1 to 100 lines, one per product")]
    shipping_address: AddressRequest
    customer_id: Annotated[
        Uuid | None,
        Meta(description="the token's subject when omitted; a customer may name only themselves"),
    ] = None
    mode: Annotated[
        str | None,
        Meta(description="sync or async; the query parameter and X-Processing-Mode win", examples=["async"]),
    ] = None


class CancelRequest(msgspec.Struct, forbid_unknown_fields=True):
    reason: Annotated[str, Meta(min_length=1, max_length=500, examples=["ordered the wrong size"])] = (
        "cancelled by the customer"
    )


# Responses --------------------------------------------------------------------------------------
class LineView(msgspec.Struct):
    product_id: Uuid
    quantity: Annotated[int, Meta(examples=[2])]
    unit_price_cents: Annotated[int, Meta(examples=[12990])]
    total_cents: Annotated[int, Meta(examples=[25980])]


class ItemView(msgspec.Struct):
    product_id: str
    quantity: int


class AddressView(msgspec.Struct):
    name: str
    line1: str
    line2: str
    city: str
    postal_code: str
    country: str


class PaymentView(msgspec.Struct):
    id: str
    authorized_cents: int | None
    voided: bool


class StockRejectionView(msgspec.Struct):
    reason: str
    product_id: str | None


class StatusChangeView(msgspec.Struct):
    status: str
    at: str
    reason: str | None = None


class OrderView(msgspec.Struct):
    id: Uuid
    customer_id: Annotated[str, Meta(examples=["7d4e2c1a-9b8f-4e3d-a2c1-0f9e8d7c6b5a"])]
    status: Annotated[
        str,
        Meta(
            description="PENDING, STOCK_RESERVED, PAYMENT_AUTHORIZED, CONFIRMED, CANCELLED, REJECTED",
            examples=["CONFIRMED"],
        ),
    ]
    mode: Annotated[str, Meta(examples=["async"])]
    outcome: Annotated[
        str,
        Meta(
            description="in_progress, confirmed, stock_rejected, payment_declined, cancelled, rejected",
            examples=["confirmed"],
        ),
    ]
    version: Annotated[int, Meta(description="events in the order's stream")]
    lines: list[LineView]
    total_cents: Annotated[int, Meta(examples=[25980])]
    shipping_address: AddressView
    reserved: Annotated[list[ItemView], Meta(description="stock the product service reserved")]
    released: Annotated[list[ItemView], Meta(description="reserved stock given back")]
    payment: PaymentView | None
    stock_rejected: StockRejectionView | None
    payment_declined_reason: str | None
    reason: Annotated[str | None, Meta(description="why the order was cancelled or rejected")]
    cancelled_by: str | None
    history: Annotated[list[StatusChangeView], Meta(description="every status, with its time")]
    timestamps: Annotated[
        dict[str, str],
        Meta(description="when each stage was reached: accepted, published, stock_reserved, ..."),
    ]
    idempotency_key: str | None
    created_at: str
    updated_at: str


class OrderPage(msgspec.Struct):
    items: list[OrderView]
    next_cursor: Annotated[str | None, Meta(description="pass as cursor for the next page")]


class EventView(msgspec.Struct):
    version: int
    event_id: str
    type: str
    occurred_at: str
    recorded_at: str
    data: dict[str, Any]


class EventStream(msgspec.Struct):
    order_id: str
    version: int
    events: list[EventView]


class FieldErrorView(msgspec.Struct):
    field: str
    message: str


class ProblemView(msgspec.Struct):
    """RFC 9457 problem details; about an order, they also carry it (``order_id``, ``order``)."""

    type: str
    title: str
    status: int
    detail: str = ""
    errors: list[FieldErrorView] = msgspec.field(default_factory=list)
    order_id: str | None = None
    order: OrderView | None = None
