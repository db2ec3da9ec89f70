"""The product API's request and response bodies (they also make its OpenAPI document)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import msgspec
from msgspec import UNSET, Meta, UnsetType

from services.product.domain.model import Product

Text = Annotated[str, Meta(max_length=5000)]
Money = Annotated[
    Decimal, Meta(description="price in the shop's currency, at most 2 decimals", examples=["129.90"])
]
# Realistic values for the OpenAPI document (Swagger UI fills its request bodies with them).
Sku = Annotated[str, Meta(max_length=5000, examples=["HEAD-0001"])]
Name = Annotated[str, Meta(max_length=5000, examples=["Aurora ANC wireless headphones"])]
Category = Annotated[str, Meta(max_length=5000, examples=["Audio"])]
Brand = Annotated[str, Meta(max_length=5000, examples=["Sonora"])]
Description = Annotated[
    str, Meta(max_length=5000, examples=["Over-ear, active noise cancelling, 30 h battery, USB-C."])
]
Reason = Annotated[str, Meta(max_length=80, examples=["goods received from supplier"])]
Stamp = Annotated[str, Meta(examples=["2026-12-05T10:15:38.123456+00:00"])]


class NewProduct(msgspec.Struct, forbid_unknown_fields=True):
    sku: Sku
    name: Name
    category: Category
    brand: Brand
    price: Money
    stock: Annotated[int, Meta(ge=0, description="units in stock", examples=[25])]
    description: Description = ""


class ProductReplacement(msgspec.Struct, forbid_unknown_fields=True):
    """Every editable field (stock has its own endpoints)."""

    sku: Sku
    name: Name
    category: Category
    brand: Brand
    price: Money
    description: Description = ""


class ProductChanges(msgspec.Struct, forbid_unknown_fields=True):
    """Only the fields to change (JSON merge patch)."""

    sku: Sku | UnsetType = UNSET
    name: Name | UnsetType = UNSET
    category: Category | UnsetType = UNSET
    brand: Brand | UnsetType = UNSET
    price: Money | UnsetType = UNSET
    description: Description | UnsetType = UNSET


class StockLevel(msgspec.Struct, forbid_unknown_fields=True):
    stock: Annotated[int, Meta(ge=0, examples=[40])]
    reason: Reason = "stock count"


class StockAdjustment(msgspec.Struct, forbid_unknown_fields=True):
    delta: Annotated[int, Meta(description="units added (positive) or removed (negative)", examples=[12])]
    reason: Reason = "adjustment"


class ProductView(msgspec.Struct):
    id: Annotated[str, Meta(examples=["5f0c6a1e-8d2b-4c7a-9e3f-2b1d0a9c8e7f"])]
    sku: Sku
    name: Name
    description: Description
    category: Category
    brand: Brand
    price: Annotated[float, Meta(examples=[129.9])]
    stock: Annotated[int, Meta(examples=[25])]
    in_stock: bool
    version: Annotated[int, Meta(examples=[3])]
    created_at: Stamp
    updated_at: Stamp


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
