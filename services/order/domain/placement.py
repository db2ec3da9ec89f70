"""Placing an order: the PlaceOrder command, its parsing from a request body, and its rules.

Every rule is checked and every broken one reported (``InvalidOrder.errors``), each with the path
of the field it concerns (``lines[2].quantity``, ``shipping_address.country``), so the HTTP layer
can answer one problem+json listing them all and write nothing.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid5

from services.order.domain.countries import is_country_code
from services.order.domain.errors import FieldError, InvalidOrder
from services.order.domain.values import LineItem, OrderLine, ProcessingMode, ShippingAddress

MAX_LINES = 100
"""More lines than this is a "huge order" and is refused."""
MAX_QUANTITY = 1000
"""Largest quantity on one line."""
ADDRESS_LIMITS: dict[str, int] = {
    "name": 200, "line1": 200, "line2": 200, "city": 100, "postal_code": 16
}
"""Longest accepted text per address field (characters)."""
REQUIRED_ADDRESS_FIELDS = ("name", "line1", "city", "postal_code", "country")
IDEMPOTENCY_KEY_MAX = 255

_UUID_RE = re.compile(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", re.IGNORECASE)
_IDEMPOTENCY_NAMESPACE = UUID("6f1c1d9e-5a4b-4c62-9b0e-0a7d1f2e3c4b")
_MISSING: Any = object()


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    """The client's request to buy: who, what, where to, how to process, retry key."""

    customer_id: UUID
    lines: tuple[LineItem, ...]
    shipping_address: ShippingAddress
    mode: ProcessingMode = ProcessingMode.ASYNC
    idempotency_key: str | None = None

    def fingerprint(self) -> str:
        """Stable digest of what is bought and where it goes (not mode, not key, not line order).

        A retry with the same idempotency key but another fingerprint is a different request that
        reuses the key, which the service refuses rather than answering with the first order.
        """
        a = self.shipping_address
        items = sorted(f"{i.product_id}:{i.quantity}" for i in self.lines)
        parts = [str(self.customer_id), *items, a.name, a.line1, a.line2, a.city, a.postal_code,
                 a.country]
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def order_id_for(customer_id: UUID, idempotency_key: str) -> UUID:
    """The order id a keyed request gets: the same customer and key always give the same id.

    The event store's "stream must be new" check then makes a retried placement a no-op.
    """
    return uuid5(_IDEMPOTENCY_NAMESPACE, f"{customer_id}/{idempotency_key}")


def parse_place_order(
    payload: object,
    *,
    idempotency_key: str | None = None,
    mode: str | None = None,
    default_mode: ProcessingMode = ProcessingMode.ASYNC,
) -> PlaceOrder:
    """Build a valid PlaceOrder from a decoded JSON body, or raise InvalidOrder with all errors.

    ``mode`` (e.g. from a query parameter) overrides the body's ``mode``; without both the
    configured ``default_mode`` applies. ``idempotency_key`` comes from the Idempotency-Key header.
    """
    if not isinstance(payload, Mapping):
        raise InvalidOrder([FieldError("body", "must be a JSON object")])
    chosen_mode = mode if mode is not None else payload.get("mode")
    return _check(payload, chosen_mode, idempotency_key, default_mode)


def validate_place_order(command: PlaceOrder) -> tuple[FieldError, ...]:
    """Every broken rule of an already-built command (empty when it is valid)."""
    try:
        _check(command, command.mode, command.idempotency_key, ProcessingMode.ASYNC)
    except InvalidOrder as exc:
        return exc.errors
    return ()


def price_lines(command: PlaceOrder, unit_prices: Mapping[UUID, int]) -> tuple[OrderLine, ...]:
    """Price each line from the product service's answer; unknown products are field errors."""
    errors: list[FieldError] = []
    lines: list[OrderLine] = []
    for i, item in enumerate(command.lines):
        price = unit_prices.get(item.product_id)
        if price is None:
            errors.append(FieldError(f"lines[{i}].product_id", "unknown product"))
            continue
        if isinstance(price, bool) or not isinstance(price, int) or price < 0:
            raise ValueError(f"unit price of {item.product_id} must be cents >= 0, got {price!r}")
        lines.append(OrderLine(item.product_id, item.quantity, price))
    if errors:
        raise InvalidOrder(errors)
    return tuple(lines)


# Checks shared by parse (raw body: dicts) and validate (built command: dataclasses) -------------


def _get(source: object, name: str) -> Any:
    if isinstance(source, Mapping):
        return source.get(name, _MISSING)
    return getattr(source, name, _MISSING)


