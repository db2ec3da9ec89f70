"""Value objects of the order domain: lines, address, processing mode, who cancelled.

Money is always integer cents; ids are ``uuid.UUID``; timestamps are timezone-aware ``datetime``
values handed in by the caller (the domain never reads a clock).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID


class ProcessingMode(StrEnum):
    """How an order is processed. Both modes run the same saga decisions."""

    SYNC = "sync"
    """Inside the request: reserve, authorize, confirm, answer with the final state."""
    ASYNC = "async"
    """Record the order and an outbox event, answer 202; the saga continues over Kafka."""


class CancelledBy(StrEnum):
    CLIENT = "client"
    """The customer asked for the cancellation."""
    SAGA = "saga"
    """The saga cancelled the order after a failed step (e.g. payment declined)."""


@dataclass(frozen=True, slots=True)
class LineItem:
    """A product and a quantity: what is asked for, reserved or released."""

    product_id: UUID
    quantity: int


@dataclass(frozen=True, slots=True)
class OrderLine:
    """A line of a placed order, priced from the product service at placement."""

    product_id: UUID
    quantity: int
    unit_price_cents: int

    @property
    def item(self) -> LineItem:
        return LineItem(self.product_id, self.quantity)

    @property
    def total_cents(self) -> int:
        return self.quantity * self.unit_price_cents


@dataclass(frozen=True, slots=True)
class ShippingAddress:
    name: str
    line1: str
    city: str
    postal_code: str
    country: str
    """ISO 3166-1 alpha-2, upper case (``DE``, ``US``)."""
    line2: str = ""


def item_counts(items: Iterable[LineItem]) -> Counter[UUID]:
    """Quantities per product; the multiset view used to compare reservations and releases."""
    counts: Counter[UUID] = Counter()
    for item in items:
        counts[item.product_id] += item.quantity
    return counts


def same_items(a: Iterable[LineItem], b: Iterable[LineItem]) -> bool:
    """True when both name the same quantity of the same products, whatever the line order."""
    return item_counts(a) == item_counts(b)


def subtract_items(held: Iterable[LineItem], taken: Iterable[LineItem]) -> tuple[LineItem, ...]:
    """What remains of ``held`` after ``taken`` (never below zero), in ``held``'s order."""
    remaining = item_counts(held)
    remaining.subtract(item_counts(taken))
    seen: list[UUID] = []
    for item in held:
        if item.product_id not in seen:
            seen.append(item.product_id)
    return tuple(LineItem(p, remaining[p]) for p in seen if remaining[p] > 0)


def require_aware(at: datetime) -> datetime:
    """Timestamps must carry a timezone; naive ones are a programming error."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"timestamp {at!r} has no timezone")
    return at


def require_reason(reason: str) -> str:
    """Cancellations, rejections and releases always say why."""
    if not reason or not reason.strip():
        raise ValueError("a reason must not be empty")
    return reason


def require_stock_lines(items: tuple[LineItem, ...]) -> None:
    """A reservation names each product once, each with a quantity of at least 1."""
    products = [i.product_id for i in items]
    if not items or len(set(products)) != len(products):
        raise ValueError(f"stock lines must be non-empty with one line per product: {items!r}")
    if any(isinstance(i.quantity, bool) or i.quantity < 1 for i in items):
        raise ValueError(f"stock quantities must be at least 1: {items!r}")
