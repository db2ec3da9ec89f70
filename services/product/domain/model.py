"""The catalog's rules: what a valid product is, how it changes, and which event each change emits."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

MAX_PRICE_CENTS = 100_000_000_00  # 100 million in the shop's currency
MAX_STOCK = 1_000_000_000
SKU = re.compile(r"[A-Z0-9][A-Z0-9-]{1,39}")  # fullmatch: "$" would let a trailing newline in
# PostgreSQL text cannot hold NUL, and a control character in a name is an attack on whoever
# displays it (terminal escapes); a description may keep tabs and line breaks.
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
CONTROL_IN_PROSE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
TEXT_LIMITS = {"name": 200, "description": 5000, "category": 80, "brand": 80}
EDITABLE = ("sku", "name", "description", "category", "brand", "price_cents")

# Event types, past tense; the topic is keyed by product id so each product's events stay in order.
PRODUCT_CREATED = "ProductCreated"
PRODUCT_UPDATED = "ProductUpdated"
PRODUCT_DELETED = "ProductDeleted"
STOCK_CHANGED = "StockChanged"
TOPIC = "product-events"  # contracts.topics.PRODUCT_EVENTS: the domain imports no library


class CatalogError(Exception):
    """A rule of the catalog was broken; ``errors`` name the fields at fault."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{f}: {m}" for f, m in errors))
        self.errors = errors


class StaleVersion(Exception):
    """The caller's copy of the product is older than the stored one (optimistic concurrency)."""


class InsufficientStock(Exception):
    def __init__(self, available: int, requested: int) -> None:
        super().__init__(f"{requested} requested, {available} in stock")
        self.available = available
        self.requested = requested


@dataclass(frozen=True)
class Product:
    id: str
    sku: str
    name: str
    description: str
    category: str
    brand: str
    price_cents: int
    stock: int
    version: int = 1
    created_at: datetime | None = None
    updated_at: datetime | None = None
    changed: tuple[str, ...] = field(default=(), compare=False)

    @property
    def etag(self) -> str:
        return f'"{self.version}"'

    @property
    def in_stock(self) -> bool:
        return self.stock > 0

    def as_event_data(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "sku": self.sku,
            "name": self.name,
            "description": self.description,
            "category": self.category,
            "brand": self.brand,
            "price_cents": self.price_cents,
            "stock": self.stock,
            "version": self.version,
        }


def check_fields(values: dict[str, Any]) -> list[tuple[str, str]]:
    """Field-level errors for the editable fields present in ``values``."""
    errors: list[tuple[str, str]] = []
    for name, limit in TEXT_LIMITS.items():
        if name not in values:
            continue
        text = values[name]
        if (CONTROL_IN_PROSE if name == "description" else CONTROL).search(text):
            errors.append((name, "must not contain control characters"))
        elif name != "description" and not text.strip():
            errors.append((name, "must not be blank"))
        elif len(text) > limit:
            errors.append((name, f"must be at most {limit} characters"))
    if "sku" in values and not SKU.fullmatch(values["sku"]):
        errors.append(("sku", "must be 2-40 characters of A-Z, 0-9 and '-', starting alphanumeric"))
    if "price_cents" in values and not 0 <= values["price_cents"] <= MAX_PRICE_CENTS:
        errors.append(("price", f"must be between 0 and {MAX_PRICE_CENTS // 100}"))
    if "stock" in values:
        errors.extend(check_stock(values["stock"]))
    return errors


def check_stock(stock: int) -> list[tuple[str, str]]:
    if not 0 <= stock <= MAX_STOCK:
        return [("stock", f"must be between 0 and {MAX_STOCK}")]
    return []


def new_product(product_id: str, values: dict[str, Any]) -> Product:
    errors = check_fields(values)
    missing = [f for f in (*EDITABLE, "stock") if f not in values and f != "description"]
    errors.extend((f if f != "price_cents" else "price", "is required") for f in missing)
    if errors:
        raise CatalogError(errors)
    return Product(
        id=product_id,
        sku=values["sku"],
        name=values["name"].strip(),
        description=values.get("description", ""),
        category=values["category"].strip(),
        brand=values["brand"].strip(),
        price_cents=values["price_cents"],
        stock=values["stock"],
    )


def revise(product: Product, changes: dict[str, Any], expected_version: int | None) -> Product:
    """Apply edits to the editable fields; the result remembers which fields really changed."""
    if expected_version is not None and expected_version != product.version:
        raise StaleVersion(f"version {expected_version} is stale; current is {product.version}")
    unknown = [k for k in changes if k not in EDITABLE]
    if unknown:
        raise CatalogError([(k, "cannot be changed here") for k in unknown])
    errors = check_fields(changes)
    if errors:
        raise CatalogError(errors)
    changed = tuple(k for k in EDITABLE if k in changes and changes[k] != getattr(product, k))
    return replace(product, **changes, version=product.version + 1, changed=changed)


def restock(product: Product, stock: int, expected_version: int | None) -> Product:
    if expected_version is not None and expected_version != product.version:
        raise StaleVersion(f"version {expected_version} is stale; current is {product.version}")
    errors = check_stock(stock)
    if errors:
        raise CatalogError(errors)
    return replace(product, stock=stock, version=product.version + 1, changed=("stock",))


def adjust_stock(product: Product, delta: int) -> Product:
    new_stock = product.stock + delta
    if new_stock < 0:
        raise InsufficientStock(product.stock, -delta)
    errors = check_stock(new_stock)
    if errors:
        raise CatalogError(errors)
    return replace(product, stock=new_stock, version=product.version + 1, changed=("stock",))


def stock_changed_data(before: Product, after: Product, reason: str) -> dict[str, Any]:
    return {
        "id": after.id,
        "stock": after.stock,
        "previous": before.stock,
        "delta": after.stock - before.stock,
        "reason": reason,
        "version": after.version,
    }
