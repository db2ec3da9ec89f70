"""Stock reservations for orders: all lines held, or none; released or committed exactly once."""

from __future__ import annotations

from dataclasses import dataclass

MAX_LINES = 100
MAX_QUANTITY = 1000

HELD = "held"
RELEASED = "released"
COMMITTED = "committed"

# Event types on the stock-events topic (answers to the order saga).
STOCK_RELEASED = "StockReleased"


@dataclass(frozen=True)
class Line:
    product_id: str
    quantity: int


@dataclass(frozen=True)
class HeldLine:
    product_id: str
    quantity: int
    unit_price_cents: int


@dataclass(frozen=True)
class Reservation:
    order_id: str
    status: str
    lines: tuple[HeldLine, ...]


class ReservationError(Exception):
    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{f}: {m}" for f, m in errors))
        self.errors = errors


class OutOfStock(Exception):
    def __init__(self, product_id: str, requested: int, available: int) -> None:
        super().__init__(f"product {product_id}: {requested} requested, {available} available")
        self.product_id = product_id
        self.requested = requested
        self.available = available


class UnknownProduct(Exception):
    def __init__(self, product_id: str) -> None:
        super().__init__(f"product {product_id} does not exist")
        self.product_id = product_id


def refusal_error(reason: str, product_id: str | None) -> OutOfStock | UnknownProduct:
    """A refusal remembered for an order, as the error it was: asked again, the answer is the same."""
    if reason == "unknown product":
        return UnknownProduct(product_id or "")
    return OutOfStock(product_id or "", 0, 0)


def check_lines(lines: list[Line]) -> list[Line]:
    """The lines in product-id order (locks are taken in that order, so two orders never deadlock)."""
    errors: list[tuple[str, str]] = []
    if not lines:
        errors.append(("lines", "must not be empty"))
    if len(lines) > MAX_LINES:
        errors.append(("lines", f"at most {MAX_LINES} lines"))
    seen: set[str] = set()
    for i, line in enumerate(lines):
        if not 1 <= line.quantity <= MAX_QUANTITY:
            errors.append((f"lines[{i}].quantity", f"must be between 1 and {MAX_QUANTITY}"))
        if line.product_id in seen:
            errors.append((f"lines[{i}].product_id", "appears twice"))
        seen.add(line.product_id)
    if errors:
        raise ReservationError(errors)
    return sorted(lines, key=lambda line: line.product_id)


def same_lines(reservation: Reservation, lines: list[Line]) -> bool:
    held = {(h.product_id, h.quantity) for h in reservation.lines}
    return held == {(line.product_id, line.quantity) for line in lines}
