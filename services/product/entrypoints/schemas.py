"""The product API's request and response bodies (they also make its OpenAPI document)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import msgspec
from msgspec import UNSET, Meta, UnsetType

from services.product.domain.model import Product

Text = Annotated[str, Meta(max_length=5000)]
Money = Annotated[Decimal, Meta(description="price in the shop's currency, at most 2 decimals")]


class NewProduct(msgspec.Struct, forbid_unknown_fields=True):
    sku: Annotated[str, Meta(examples=["HEAD-0001"])]
    name: Text
    category: Text
    brand: Text
    price: Money
    stock: Annotated[int, Meta(ge=0, description="units in stock")]
    description: Text = ""


class ProductReplacement(msgspec.Struct, forbid_unknown_fields=True):
    """Every editable field (stock has its own endpoints)."""

    sku: Text
    name: Text
    category: Text
    brand: Text
    price: Money
    description: Text = ""


class ProductChanges(msgspec.Struct, forbid_unknown_fields=True):
    """Only the fields to change (JSON merge patch)."""

    sku: Text | UnsetType = UNSET
    name: Text | UnsetType = UNSET
    category: Text | UnsetType = UNSET
    brand: Text | UnsetType = UNSET
    price: Money | UnsetType = UNSET
    description: Text | UnsetType = UNSET


class StockLevel(msgspec.Struct, forbid_unknown_fields=True):
    stock: Annotated[int, Meta(ge=0)]
    reason: Annotated[str, Meta(max_length=80)] = "stock count"


class StockAdjustment(msgspec.Struct, forbid_unknown_fields=True):
    delta: Annotated[int, Meta(description="units added (positive) or removed (negative)")]
    reason: Annotated[str, Meta(max_length=80)] = "adjustment"


class ProductView(msgspec.Struct):
    id: str
    sku: str
    name: str
    description: str
    category: str
    brand: str
    price: float
    stock: int
    in_stock: bool
    version: int
    created_at: str
    updated_at: str


class SearchResult(msgspec.Struct):
    items: list[ProductView]
    next_cursor: str | None
    facets: dict[str, dict[str, int]] | None = None
    relevance: list[float] | None = None


def view(product: Product) -> ProductView:
    return ProductView(
        id=product.id,
        sku=product.sku,
        name=product.name,
        description=product.description,
        category=product.category,
        brand=product.brand,
        price=product.price_cents / 100,
        stock=product.stock,
        in_stock=product.in_stock,
        version=product.version,
        created_at=product.created_at.isoformat() if product.created_at else "",
        updated_at=product.updated_at.isoformat() if product.updated_at else "",
    )


def to_cents(price: Decimal, field: str = "price") -> int:
    from services.product.domain.model import CatalogError

    cents = price * 100
    if not price.is_finite() or cents != cents.to_integral_value():
        raise CatalogError([(field, "must be a number with at most 2 decimals")])
    return int(cents)


def editable_values(body: msgspec.Struct) -> dict[str, object]:
    values: dict[str, object] = {}
    for name in body.__struct_fields__:
        value = getattr(body, name)
        if value is UNSET:
            continue
        if name == "price":
            values["price_cents"] = to_cents(value)
        else:
            values[name] = value
    return values
