"""product-service's catalog events, on ``product-events``, keyed by product id. ``version`` is the
product's version after the change (one more with every change): a consumer tells a stale event
from a new one by it."""

from __future__ import annotations

from typing import ClassVar
from uuid import UUID

from shopstream.contracts.registry import Contract, registered
from shopstream.contracts.topics import PRODUCT_EVENTS


class ProductEvent(Contract):
    TOPIC: ClassVar[str] = PRODUCT_EVENTS
    PUBLISHER: ClassVar[str] = "product-service"
    id: UUID
    version: int


@registered
class ProductCreated(ProductEvent):
    """A product was added to the catalog (the seed announces its products this way too)."""

    sku: str
    name: str
    category: str
    brand: str
    price_cents: int
    stock: int
    description: str = ""


@registered
class ProductUpdated(ProductCreated):
    """Editable fields changed: every field as it is now."""

    changed: list[str] = []
    """The names of the fields that changed."""


@registered
class ProductDeleted(ProductEvent):
    """The product is gone; ``version`` is the one the deletion is known by."""


@registered
class StockChanged(ProductEvent):
    """Stock set, reserved or released: ``stock`` = ``previous`` + ``delta``."""

    stock: int
    previous: int
    delta: int
    reason: str