def _check(source: object, mode: object, key: object, default_mode: ProcessingMode) -> PlaceOrder:
    errors: list[FieldError] = []
    customer_id = _uuid(_get(source, "customer_id"), "customer_id", errors)
    lines = _lines(_get(source, "lines"), errors)
    address = _address(_get(source, "shipping_address"), errors)
    chosen = _mode(mode, default_mode, errors)
    checked_key = _idempotency_key(key, errors)
    if errors or customer_id is None or address is None:
        raise InvalidOrder(errors)
    return PlaceOrder(customer_id, lines, address, chosen, checked_key)


def _missing(value: object) -> bool:
    return value is _MISSING or value is None


def _uuid(value: object, path: str, errors: list[FieldError]) -> UUID | None:
    if isinstance(value, UUID):
        return value
    if isinstance(value, str) and _UUID_RE.fullmatch(value):
        return UUID(value)
    message = "is required" if _missing(value) else "must be a UUID (8-4-4-4-12 hex digits)"
    errors.append(FieldError(path, message))
    return None


def _quantity(value: object, path: str, errors: list[FieldError]) -> int | None:
    if _missing(value):
        message = "is required"
    elif isinstance(value, bool) or not isinstance(value, int):
        message = "must be a whole number"
    elif value < 1:
        message = "must be at least 1"
    elif value > MAX_QUANTITY:
        message = f"must be at most {MAX_QUANTITY}"
    else:
        return value
    errors.append(FieldError(path, message))
    return None


def _lines(value: object, errors: list[FieldError]) -> tuple[LineItem, ...]:
    if _missing(value):
        errors.append(FieldError("lines", "is required"))
        return ()
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        errors.append(FieldError("lines", "must be a list of {product_id, quantity}"))
        return ()
    if not value:
        errors.append(FieldError("lines", "an order needs at least one line"))
    elif len(value) > MAX_LINES:
        errors.append(FieldError("lines", f"at most {MAX_LINES} lines per order, got {len(value)}"))
    first_line: dict[UUID, int] = {}
    items: list[LineItem] = []
    for i, raw in enumerate(value):
        path = f"lines[{i}]"
        if not isinstance(raw, Mapping | LineItem):
            errors.append(FieldError(path, "must be an object with product_id and quantity"))
            continue
        product_id = _uuid(_get(raw, "product_id"), f"{path}.product_id", errors)
        quantity = _quantity(_get(raw, "quantity"), f"{path}.quantity", errors)
        if product_id is not None and product_id in first_line:
            first = first_line[product_id]
            message = f"duplicate of lines[{first}].product_id; one line per product"
            errors.append(FieldError(f"{path}.product_id", message))
        elif product_id is not None:
            first_line[product_id] = i
            if quantity is not None:
                items.append(LineItem(product_id, quantity))
    return tuple(items)


def _text(value: object, path: str, max_len: int, required: bool, errors: list[FieldError]) -> str:
    if _missing(value):
        if required:
            errors.append(FieldError(path, "is required"))
        return ""
    if not isinstance(value, str):
        errors.append(FieldError(path, "must be a string"))
        return ""
    if required and not value.strip():
        errors.append(FieldError(path, "must not be blank"))
    elif len(value) > max_len:
        errors.append(FieldError(path, f"must be at most {max_len} characters"))
    elif any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in value):
        errors.append(FieldError(path, "must not contain control characters"))
    return value


def _address(value: object, errors: list[FieldError]) -> ShippingAddress | None:
    if _missing(value):
        errors.append(FieldError("shipping_address", "is required"))
        return None
    if not isinstance(value, Mapping | ShippingAddress):
        errors.append(FieldError("shipping_address", "must be an object"))
        return None
    fields = {
        name: _text(_get(value, name), f"shipping_address.{name}", limit,
                    name in REQUIRED_ADDRESS_FIELDS, errors)
        for name, limit in ADDRESS_LIMITS.items()
    }
    country = _get(value, "country")
    if _missing(country):
        errors.append(FieldError("shipping_address.country", "is required"))
    elif not isinstance(country, str) or not is_country_code(country):
        errors.append(FieldError(
            "shipping_address.country", "must be an ISO 3166-1 alpha-2 code in upper case, e.g. DE"
        ))
    return ShippingAddress(country=country if isinstance(country, str) else "", **fields)


def _mode(value: object, default: ProcessingMode, errors: list[FieldError]) -> ProcessingMode:
    if _missing(value):
        return default
    if isinstance(value, str) and value in {m.value for m in ProcessingMode}:
        return ProcessingMode(value)
    errors.append(FieldError("mode", "must be one of: sync, async"))
    return default


def _idempotency_key(value: object, errors: list[FieldError]) -> str | None:
    if _missing(value):
        return None
    if (
        isinstance(value, str)
        and 1 <= len(value) <= IDEMPOTENCY_KEY_MAX
        and all(0x21 <= ord(c) <= 0x7E for c in value)
    ):
        return value
    errors.append(FieldError(
        "idempotency_key", f"must be 1 to {IDEMPOTENCY_KEY_MAX} visible ASCII characters"
    ))
    return None
